"""Journeys as data: the YAML a marketer writes, parsed and checked before anything runs.

A journey starts when a customer enters a segment or does something (`trigger`), keeps a
stable random `holdout` share out of it (a control group that gets nothing), then walks
its `steps`: `send` (a channel, a template, parameters such as a discount code), `wait`
(a duration, or until an event with a timeout) and `branch` (on opened, clicked,
purchased, an event, a segment or a score, going to another step or to `end`). It stops
early on its `exit` conditions; `frequency_cap` and `quiet_hours` hold messages back.

    name: cart_recovery
    trigger: {segment: cart_abandoners_3d}
    holdout: 0.1
    exit: [purchase, left_segment, consent_withdrawn]
    steps:
      - {id: push, send: {channel: push, template: cart_push}}
      - {id: wait_a_day, wait: {until: page_view, timeout: 1d}}
      - {id: reacted, branch: {if: {event: page_view}, then: end}}
      - {id: email, send: {channel: email, template: cart_discount, params: {discount: 10}}}

Every problem names the journey, the step and the field (`validate_journeys` also checks
segments, channels, templates, events and score fields against what exists).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import time, timedelta
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from segments.journeys.templates import Template

__all__ = [
    "EXAMPLES_DIR",
    "END",
    "Branch",
    "Condition",
    "Journey",
    "JourneyError",
    "Send",
    "Step",
    "Wait",
    "load_journeys",
    "validate_journeys",
]

EXAMPLES_DIR = Path(__file__).parent / "examples"
END = "end"
"""The branch target that finishes the journey."""

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class JourneyError(ValueError):
    """A journey is wrong; the message names each journey, step and field concerned."""


def _duration(value: Any) -> Any:
    """`30s`, `15m`, `2h`, `1d`, `1w` (or anything pydantic reads as a timedelta)."""
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value)
        if found:
            return timedelta(**{_UNITS[found[2]]: float(found[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SegmentTrigger(_Strict):
    """Start when a customer enters `segment` (each stay in it is one entry)."""

    segment: str


class EventTrigger(_Strict):
    """Start when a customer does `event` (an event kind, e.g. `cart_add`)."""

    event: str


class Send(_Strict):
    channel: str
    template: str
    params: dict[str, str | int | float] = {}


class Wait(_Strict):
    """`duration`, or `until` an event kind (or `opened`, `clicked`, `purchased`) at most
    `timeout` long."""

    duration: Duration | None = None
    until: str | None = None
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Wait:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a wait has either a duration or `until` an event with a timeout")
        if self.until is not None and self.timeout is None:
            raise ValueError(f"waiting until {self.until!r} needs a timeout")
        for length in (self.duration, self.timeout):
            if length is not None and length <= timedelta(0):
                raise ValueError("a wait lasts longer than zero")
        return self

    @property
    def longest(self) -> timedelta:
        return self.duration if self.duration is not None else self.timeout


class Condition(_Strict):
    """One of: `opened`, `clicked`, `purchased` (since the customer entered the journey),
    `event` (a kind, since entry), `segment` (a member now), `score` (`op`, `value`)."""

    opened: Literal[True] | None = None
    clicked: Literal[True] | None = None
    purchased: Literal[True] | None = None
    event: str | None = None
    segment: str | None = None
    score: str | None = None
    op: Literal["=", "!=", "<", "<=", ">", ">="] | None = None
    value: float | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [
            k
            for k in ("opened", "clicked", "purchased", "event", "segment", "score")
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a condition is one of opened, clicked, purchased, event, segment, score"
            )
        if (self.score is None) != (self.op is None):
            raise ValueError("a score condition has `score`, `op` and `value`")
        return self

    @property
    def event_kind(self) -> str | None:
        """The event kind this condition counts since entry, if it is about events."""
        for flag, kind in (
            ("opened", "email_open"),
            ("clicked", "email_click"),
            ("purchased", "purchase"),
        ):
            if getattr(self, flag):
                return kind
        return self.event


class Branch(_Strict):
    """Go to `then` when the condition holds, else to `else` (`next`: the following step)."""

    if_: Condition = Field(alias="if")
    then: str = "next"
    else_: str = Field("next", alias="else")


class Step(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    send: Send | None = None
    wait: Wait | None = None
    branch: Branch | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if sum(a is not None for a in (self.send, self.wait, self.branch)) != 1:
            raise ValueError("a step is exactly one of send, wait, branch")
        return self


class FrequencyCap(_Strict):
    """At most `messages` sends to one customer (all journeys together) in any `per`."""

    messages: int = Field(ge=1)
    per: Duration


class QuietHours(_Strict):
    """No sends from `start` to `end` (local time in `timezone`); they wait until `end`."""

    start: time
    end: time
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


Exit = Literal["purchase", "left_segment", "consent_withdrawn"]


class Journey(_Strict):
    """One journey: who starts it, who is held out, its steps, and when it stops."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    trigger: SegmentTrigger | EventTrigger
    holdout: float = Field(0.1, ge=0, lt=1)
    """Share of entrants kept out as a control group (stable: a hash of journey and customer)."""
    exit: list[Exit] = []
    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = None
    conversion: str = "purchase"
    """The event kind that counts as a conversion, for treated and holdout alike."""
    conversion_window: Duration = timedelta(days=7)
    steps: list[Step] = Field(min_length=1)
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _wiring(self) -> Journey:
        ids = [step.id for step in self.steps]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"step ids used twice: {', '.join(twice)}")
        for step in self.steps:
            for target in self.targets(step):
                if target not in ids and target != END:
                    raise ValueError(f"step {step.id!r}: branch goes to unknown step {target!r}")
        if "left_segment" in self.exit and not isinstance(self.trigger, SegmentTrigger):
            raise ValueError("exit `left_segment` needs a segment trigger")
        no_wait = {
            step.id: {t for t in self.targets(step) if t != END}
            for step in self.steps
            if step.wait is None
        }
        graph = {node: {t for t in after if t in no_wait} for node, after in no_wait.items()}
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as error:
            loop = " -> ".join(reversed(error.args[1]))
            raise ValueError(f"steps loop without a wait: {loop}") from None
        return self

    def targets(self, step: Step) -> list[str]:
        """The steps `step` may go to (`end` after the last)."""
        position = self.steps.index(step)
        following = self.steps[position + 1].id if position + 1 < len(self.steps) else END
        if step.branch is None:
            return [following]
        return [following if t == "next" else t for t in (step.branch.then, step.branch.else_)]

    def step(self, step_id: str) -> Step:
        return next(step for step in self.steps if step.id == step_id)

    @property
    def channels(self) -> list[str]:
        """The channels this journey sends on, in step order."""
        return list(dict.fromkeys(s.send.channel for s in self.steps if s.send is not None))


