"""`cip activate`: deliver the segments to every configured destination, then write the report.

Destinations come from `segments.destinations` in the config (a CSV file export
by default), each a kind registered in `segments.destinations`. A failing
destination is reported and retried by the next run; the others go ahead. The
marketers' report is then written into the exports folder (`pipelines.flows.report`).
"""

from __future__ import annotations

from typing import Annotated

import typer

import segments
from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import activate as flow

__all__ = ["command", "register", "stage"]


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
    try:
        outcome = stage(ctx.obj, destinations=destination, only_segments=segment)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    if outcome.failed:
        raise typer.Exit(1)


def stage(
    settings: Settings,
    *,
    destinations: list[str] | None = None,
    only_segments: list[str] | None = None,
) -> flow.ActivateOutcome:
    """Deliver every pending segment and write the marketers' report."""
    try:
        return run_stage(
            "activate", flow.run, settings, show=_failures,
            destinations=destinations, only_segments=only_segments,
        )  # fmt: skip
    except segments.DefinitionError as error:  # the report reads the definitions
        console.print(f"[bold red]segments:[/] {error}")
        raise typer.Exit(1) from error


def _failures(outcome: flow.ActivateOutcome) -> None:
    for failed in outcome.failed:
        console.print(f"[red]failed[/] {failed.destination}/{failed.segment}: {failed.error}")
