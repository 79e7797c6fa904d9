"""Segment definitions: the YAML an analyst writes, parsed, checked and ordered.

A definition names a segment, describes it, and gives a `rule` (conditions on
fields such as `scores.churn_decile` or `order.avg_order_value`, and on recent
events such as `cart_add` within 3 days, combined with `all`, `any` and `not`),
optional `exclude` (members of other segments, a rule, or `existing_customers: true`
for everyone who ever bought) and, for lookalike
audiences, a `lookalike` block (see `segments.lookalike`). Every problem is
reported with the segment and the field it concerns, before anything runs.

    name: cart_abandoners_3d
    description: Added to cart in the last 3 days and bought nothing since.
    rule:
      all:
        - {event: cart_add, within_days: 3}
        - {event: purchase, after_last: cart_add, max_count: 0}
"""

from __future__ import annotations

from collections.abc import Sequence
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from segments.fields import OPERATORS, Catalog, event_kinds

__all__ = [
    "EXAMPLES_DIR",
    "EXISTING_CUSTOMERS",
    "AllOf",
    "AnyOf",
    "DefinitionError",
    "EventCondition",
    "Exclusion",
    "FieldCondition",
    "Lookalike",
    "Not",
    "Rule",
    "SegmentDefinition",
    "evaluation_order",
    "event_kinds_named",
    "field_groups_named",
    "load_definitions",
    "parse_definition",
    "validate_definitions",
]

EXAMPLES_DIR = Path(__file__).parent / "definitions"


class DefinitionError(ValueError):
    """A segment definition is wrong; the message names each segment and field concerned."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FieldCondition(_Strict):
    """`field op value`: e.g. `{field: scores.churn_probability, op: ">", value: 0.7}`.

    `top_percent`/`bottom_percent` compare with the population rather than a fixed
    threshold: `{field: order.spend_365d, op: top_percent, value: 20}` is the fifth with
    the highest spend among the customers who have a value (ties at the threshold are in);
    `among` narrows that population to those matching a rule (e.g. who can be emailed).
    Quantiles need no currency and keep their meaning from one shop to the next. A fixed
    amount can be given per currency instead, `value: {USD: 80, RUB: 6000}` (or
    `[low, high]` each with `between`): each customer is compared in the currency of their
    own orders (`order.currency`); one whose currency is not listed does not match.
    """

    field: str
    op: Literal[OPERATORS]  # type: ignore[valid-type]
    value: Any = None
    among: Rule | None = None


class EventCondition(_Strict):
    """How many events of a kind a customer had, optionally in a window or after another event.

    Counts events up to the evaluation time: in the last `within_days` days if set,
    after the customer's last `after_last` event if set. The count must lie in
    [`min_count`, `max_count`]; by default at least one event.
    """

    event: str
    within_days: float | None = Field(None, gt=0)
    after_last: str | None = None
    min_count: int | None = Field(None, ge=0)
    max_count: int | None = Field(None, ge=0)

    @property
    def bounds(self) -> tuple[int, int | None]:
        if self.min_count is not None:
            return self.min_count, self.max_count
        return (1 if self.max_count is None else 0), self.max_count


class AllOf(_Strict):
    all: list[Rule] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Rule] = Field(min_length=1)


class Not(_Strict):
    not_: Rule = Field(alias="not")


def _rule_kind(value: Any) -> str | None:
    keys = set(value) if isinstance(value, dict) else set(vars(value)) if value else set()
    for kind in ("all", "any", "field", "event"):
        if kind in keys:
            return kind
    return "not" if ("not" in keys or "not_" in keys) else None


Rule = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[FieldCondition, Tag("field")]
    | Annotated[EventCondition, Tag("event")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule",
        custom_error_message="a rule is one of all/any/not, a {field, op, value} or an {event}",
    ),
]


EXISTING_CUSTOMERS = EventCondition(event="purchase")
"""Who counts as an existing customer: anyone who ever bought (an order, or a completed
order event), for `exclude: {existing_customers: true}`."""


class Exclusion(_Strict):
    """Who is never in the segment: members of other segments, whoever matches `rule`, and
    with `existing_customers`, everyone who ever bought (the built-in suppression of an
    acquisition audience: ad money goes to new people)."""

    segments: list[str] = []
    rule: Rule | None = None
    existing_customers: bool = False


class Lookalike(_Strict):
    """Customers resembling a seed audience: the `top_percent` most similar non-seed customers.

    `features` lists numeric fields; `group.*` takes every numeric field of a group.
    """

    seed: Rule
    features: list[str] = Field(min_length=1)
    top_percent: float = Field(gt=0, le=100)


class SegmentDefinition(_Strict):
    """One segment: who is in it (`rule`, `lookalike`) and who never is (`exclude`)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    rule: Rule | None = None
    exclude: Exclusion | None = None
    lookalike: Lookalike | None = None
    realtime: bool = False
    """Kept current by the stream worker (`cip stream`) as events arrive, for the customers
    they concern: only rules whose truth one customer's data decides (no lookalike, no
    top/bottom_percent), excluding only other realtime segments."""
    path: Path | None = Field(None, exclude=True)


