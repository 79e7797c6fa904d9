"""`cip activate`: deliver the segments to every configured destination, then write the report.

Destinations come from `segments.destinations` in the config (a CSV file export
by default). A failing destination is reported and retried by the next run;
the others go ahead. The marketers' report is then written into the exports
folder, with the churn model's lift measured on realised outcomes when a
scoring is old enough, or else read from the champion model's MLflow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import segments
import warehouse
from pipelines.commands.segments import definitions
from pipelines.config import Settings
from pipelines.console import console, progress
from pipelines.console import stage as stage_report
from pipelines.tracking import tracking_uri


def register(app: typer.Typer) -> None:
    app.command("activate")(command)


def command(
    ctx: typer.Context,
    destination: Annotated[
        list[str] | None, typer.Option("--destination", "-d", help="Only these destinations.")
    ] = None,
    segment: Annotated[
        list[str] | None, typer.Option("--segment", "-s", help="Only these segments.")
    ] = None,
) -> None:
    """Send every refreshed segment to its destinations (files, webhooks, ad audiences)."""
    settings: Settings = ctx.obj
    known = {d.name for d in settings.segments.destinations}
    unknown = set(destination or ()) - known
    if unknown:
        raise typer.BadParameter(f"unknown destinations {sorted(unknown)}; known: {sorted(known)}")
    if not activate(settings, destinations=destination, only_segments=segment):
        raise typer.Exit(1)


def stage(settings: Settings) -> None:
    """Deliver every pending segment and write the marketers' report."""
    activate(settings)


def activate(
    settings: Settings,
    *,
    destinations: list[str] | None = None,
    only_segments: list[str] | None = None,
) -> bool:
    """Deliver, print what happened, write the report; False when a delivery failed."""
    chosen = [
        d for d in settings.segments.destinations if not destinations or d.name in destinations
    ]
    with stage_report("activate") as report:
        with warehouse.connect(settings.paths.warehouse) as con, progress() as bar:
            pending = segments.pending_deliveries(con, destinations=chosen, segments=only_segments)
            task = bar.add_task("deliveries", total=len(pending))
            outcomes = segments.activate(
                con, destinations=chosen, segments=only_segments, exports=settings.paths.exports,
                retry=settings.segments.retry,
                phone_region=settings.resolution.default_phone_region,
                on_delivery=lambda _: bar.advance(task),
            )  # fmt: skip
        for status in ("sent", "up_to_date", "failed"):
            report.add(status.replace("_", " "), sum(o.status == status for o in outcomes))
        report.add("rows sent", sum(o.rows for o in outcomes))
        report.add("withheld (no consent)", sum(o.withheld for o in outcomes))
        for failed in (o for o in outcomes if o.status == "failed"):
            console.print(f"[red]failed[/] {failed.destination}/{failed.segment}: {failed.error}")
        report.add("report", write_marketers_report(settings))
    return not any(o.status == "failed" for o in outcomes)


def write_marketers_report(settings: Settings) -> Path:
    """Write the report (`segments.report_file` in the exports folder) and return its path."""
    exports = settings.paths.exports
    with warehouse.connect(settings.paths.warehouse) as con:
        lift = segments.realised_lift(con, horizon_days=settings.models.churn_horizon_days)
        downloads = {
            segment: path.resolve().relative_to(exports.resolve()).as_posix()
            for segment, path in segments.latest_exports(con).items()
        }
        return segments.write_report(
            con,
            path=exports / settings.segments.report_file,
            definitions=definitions(settings),
            downloads=downloads,
            lift=lift or champion_lift(settings),
        )


def champion_lift(settings: Settings) -> segments.Lift | None:
    """The churn champion's held-out top-decile capture, from its MLflow run (None if none)."""
    if not settings.models.tracking_uri and not (settings.paths.mlflow / "mlflow.db").exists():
        return None
    from mlflow import MlflowClient

    from models.registry import champion_version

    client = MlflowClient(tracking_uri(settings), registry_uri=tracking_uri(settings))
    version = champion_version(client, "churn")
    if version is None:
        return None
    run = client.get_run(client.get_model_version("churn", version).run_id)
    capture = run.data.metrics.get("churn.lightgbm.top_decile_capture")
    if capture is None:
        return None
    test_cutoff = run.data.params.get("churn.test_cutoff", "the test cutoff")
    horizon = run.data.params.get("churn.horizon_days", settings.models.churn_horizon_days)
    basis = (
        f"From the churn model's held-out test (model version {version}: customers active on "
        f"{test_cutoff}, and who of them bought nothing in the {horizon} days after). No scoring "
        "of ours is older than the churn horizon yet, so it cannot be measured on our own scores."
    )
    return segments.Lift(capture=capture, basis=basis)
