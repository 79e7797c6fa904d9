"""`cip features`: build the feature snapshots, apply the Feast repo, materialize the online store.

By default every as-of date of the schedule is recomputed (snapshots follow resolution's
latest customer ids) and the online store is reloaded in full; `--only-new` computes only
dates not built yet and materializes incrementally.
"""

from __future__ import annotations

import contextlib
import io
from typing import Annotated

import typer

import features
import warehouse
from pipelines.config import Settings
from pipelines.console import console, progress
from pipelines.console import stage as stage_report

__all__ = ["command", "register", "stage"]


def register(app: typer.Typer) -> None:
    app.command("features")(command)


def command(
    ctx: typer.Context,
    only_new: Annotated[
        bool,
        typer.Option(
            "--only-new", help="Compute only as-of dates not built yet; materialize incrementally."
        ),
    ] = False,
) -> None:
    """Build dated feature snapshots, apply the Feast repo and fill the online store."""
    try:
        run(ctx.obj, only_new=only_new)
    except features.FeatureInputError as error:
        console.print(f"[red]cip features: {error}[/]")
        raise typer.Exit(1) from error


def stage(settings: Settings) -> None:
    run(settings, only_new=False)


def run(settings: Settings, *, only_new: bool) -> None:
    feast_dir, config = settings.paths.feast, settings.features
    with stage_report("features") as report:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            schedule = features.default_schedule(con, settings=config)
            built = set(features.snapshot_dates(con)) if only_new else set()
            dates = [d for d in schedule if d not in built]
            with progress() as bar:
                task = bar.add_task("snapshots", total=len(features.GROUPS) + 2)
                snapshots = features.build_snapshots(
                    con,
                    as_of=dates,
                    feast_dir=feast_dir,
                    settings=config,
                    replace=not only_new,
                    on_group=lambda name: bar.update(
                        task, advance=1, description=f"snapshots: {name}"
                    ),
                )
                latest = max(features.snapshot_dates(con))
                store = features.open_store(feast_dir=feast_dir, settings=config)
                bar.update(task, description="feast apply")
                views = features.apply_repo(store, feast_dir=feast_dir, settings=config)
                bar.update(task, advance=1, description=f"materialize ({config.online_store})")
                with (
                    contextlib.redirect_stdout(io.StringIO()),
                    contextlib.redirect_stderr(io.StringIO()),
                ):  # Feast prints its own progress; ours is above
                    fresh = features.materialize(store, until=latest, incremental=only_new)
                bar.update(task, advance=1, description="features ready")
        finally:
            con.close()
        report.add("as-of dates computed", len(dates))
        if dates:
            report.add("as-of range", f"{dates[0]:%Y-%m-%d} .. {dates[-1]:%Y-%m-%d}")
        for group, rows in snapshots.rows.items():
            report.add(f"{group} rows", rows)
        report.add("feature views applied", len(views))
        report.add("services", ", ".join(features.SERVICES))
        until = min((f.until for f in fresh if f.until is not None), default=None)
        report.add(f"online store ({config.online_store}) fresh until", str(until))
    if snapshots.groups_without_data:
        console.print(
            f"[yellow]No source data for {', '.join(snapshots.groups_without_data)}: "
            "those features are null (orders-only mode works on the order features).[/]"
        )