for _model in (FieldCondition, AllOf, AnyOf, Not, Exclusion, Lookalike, SegmentDefinition):
    _model.model_rebuild()


def load_definitions(*, folders: Sequence[Path]) -> list[SegmentDefinition]:
    """Read every `*.yaml`/`*.yml` in `folders`; a later folder's segment replaces an earlier."""
    found: dict[str, SegmentDefinition] = {}
    problems = []
    for folder in folders:
        if not folder.is_dir():
            raise DefinitionError(f"segment definition folder not found: {folder}")
        seen_here: dict[str, Path] = {}
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                definition = _parse(path)
            except DefinitionError as error:
                problems.append(str(error))
                continue
            if definition.name in seen_here:
                first = seen_here[definition.name]
                problems.append(f"{path}: segment {definition.name!r} is also defined in {first}")
            seen_here[definition.name] = path
            found[definition.name] = definition
    if problems:
        raise DefinitionError("\n".join(problems))
    return list(found.values())


def _parse(path: Path) -> SegmentDefinition:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: a segment definition is a mapping with name and rule")
    return parse_definition({**data, "name": data.get("name", path.stem)}, path=path)


def parse_definition(data: dict[str, Any], *, path: Path | None = None) -> SegmentDefinition:
    """A definition from its YAML mapping (as read from `path`, or drafted elsewhere, e.g. in
    the workspace's builder); DefinitionError names every problem and where it is."""
    name = data.get("name")
    where = f"{path}: " if path is not None else ""
    try:
        return SegmentDefinition.model_validate({**data, "path": path})
    except ValidationError as error:
        lines = [
            f"{where}segment {name!r}: at {_where(e['loc'])}: {e['msg']}" for e in error.errors()
        ]
        raise DefinitionError("\n".join(lines)) from None


_TAGS = {"all", "any", "not", "field", "event"}


def _where(loc: tuple) -> str:
    """A validation error's place, without the union tags pydantic inserts after each rule."""
    kept = [
        str(part)
        for i, part in enumerate(loc)
        if not (
            part in _TAGS
            and i
            and (loc[i - 1] in ("rule", "seed", "not") or isinstance(loc[i - 1], int))
        )
    ]
    return ".".join(kept) or "top"


def validate_definitions(definitions: Sequence[SegmentDefinition], *, catalog: Catalog) -> None:
    """Check fields, types, events and references against `catalog`; raise with every problem."""
    names = {d.name for d in definitions}
    problems = []
    for definition in definitions:
        found = []
        for rule in _rules_of(definition):
            found += _check_rule(rule, catalog)
        if definition.lookalike is not None:
            patterns = definition.lookalike.features
            for name in (p for p in patterns if "*" not in p):
                found += catalog.check_condition(name, ">", 0)
            if not any(catalog.numeric_fields(p) for p in patterns):
                found.append(f"lookalike features {patterns} match no numeric field")
        for other in definition.exclude.segments if definition.exclude else []:
            if other not in names:
                found.append(f"excludes unknown segment {other!r}")
        if definition.realtime:
            found += _realtime_problems(
                definition, realtime={d.name for d in definitions if d.realtime}
            )
        problems += [f"segment {definition.name!r}: {problem}" for problem in found]
    if problems:
        raise DefinitionError("\n".join(problems))
    evaluation_order(definitions)


