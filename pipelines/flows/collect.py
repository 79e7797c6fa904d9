"""The collect flow: what the collector's append log holds, into `raw_events`."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import Settings
from pipelines.flows.progress import Progress, silent
from serving.collector import BatchReport, load_all

__all__ = ["CollectOutcome", "run"]


@dataclass(frozen=True)
class CollectOutcome:
    """What the loading of the log did; `busy` when another process held the warehouse."""

    report: BatchReport

    @property
    def busy(self) -> bool:
        return self.report.busy

    @property
    def figures(self) -> dict[str, object]:
        r = self.report
        return {
            "requests": r.requests,
            "events": r.events,
            "events loaded": r.loaded,
            "duplicates": r.duplicates,
            "quarantined": r.quarantined,
            "log segments finished": r.segments_finished,
        }


def run(settings: Settings, *, progress: Progress = silent) -> CollectOutcome:
    """Load every event still in the collector's log into the warehouse."""
    events = 0

    def on_batch(batch: BatchReport) -> None:
        nonlocal events
        events += batch.events
        progress("loading the collector log", done=events)

    progress("loading the collector log", done=0)
    totals = load_all(
        log_dir=settings.paths.collector,
        warehouse=settings.paths.warehouse,
        max_bytes=settings.serving.collector.load_batch_bytes,
        on_batch=on_batch,
    )
    return CollectOutcome(totals)
