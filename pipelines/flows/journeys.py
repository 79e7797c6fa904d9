"""The journeys flows: check the journeys against the warehouse, run one tick or keep
ticking (the runner), and measure each journey's funnel and lift."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

import warehouse
from pipelines.config import Settings
from pipelines.flows import report
from pipelines.flows import segments as segments_flow
from pipelines.flows.progress import Progress, silent
from segments import journeys as jn
from segments.fields import event_kinds
from segments.journeys.store import ensure_tables
from segments.journeys.unsubscribe import unsubscribe_secret
from serving.auth import api_key
from warehouse.tables import CURRENT_SCORES, table_names

__all__ = ["JourneyStatus", "TickFigures", "definitions", "run", "run_forever", "runtime", "status"]


@dataclass(frozen=True)
class TickFigures:
    """One tick of the runner, for the console."""

    outcome: jn.TickOutcome
    report: Path | None = None

    @property
    def figures(self) -> dict[str, object]:
        o = self.outcome
        figures: dict[str, object] = {
            name: f"+{j['entered']:,} entered, {j['exited']:,} exited, {j['queued']:,} queued"
            for name, j in sorted(o.per_journey.items())
        }
        return (
            figures
            | {
                "delivered": f"{o.delivered:,}",
                "retrying / dead-lettered": f"{o.retrying:,} / {o.dead:,}",
                "suppressed (no consent)": f"{o.suppressed:,}",
            }
            | ({"report": self.report} if self.report else {})
        )


def definitions(settings: Settings) -> list[jn.Journey]:
    """Every journey the settings point at, checked against the segments, templates,
    channels, events and scores there are (`JourneyError` lists the problems)."""
    config = settings.segments.journeys
    folders = [jn.EXAMPLES_DIR] if config.include_examples else []
    found = jn.load_journeys(folders=[*folders, *config.definition_dirs])
    score_fields: set[str] = set()
    if settings.paths.warehouse.exists():
        with warehouse.connect(settings.paths.warehouse, read_only=True) as con:
            if CURRENT_SCORES in table_names(con):
                described = con.execute(f"DESCRIBE {CURRENT_SCORES}").fetchall()
                score_fields = {name for name, *_ in described}
    jn.validate_journeys(
        found,
        segments={d.name for d in segments_flow.definitions(settings)},
        channels=set(jn.CHANNELS),
        templates=_templates(settings),
        events=set(event_kinds()),
        score_fields=score_fields,
    )
    return found


def _templates(settings: Settings) -> dict[str, jn.Template]:
    return jn.load_templates(folders=[jn.TEMPLATES_DIR, *settings.segments.journeys.template_dirs])


def runtime(settings: Settings) -> jn.Runtime:
    """What sending needs, from the settings: channels, templates, retries."""
    config, serving = settings.segments.journeys, settings.serving
    transports = {name: config.channels.get(name, jn.FileChannel()) for name in jn.CHANNELS}
    key = api_key(configured=serving.api_key, key_file=settings.paths.api_key)
    return jn.Runtime(
        channels=transports,
        templates=_templates(settings),
        exports=settings.paths.exports,
        unsubscribe_secret=unsubscribe_secret(key.get_secret_value()),
        unsubscribe_url=config.unsubscribe_url
        or f"http://{serving.host}:{serving.port}/unsubscribe/{{token}}",
        retry=config.retry,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
    )


def run(
    settings: Settings, *, now: datetime | None = None, progress: Progress = silent
) -> TickFigures:
    """One tick of every journey: enroll, exit, advance, deliver; then the marketers' report
    is written again with the journeys' funnels (the demo's stage)."""
    found = definitions(settings)
    progress("journeys", done=0, total=1)
    with warehouse.connect(settings.paths.warehouse) as con:
        outcome = jn.tick(con, journeys=found, runtime=runtime(settings), now=now)
    progress("journeys", done=1, total=1)
    return TickFigures(outcome, report.write(settings))


def run_forever(
    settings: Settings,
    *,
    stop: threading.Event,
    on_tick: Callable[[TickFigures], None] | None = None,
) -> int:
    """Tick every `tick_seconds` until `stop` is set; the warehouse is opened only during a
    tick, so other commands can use it between ticks. Returns the number of ticks."""
    found, runtime_ = definitions(settings), runtime(settings)
    ticks = 0
    while not stop.is_set():
        with warehouse.connect(settings.paths.warehouse) as con:
            outcome = jn.tick(con, journeys=found, runtime=runtime_)
        ticks += 1
        if on_tick is not None:
            on_tick(TickFigures(outcome))
        stop.wait(settings.segments.journeys.tick_seconds)
    return ticks


@dataclass(frozen=True)
class JourneyStatus:
    """A journey's funnel (per group and step), its lift, and its outbox by status."""

    journey: jn.Journey
    funnel: pd.DataFrame
    lift: jn.Lift
    outbox: dict[str, int] = field(default_factory=dict)


def status(settings: Settings, *, journey: str | None = None) -> list[JourneyStatus]:
    """Every journey's (or one's) funnel, lift and outbox so far."""
    found = [j for j in definitions(settings) if journey is None or j.name == journey]
    if journey is not None and not found:
        raise LookupError(f"unknown journey {journey!r}")
    result = []
    with warehouse.connect(settings.paths.warehouse) as con:
        ensure_tables(con)
        for j in found:
            table, measured = jn.funnel(con, journey=j), jn.lift(con, journey=j)
            outbox = dict(
                con.execute(
                    "SELECT status, count(*) FROM journey_sends WHERE journey = ? GROUP BY 1",
                    [j.name],
                ).fetchall()
            )
            result.append(JourneyStatus(j, table, measured, outbox))
    return result