def _realtime_problems(definition: SegmentDefinition, *, realtime: set[str]) -> list[str]:
    """Why `definition` cannot be evaluated one customer at a time (empty when it can)."""
    problems = []
    if definition.lookalike is not None:
        problems.append("realtime: a lookalike audience depends on everyone; not realtime")
    if any(
        isinstance(rule, FieldCondition) and rule.op in ("top_percent", "bottom_percent")
        for top in _rules_of(definition)
        for rule in _walk(top)
    ):
        problems.append("realtime: top_percent/bottom_percent depend on everyone; not realtime")
    for other in definition.exclude.segments if definition.exclude else []:
        if other not in realtime:
            problems.append(f"realtime: excludes {other!r}, which is not realtime")
    return problems


def event_kinds_named(definitions: Sequence[SegmentDefinition]) -> set[str]:
    """The event kinds the rules of `definitions` count (in conditions and exclusions)."""
    return {
        kind
        for rule in _conditions(definitions)
        if isinstance(rule, EventCondition)
        for kind in (rule.event, rule.after_last)
        if kind is not None
    }


def field_groups_named(definitions: Sequence[SegmentDefinition]) -> set[str]:
    """The field groups (`profile`, `scores`, `order`, ...) the rules of `definitions` name."""
    return {
        rule.field.split(".", 1)[0]
        for rule in _conditions(definitions)
        if isinstance(rule, FieldCondition)
    }


def _conditions(definitions: Sequence[SegmentDefinition]) -> list[Rule]:
    return [rule for d in definitions for top in _rules_of(d) for rule in _walk(top)]


def _walk(rule: Rule) -> list[Rule]:
    """`rule` and every rule inside it."""
    match rule:
        case AllOf(all=rules) | AnyOf(any=rules):
            return [rule, *(inner for sub in rules for inner in _walk(sub))]
        case Not(not_=sub):
            return [rule, *_walk(sub)]
    return [rule]


def evaluation_order(definitions: Sequence[SegmentDefinition]) -> list[SegmentDefinition]:
    """Definitions ordered so that every excluded segment is evaluated before its user."""
    by_name = {d.name: d for d in definitions}
    graph = {d.name: set(d.exclude.segments if d.exclude else ()) for d in definitions}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise DefinitionError(f"segments exclude each other in a cycle: {error.args[1]}") from None
    return [by_name[name] for name in order if name in by_name]


def _rules_of(definition: SegmentDefinition) -> list[Rule]:
    rules = [definition.rule]
    if definition.exclude is not None:
        rules.append(definition.exclude.rule)
        if definition.exclude.existing_customers:
            rules.append(EXISTING_CUSTOMERS)
    if definition.lookalike is not None:
        rules.append(definition.lookalike.seed)
    return [rule for rule in rules if rule is not None]


def _check_rule(rule: Rule, catalog: Catalog) -> list[str]:
    match rule:
        case AllOf(all=rules) | AnyOf(any=rules):
            return [problem for sub in rules for problem in _check_rule(sub, catalog)]
        case Not(not_=sub):
            return _check_rule(sub, catalog)
        case FieldCondition(among=among):
            problems = catalog.check_condition(rule.field, rule.op, rule.value)
            if among is not None and rule.op not in ("top_percent", "bottom_percent"):
                problems.append(
                    f"field {rule.field!r}: `among` goes with top_percent or "
                    f"bottom_percent only, not {rule.op!r}"
                )
            return problems + (_check_rule(among, catalog) if among is not None else [])
        case EventCondition():
            problems = []
            kinds = event_kinds()
            for kind in (rule.event, rule.after_last):
                if kind is not None and kind not in kinds:
                    problems.append(f"unknown event {kind!r} (known: {', '.join(kinds)})")
                elif kind is not None and kind not in catalog.events:
                    needs = ", ".join(min((part.tables for part in kinds[kind]), key=len))
                    problems.append(f"event {kind!r} needs {needs}, missing from the warehouse")
            low, high = rule.bounds
            if high is not None and high < low:
                problems.append(f"event {rule.event!r}: max_count {high} < min_count {low}")
            return problems
    raise TypeError(f"not a rule: {rule!r}")
