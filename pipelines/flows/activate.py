"""The activate flow: deliver the segments to every configured destination, then write the
marketers' report. A failing destination is reported and retried by the next run; the
others go ahead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import segments
import warehouse
from pipelines.config import Settings
from pipelines.flows import report
from pipelines.flows.progress import Progress, silent

__all__ = ["ActivateOutcome", "run"]


@dataclass(frozen=True)
class ActivateOutcome:
    """Every delivery tried, and the report written after."""

    deliveries: list[segments.Delivery]
    report: Path

    @property
    def failed(self) -> list[segments.Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {
            status.replace("_", " "): sum(d.status == status for d in self.deliveries)
            for status in ("sent", "up_to_date", "failed")
        }
        return figures | {
            "rows sent": sum(d.rows for d in self.deliveries),
            **{
                f"withheld ({reason.replace('_', ' ')})": sum(
                    d.withheld_by.get(reason, 0) for d in self.deliveries
                )
                for reason in segments.WITHHELD_REASONS
            },
            "report": self.report,
        }


def run(
    settings: Settings,
    *,
    destinations: list[str] | None = None,
    only_segments: list[str] | None = None,
    progress: Progress = silent,
) -> ActivateOutcome:
    """Deliver every pending segment (or `only_segments`) to every configured destination
    (or those named in `destinations`), then write the report."""
    configured = settings.segments.destinations
    unknown = set(destinations or ()) - {d.name for d in configured}
    if unknown:
        known = sorted(d.name for d in configured)
        raise ValueError(f"unknown destinations {sorted(unknown)}; known: {known}")
    chosen = [d for d in configured if not destinations or d.name in destinations]
    with warehouse.connect(settings.paths.warehouse) as con:
        pending = segments.pending_deliveries(con, destinations=chosen, segments=only_segments)
        done: list[segments.Delivery] = []

        def on_delivery(delivery: segments.Delivery) -> None:
            done.append(delivery)
            progress("deliveries", done=len(done), total=len(pending))

        progress("deliveries", done=0, total=len(pending))
        deliveries = segments.activate(
            con, destinations=chosen, segments=only_segments, exports=settings.paths.exports,
            retry=settings.segments.retry, phone_region=settings.resolution.default_phone_region,
            on_delivery=on_delivery,
        )  # fmt: skip
    return ActivateOutcome(deliveries, report.write(settings))
