"""The stream worker (`cip stream`; `cip serve` runs one beside the collector): the
collector's log into the warehouse as it grows, each micro-batch's events tied to customers
and the `realtime: true` segments re-evaluated for them (`segments.realtime`), then a tick
of the journeys, so that an event reaches its segment, and the segment's journey its first
send, within seconds.

The worker is the log's loader (`serving.collector.load_pending`, with its offsets): a
micro-batch's events are tied and evaluated before its offsets commit, and the ties make a
replay after a crash change nothing, so a restart neither skips nor repeats a membership
change. Every `serving.stream.sweep_seconds` it ends the stays that time ended
(`segments.realtime.expire_stays`), and the journeys tick after it. Between batches it
leaves the warehouse alone unless the log grew or a journey tick or a sweep is due. Bad
input never stops it: a definition that does not check is logged and left out, a batch
whose evaluation fails is logged and counted (its events stay loaded for the next batch
refresh), an event with nothing to tie it by is counted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

import duckdb

import warehouse
from pipelines.config import Settings
from pipelines.flows import journeys as journeys_flow
from pipelines.flows import segments as segments_flow
from segments import DefinitionError, SegmentDefinition
from segments import journeys as jn
from segments.definition import validate_definitions
from segments.evaluate import check_definitions
from segments.realtime import RealtimeBatch, apply_events, ensure_tables, expire_stays
from serving.collector.loader import BatchReport, load_batch, log_sizes

__all__ = ["StreamFigures", "StreamWorker", "realtime_definitions", "run_forever"]

logger = logging.getLogger(__name__)


@dataclass
class StreamFigures:
    """What the worker did since it started: counts, and seconds (wall) per phase."""

    batches: int = 0
    events: int = 0
    tied: int = 0
    provisional: int = 0
    untied: int = 0
    entered: int = 0
    exited: int = 0
    failed_batches: int = 0
    skipped_segments: int = 0
    sweeps: int = 0
    expired: int = 0
    ticks: int = 0
    delivered: int = 0
    open_seconds: float = 0.0
    """Opening the warehouse (waiting for it included)."""
    load_seconds: float = 0.0
    """Reading the log into `raw_events`, tying and evaluating (`apply_seconds` of it)."""
    apply_seconds: float = 0.0
    sweep_seconds: float = 0.0
    tick_seconds: float = 0.0
    close_seconds: float = 0.0
    """Closing the warehouse (DuckDB's checkpoint)."""
    longest_step_seconds: float = 0.0

    def add(self, batch: RealtimeBatch) -> None:
        for name in ("events", "tied", "provisional", "untied", "entered", "exited"):
            setattr(self, name, getattr(self, name) + getattr(batch, name))

    @property
    def figures(self) -> dict[str, object]:
        return {
            f.name.replace("_", " "): (
                f"{value:,.1f}"
                if isinstance(value := getattr(self, f.name), float)
                else f"{value:,}"
            )
            for f in fields(self)
        }


def realtime_definitions(
    con: duckdb.DuckDBPyConnection, *, definitions: list[SegmentDefinition]
) -> tuple[list[SegmentDefinition], list[str]]:
    """The `realtime: true` definitions that check against the warehouse, and the problems
    of those that do not (each left out on its own: one wrong segment stops no other)."""
    wanted = [d for d in definitions if d.realtime]
    if not wanted:
        return [], []
    catalog = check_definitions(con, definitions=[])
    by_name = {d.name: d for d in wanted}
    kept, problems = [], []
    for definition in wanted:
        excluded = definition.exclude.segments if definition.exclude else []
        others = [by_name[name] for name in excluded if name in by_name]
        try:
            validate_definitions([definition, *others], catalog=catalog)
        except DefinitionError as error:
            problems.append(str(error))
        else:
            kept.append(definition)
    names = {d.name for d in kept}
    # A segment excluding one that was left out cannot be evaluated either.
    dropped = [d for d in kept if d.exclude and not set(d.exclude.segments) <= names]
    problems += [f"segment {d.name!r}: excludes a segment left out" for d in dropped]
    return [d for d in kept if d not in dropped], problems


class StreamWorker:
    """Micro-batches of the collector's log through the real-time path, then journeys."""

    def __init__(self, settings: Settings, *, journeys: bool = True) -> None:
        self.settings = settings
        self.figures = StreamFigures()
        self._definitions: list[SegmentDefinition] | None = None  # checked on first batch
        self._journeys: list[jn.Journey] = []
        self._runtime: jn.Runtime | None = None
        if journeys:
            try:
                self._journeys = journeys_flow.definitions(settings)
                self._runtime = journeys_flow.runtime(settings)
            except (jn.JourneyError, DefinitionError) as error:
                logger.error(
                    "stream: journeys left out, their definitions do not check:\n%s", error
                )
        self._loaded: dict[str, int] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._held_since = self._reopen_at = 0.0
        self._last_tick = 0.0
        self._last_sweep = time.monotonic()  # the first sweep after sweep_seconds
        self._changed = False  # the last batch changed memberships: the journeys tick now

    def step(self) -> BatchReport:
        """One micro-batch (when the log grew or a tick is due); `more` when the log holds
        more right now, `busy` when another process held the warehouse or the log.

        The warehouse stays open from one batch to the next while events flow, at most
        `serving.stream.hold_seconds` at a time; then, and whenever the log is idle, the
        worker closes it and leaves it for a second to whoever waits for it."""
        sizes = log_sizes(self.settings.paths.collector)
        if sizes == self._loaded and not self._tick_due() and not self._sweep_due():
            self.release()
            return BatchReport()
        started = time.monotonic()
        with self._timed("open_seconds"):
            con = self._connection()
        if con is None:
            return BatchReport(busy=True)
        with self._timed("load_seconds"):
            report = load_batch(
                con,
                log_dir=self.settings.paths.collector,
                max_bytes=self.settings.serving.collector.load_batch_bytes,
                on_loaded=self._apply,
            )
        if not report.busy:
            with self._timed("sweep_seconds"):
                self._sweep(con)
            with self._timed("tick_seconds"):
                self._after(con)
        figures = self.figures
        figures.longest_step_seconds = max(figures.longest_step_seconds, time.monotonic() - started)
        if not (report.busy or report.more):
            self._loaded = {
                n: s for n, s in sizes.items() if (self.settings.paths.collector / n).exists()
            }
        self.figures.failed_batches += report.failed_callbacks
        if time.monotonic() - self._held_since >= self.settings.serving.stream.hold_seconds:
            self.release(pause_seconds=1.0)
        return report

    def release(self, *, pause_seconds: float = 0.0) -> None:
        """Close the warehouse (if open); reopen it no sooner than `pause_seconds` from now."""
        if self._con is not None:
            with self._timed("close_seconds"):
                self._con.close()
            self._con = None
        self._reopen_at = time.monotonic() + pause_seconds

    @contextlib.contextmanager
    def _timed(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            setattr(self.figures, phase, getattr(self.figures, phase) + time.monotonic() - started)

    def _connection(self) -> duckdb.DuckDBPyConnection | None:
        if self._con is None and time.monotonic() >= self._reopen_at:
            try:
                self._con = warehouse.connect(self.settings.paths.warehouse, wait_seconds=0)
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise
                return None
            self._held_since = time.monotonic()
        return self._con

    def run(
        self, *, stop: threading.Event, on_batch: Callable[[BatchReport], None] | None = None
    ) -> StreamFigures:
        """Step until `stop` is set; a failing step is logged and tried again later."""
        interval = self.settings.serving.stream.interval_seconds
        try:
            while not stop.is_set():
                try:
                    report = self.step()
                except Exception:
                    logger.exception("stream: a micro-batch failed; trying again")
                    self.release(pause_seconds=max(interval, 1.0))
                    stop.wait(max(interval, 1.0))
                    continue
                if on_batch is not None and (report.events or report.busy):
                    on_batch(report)
                if not report.more:
                    stop.wait(interval)
        finally:
            self.release()
        return self.figures

    def _apply(self, con: duckdb.DuckDBPyConnection, message_ids: list[str], new: bool) -> None:
        if self._definitions is None:
            self._definitions = self._check(con)
        ensure_tables(con)
        with self._timed("apply_seconds"):
            batch = apply_events(
                con,
                message_ids=message_ids,
                new=new,
                definitions=self._definitions,
                phone_region=self.settings.resolution.default_phone_region,
            )
        self.figures.batches += 1
        self.figures.add(batch)
        self._changed = bool(batch.entered or batch.exited)

    def _check(self, con: duckdb.DuckDBPyConnection) -> list[SegmentDefinition]:
        try:
            kept, problems = realtime_definitions(
                con, definitions=segments_flow.definitions(self.settings)
            )
        except (DefinitionError, LookupError) as error:
            logger.error("stream: no realtime segments: %s", error)
            return []
        for problem in problems:
            logger.error("stream: realtime segment left out: %s", problem)
        self.figures.skipped_segments = len(problems)
        return kept

    def _sweep_due(self) -> bool:
        seconds = self.settings.serving.stream.sweep_seconds
        return time.monotonic() - self._last_sweep >= seconds

    def _sweep(self, con: duckdb.DuckDBPyConnection) -> None:
        """End the stays that time ended (when a sweep is due); the journeys tick after."""
        if not self._sweep_due():
            return
        self._last_sweep = time.monotonic()
        if self._definitions is None:
            self._definitions = self._check(con)
        ensure_tables(con)
        batch = expire_stays(con, definitions=self._definitions)
        self.figures.sweeps += 1
        self.figures.expired += batch.exited
        self._changed = self._changed or bool(batch.entered or batch.exited)

    def _tick_due(self) -> bool:
        seconds = self.settings.segments.journeys.tick_seconds
        return bool(self._journeys) and time.monotonic() - self._last_tick >= seconds

    def _after(self, con: duckdb.DuckDBPyConnection) -> None:
        """A tick of the journeys after a batch that changed memberships, or when one is due
        (every `segments.journeys.tick_seconds`: waits, event triggers, retries)."""
        changed, self._changed = self._changed, False
        if not self._journeys or self._runtime is None or not (changed or self._tick_due()):
            return
        self._last_tick = time.monotonic()
        outcome = jn.tick(con, journeys=self._journeys, runtime=self._runtime)
        self.figures.ticks += 1
        self.figures.delivered += outcome.delivered


def run_forever(
    settings: Settings,
    *,
    stop: threading.Event,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> StreamFigures:
    """Run a stream worker until `stop` is set; what it did."""
    warehouse.connect(settings.paths.warehouse).close()  # the loader tables exist
    return StreamWorker(settings).run(stop=stop, on_batch=on_batch)
