"""`cip run`: every stage in order, each idempotent, each printing what it did."""

from __future__ import annotations

import importlib
import time
from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console

# Modules in pipelines.commands offering `stage(settings: Settings) -> None`, in data-flow order.
STAGES: list[str] = [
    "generate",
    "load",
    "collect",
    "resolve",
    "features",
    "train",
    "score",
    "segments",
    "activate",
]


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
    names = _select(start, until)
    began = time.perf_counter()
    for name in names:
        module = importlib.import_module(f"pipelines.commands.{name}")
        module.stage(settings)
    console.rule("[bold green]done")
    console.print(f"Ran {len(names)} stages in {time.perf_counter() - began:.0f} s.")
    console.print(f"Everything lives in [bold]{settings.data_dir.resolve()}[/]:")
    for line in _where_to_look(settings):
        console.print(f"  {line}")


def _select(start: str | None, until: str | None) -> list[str]:
    for name in (start, until):
        if name is not None and name not in STAGES:
            raise typer.BadParameter(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    first = STAGES.index(start) if start else 0
    last = STAGES.index(until) if until else len(STAGES) - 1
    return STAGES[first : last + 1]


def _where_to_look(settings: Settings) -> list[str]:
    paths = settings.paths
    return [
        f"warehouse (DuckDB): {paths.warehouse}  -> duckdb.connect(path, read_only=True)",
        f"MLflow runs and models: {paths.mlflow}  -> make mlflow-ui",
        f"segment exports and the marketers' report: {paths.exports}",
        "scores over HTTP: make serve",
    ]
