"""`cip features`: build the feature snapshots, apply the Feast repo, materialize the online store.

By default every as-of date of the schedule is recomputed (snapshots follow resolution's
latest customer ids) and the online store is reloaded in full; `--only-new` computes only
dates not built yet and materializes incrementally.
"""

from __future__ import annotations

from typing import Annotated

import typer

import features
from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import features as flow
from warehouse.engine import EngineError

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
        stage(ctx.obj, only_new=only_new)
    except (features.FeatureInputError, EngineError) as error:
        console.print(f"[red]cip features: {error}[/]")
        raise typer.Exit(1) from error


def stage(settings: Settings, *, only_new: bool = False) -> flow.FeaturesOutcome:
    """The features stage of `cip run`: every as-of date recomputed."""
    outcome = run_stage("features", flow.run, settings, only_new=only_new)
    if outcome.groups_without_data:
        console.print(
            f"[yellow]No source data for {', '.join(outcome.groups_without_data)}: "
            "those features are null (orders-only mode works on the order features).[/]"
        )
    return outcome
