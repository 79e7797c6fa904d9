"""The features flow: dated snapshots, the Feast repo applied, the online store filled.

By default every as-of date of the schedule is recomputed (snapshots follow resolution's
latest customer ids) and the online store is reloaded in full; `only_new` computes only
dates not built yet and materializes incrementally.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import datetime

import features
import warehouse
from pipelines.config import Settings
from pipelines.engines import engine_for
from pipelines.flows.progress import Progress, silent

__all__ = ["FeaturesOutcome", "run"]


@dataclass(frozen=True)
class FeaturesOutcome:
    """The as-of dates computed, rows per group, the views applied and the online store's
    freshness."""

    dates: list[datetime]
    snapshots: features.SnapshotReport
    views: list[str]
    online_store: str
    fresh_until: datetime | None

    @property
    def groups_without_data(self) -> list[str]:
        """Groups whose sources are absent or empty: their features are null."""
        return self.snapshots.groups_without_data

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {"as-of dates computed": len(self.dates)}
        if self.dates:
            figures["as-of range"] = f"{self.dates[0]:%Y-%m-%d} .. {self.dates[-1]:%Y-%m-%d}"
        figures |= {f"{group} rows": rows for group, rows in self.snapshots.rows.items()}
        return figures | {
            "feature views applied": len(self.views),
            "services": ", ".join(features.SERVICES),
            f"online store ({self.online_store}) fresh until": str(self.fresh_until),
        }


def run(
    settings: Settings, *, only_new: bool = False, progress: Progress = silent
) -> FeaturesOutcome:
    """Build the snapshots of the schedule (`only_new`: the dates not built yet; on Spark
    with `engine: spark`), apply the Feast repo and materialize the online store."""
    feast_dir, config = settings.paths.feast, settings.features
    steps = len(features.GROUPS) + 2
    engine = engine_for(settings)
    try:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            schedule = features.default_schedule(con, settings=config)
            built = set(features.snapshot_dates(con)) if only_new else set()
            dates = [d for d in schedule if d not in built]
            groups: list[str] = []

            def on_group(name: str) -> None:
                groups.append(name)
                progress(f"snapshots: {name}", done=len(groups), total=steps)

            snapshots = features.build_snapshots(
                con,
                as_of=dates,
                feast_dir=feast_dir,
                settings=config,
                replace=not only_new,
                on_group=on_group,
                engine=engine,
            )
            latest = max(features.snapshot_dates(con))
        finally:
            con.close()
        progress("feast apply", done=steps - 2, total=steps)
        store = features.open_store(feast_dir=feast_dir, settings=config, engine=engine)
        views = features.apply_repo(store, feast_dir=feast_dir, settings=config)
        progress(f"materialize ({config.online_store})", done=steps - 1, total=steps)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            fresh = features.materialize(store, until=latest, incremental=only_new)  # Feast prints
    finally:
        if engine is not None:
            engine.cleanup()  # Spark's scratch: the snapshots' inputs, Feast's staged reads
    progress("features ready", done=steps, total=steps)
    until = min((f.until for f in fresh if f.until is not None), default=None)
    return FeaturesOutcome(dates, snapshots, views, config.online_store, until)
