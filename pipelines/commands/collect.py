"""`cip collect`: run the Segment-compatible event collector, or flush its log into the warehouse.

`cip collect` serves the collector alone with uvicorn (the same app `cip serve` mounts),
loading its log into the warehouse in the background. `cip collect flush` loads whatever the
log still holds, e.g. after the collector stopped while the warehouse was busy; as a stage of
`cip run` it does the same, so collected events reach resolution.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import collect as flow
from serving.collector import serve

__all__ = ["command", "flush", "register", "stage"]

collect_app = typer.Typer(
    help="The Segment-compatible event collector.", invoke_without_command=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(collect_app, name="collect")


@collect_app.callback()
def command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: settings).")] = None,
    access_log: Annotated[bool, typer.Option(help="Log each request (path, status).")] = True,
) -> None:
    """Serve POST /v1/track, /v1/identify, ... /v1/batch until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    settings: Settings = ctx.obj
    collector = settings.serving.collector
    if not collector.write_keys:
        raise typer.BadParameter(
            'no write keys: set CIP_SERVING__COLLECTOR__WRITE_KEYS=\'{"web": "<key>"}\' '
            "(source name -> write key)"
        )
    host, port = host or collector.host, port or collector.port
    console.print(
        f"Collector on http://{host}:{port}/v1/ for sources {', '.join(collector.write_keys)}; "
        f"log in {settings.paths.collector}, loading into {settings.paths.warehouse}"
    )
    serve(
        settings=collector,
        log_dir=settings.paths.collector,
        warehouse=settings.paths.warehouse,
        host=host,
        port=port,
        access_log=access_log,
    )


@collect_app.command("flush")
def flush(ctx: typer.Context) -> None:
    """Load every event still in the collector's log into the warehouse."""
    if stage(ctx.obj).busy:
        raise typer.Exit(1)


def stage(settings: Settings) -> flow.CollectOutcome:
    """Load what the collector's log holds into `raw_events` (for `cip run`)."""
    return run_stage("collect", flow.run, settings, show=_busy)


def _busy(outcome: flow.CollectOutcome) -> None:
    if outcome.busy:
        console.print("[yellow]the warehouse is busy (another process holds it); try later")