def load_journeys(*, folders: Sequence[Path]) -> list[Journey]:
    """Every `*.yaml`/`*.yml` journey in `folders`; a later folder's journey replaces an
    earlier one of the same name."""
    found: dict[str, Journey] = {}
    problems = []
    for folder in folders:
        if not folder.is_dir():
            raise JourneyError(f"journey folder not found: {folder}")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                journey = _parse(path)
            except JourneyError as error:
                problems.append(str(error))
                continue
            found[journey.name] = journey
    if problems:
        raise JourneyError("\n".join(problems))
    return list(found.values())


def _parse(path: Path) -> Journey:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise JourneyError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise JourneyError(f"{path}: a journey is a mapping with name, trigger and steps")
    try:
        return Journey.model_validate({**data, "path": path})
    except ValidationError as error:
        name = data.get("name", path.stem)
        steps = data.get("steps") if isinstance(data.get("steps"), list) else []
        lines = [
            f"{path}: journey {name!r}: {_where(e['loc'], steps)}: {e['msg']}"
            for e in error.errors()
        ]
        raise JourneyError("\n".join(lines)) from None


def _where(loc: tuple, steps: list) -> str:
    """`step 'email' (2): send.template` for a step's field, else the field's path."""
    parts = [str(p) for p in loc]
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        raw = steps[loc[1]] if loc[1] < len(steps) else {}
        step_id = raw.get("id", "?") if isinstance(raw, dict) else "?"
        field = ".".join(parts[2:]) or "step"
        return f"step {step_id!r} (#{loc[1] + 1}): {field}"
    return ".".join(parts) or "journey"


def validate_journeys(
    journeys: Sequence[Journey],
    *,
    segments: Collection[str],
    channels: Collection[str],
    templates: dict[str, Template],
    events: Collection[str],
    score_fields: Collection[str],
) -> None:
    """Check what each journey names against what exists; raise with every problem."""
    problems = []

    def check_event(kind: str | None, where: str) -> None:
        if kind is not None and kind not in events:
            problems.append(f"{where}: unknown event {kind!r} (known: {', '.join(sorted(events))})")

    def check_segment(segment: str | None, where: str) -> None:
        if segment is not None and segment not in segments:
            problems.append(f"{where}: unknown segment {segment!r}")

    for journey in journeys:
        head = f"journey {journey.name!r}"
        trigger = journey.trigger
        if isinstance(trigger, SegmentTrigger):
            check_segment(trigger.segment, f"{head}: trigger.segment")
        else:
            check_event(trigger.event, f"{head}: trigger.event")
        check_event(journey.conversion, f"{head}: conversion")
        if "purchase" in journey.exit:
            check_event("purchase", f"{head}: exit")
        for number, step in enumerate(journey.steps, start=1):
            where = f"{head}: step {step.id!r} (#{number})"
            if step.send is not None:
                problems += _send_problems(step.send, where, channels, templates)
            if step.wait is not None and step.wait.until is not None:
                until = (
                    Condition.model_validate({step.wait.until: True}).event_kind
                    if (step.wait.until in ("opened", "clicked", "purchased"))
                    else step.wait.until
                )
                check_event(until, f"{where}: wait.until")
            if step.branch is not None:
                condition = step.branch.if_
                check_event(condition.event_kind, f"{where}: branch.if")
                check_segment(condition.segment, f"{where}: branch.if.segment")
                if condition.score is not None and condition.score not in score_fields:
                    problems.append(
                        f"{where}: branch.if.score: unknown score {condition.score!r} "
                        f"(known: {', '.join(sorted(score_fields))})"
                    )
    if problems:
        raise JourneyError("\n".join(problems))


def _send_problems(
    send: Send, where: str, channels: Collection[str], templates: dict[str, Template]
) -> list[str]:
    if send.channel not in channels:
        return [
            f"{where}: send.channel: unknown channel {send.channel!r} "
            f"(known: {', '.join(sorted(channels))})"
        ]
    template = templates.get(send.template)
    if template is None:
        return [
            f"{where}: send.template: unknown template {send.template!r} "
            f"(known: {', '.join(sorted(templates))})"
        ]
    if template.channel != send.channel:
        return [
            f"{where}: send.template: {send.template!r} is a {template.channel} template, "
            f"not for {send.channel}"
        ]
    missing = template.parameters - set(send.params)
    if missing:
        return [
            f"{where}: send.params: template {send.template!r} needs {', '.join(sorted(missing))}"
        ]
    return []
