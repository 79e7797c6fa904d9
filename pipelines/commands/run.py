"""`cip run`: every stage's flow in order (`pipelines.flows.pipeline`), each idempotent,
each printing what it did."""

from __future__ import annotations

import importlib
import time
from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console
from pipelines.flows.pipeline import STAGES, stage_names
from warehouse.engine import EngineError


def register(app: typer.Typer) -> None:
    app.command("run")(command)


def command(
    ctx: typer.Context,
    start: Annotated[
        str | None, typer.Option("--from", help=f"Start at this stage: one of {', '.join(STAGES)}.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Stop after this stage.")] = None,
) -> None:
    """Run the whole pipeline on the configured data folder (the job behind `make demo`)."""
    settings: Settings = ctx.obj
    try:
        names = stage_names(start, until)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    began = time.perf_counter()
    for name in names:
        # Each command module runs its stage's flow and prints its outcome.
        try:
            importlib.import_module(f"pipelines.commands.{name}").stage(settings)
        except EngineError as error:  # engine: spark that cannot run here
            console.print(f"[bold red]error:[/] {error}")
            raise typer.Exit(code=1) from error
    console.rule("[bold green]done")
    console.print(f"Ran {len(names)} stages in {time.perf_counter() - began:.0f} s.")
    console.print(f"Everything lives in [bold]{settings.data_dir.resolve()}[/]:")
    for line in _where_to_look(settings):
        console.print(f"  {line}")


def _where_to_look(settings: Settings) -> list[str]:
    paths = settings.paths
    return [
        f"warehouse (DuckDB): {paths.warehouse}  -> duckdb.connect(path, read_only=True)",
        f"MLflow runs and models: {paths.mlflow}  -> make mlflow-ui",
        f"segment exports and the marketers' report: {paths.exports}",
        "scores over HTTP: make serve",
    ]
