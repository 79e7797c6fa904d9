"""The `cip` command: one subcommand per stage, plus `cip run` for all of them."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pipelines.config import load_settings
from pipelines.console import console, print_invalid
from pipelines.logs import log_to_file
from pipelines.relocate import relocate

app = typer.Typer(
    help="Customer intelligence platform: ingest, resolve, featurize, predict, serve, segment.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file (default: ./cip.yaml). Environment variables "
            "CIP_<SECTION>__<NAME> override it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Load settings once; every subcommand reads them from the context. Dependencies'
    chatter goes to the data folder's log file, not the console (`pipelines.logs`); a data
    folder copied or moved since it was last used is re-pointed (`pipelines.relocate`)."""
    try:
        settings = load_settings(config)
    except ValidationError as error:
        given = config or os.environ.get("CIP_CONFIG") or "cip.yaml"
        print_invalid(error, source=f"{given} or a CIP_<SECTION>__<NAME> variable")
        raise typer.Exit(code=2) from error
    log_to_file(settings.paths.log_file)
    for line in relocate(settings):
        console.print(f"data folder moved to {settings.data_dir}: {line}")
    ctx.obj = settings


# Modules in pipelines.commands; each offers `register(app)` to add its subcommands.
COMMAND_MODULES = [
    "run",
    "generate",
    "load",
    "collect",
    "features",
    "serve",
    "stream",
    "train",
    "score",
    "backtest",
    "resolve",
    "segments",
    "activate",
    "journeys",
    "users",
    "privacy",
]

for _name in COMMAND_MODULES:
    importlib.import_module(f"pipelines.commands.{_name}").register(app)
