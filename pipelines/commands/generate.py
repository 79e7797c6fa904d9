"""`cip generate`: write the synthetic customer universe (source files plus the hidden truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.table import Table

from pipelines.config import Settings
from pipelines.console import console, print_invalid, progress_bar, run_stage
from pipelines.flows import generate as flow
from warehouse.settings import GenerateSettings
from warehouse.synthetic import source_file

__all__ = ["command", "register", "stage"]


def register(app: typer.Typer) -> None:
    app.command("generate")(command)


def _table(outcome: flow.GenerateOutcome) -> Table:
    table = Table(title="cip generate", title_justify="left")
    table.add_column("source")
    table.add_column("file")
    table.add_column("rows", justify="right")
    for source, n in outcome.rows.items():
        table.add_row(source, str(source_file(outcome.sources, source)), f"{n:,}")
    return table


def command(
    ctx: typer.Context,
    people: Annotated[
        int | None,
        typer.Option(
            "--people",
            "-n",
            help="How many people to invent (50 to 1,000,000); each holds records in several "
            "sources. Default: generate.people from the config (20,000).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed: the same seed and options give byte-identical files. "
            "Default: generate.seed from the config (42).",
            show_default=False,
        ),
    ] = None,
    locale: Annotated[
        Literal["en", "ru"] | None,
        typer.Option(
            help="en: US names, addresses and phone numbers, USD. ru: Russian ones, RUB. "
            "Default: generate.locale from the config (en).",
            show_default=False,
        ),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(
            help="Multiplier on identity noise (typos, nicknames, email and phone variants, "
            "blanks, junk): 0 clean, 1 realistic, up to 3. Default: generate.noise (1.0).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the source files (one per source). Default: the data folder's "
            "sources/.",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the truth (record_truth.parquet, people.parquet), which only "
            "evaluation and tests read. Default: truth/ next to the sources folder (the data "
            "folder's truth/).",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Invent people and write the records a business would hold about them, one file per
    source (CSV, Parquet, Segment-shaped JSONL), plus the truth about who is who."""
    settings: Settings = ctx.obj
    overrides = {"people": people, "seed": seed, "locale": locale, "noise": noise}
    try:
        chosen = GenerateSettings.model_validate(
            settings.generate.model_dump() | {k: v for k, v in overrides.items() if v is not None}
        )
    except ValidationError as error:
        print_invalid(error)
        raise typer.Exit(code=2) from error
    with progress_bar() as progress:
        outcome = flow.run(
            settings.model_copy(update={"generate": chosen}),
            sources=out,
            truth=truth,
            force=True,
            progress=progress,
        )
    console.print(_table(outcome))
    console.print(
        f"{sum(outcome.rows.values()):,} records about {chosen.people:,} people "
        f"(locale {chosen.locale}, seed {chosen.seed}); truth in {outcome.truth}"
    )


def stage(settings: Settings) -> None:
    """The generate stage of `cip run`: skipped when the files already match the settings."""
    run_stage("generate", flow.run, settings)
