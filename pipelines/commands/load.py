"""`cip load`: load source files (CSV, Parquet, JSONL) into the warehouse's raw tables.

`--map ordered_at=order_ts` names a file's column for a declared one, so any export
loads as it is. A file whose every row was quarantined makes the command fail (exit 1),
saying which columns the source expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import warehouse
from pipelines.config import Settings
from pipelines.console import console, progress_bar, run_stage
from pipelines.flows import load as flow
from warehouse.engine import EngineError

__all__ = ["command", "register", "stage"]


def register(app: typer.Typer) -> None:
    app.command("load")(command)


def _mapping(pairs: list[str]) -> dict[str, str]:
    """`--map target=column` options as {target: column}."""
    mapping = {}
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise ValueError(f"--map {pair!r}: write it as DECLARED_COLUMN=FILE_COLUMN")
        mapping[target.strip()] = column.strip()
    return mapping


def _table(reports: list[warehouse.LoadReport]) -> Table:
    table = Table(title="cip load", title_justify="left")
    table.add_column("file")
    for name in ("read", "loaded", "duplicate", "quarantined", "seconds"):
        table.add_column(name, justify="right")
    table.add_column("note")
    for r in reports:
        figures = (r.rows_read, r.rows_loaded, r.rows_duplicate, r.rows_quarantined)
        note = "already loaded" if r.skipped else ""
        if r.ignored_columns:
            note = f"ignored columns: {', '.join(r.ignored_columns)}"
        table.add_row(Path(r.file).name, *(f"{n:,}" for n in figures), f"{r.seconds:.1f}", note)
    return table


def command(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A source file, or a folder of them named after their source "
            "(crm_contacts.csv, events.jsonl, orders.parquet, ...). Default: the data "
            "folder's sources/.",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            "-s",
            help=f"Load every file as this source ({', '.join(warehouse.SOURCES)}) instead "
            "of taking the source from each file name.",
        ),
    ] = None,
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            "-m",
            help="DECLARED=FILE_COLUMN: read a declared column from the file's column of "
            "another name, e.g. --map customer_id=CustomerID --map ordered_at=InvoiceDate "
            "--map amount=Total (repeat for each column).",
        ),
    ] = None,
) -> None:
    """Load source files into the warehouse: bad rows go to quarantine, re-loads add nothing."""
    settings: Settings = ctx.obj
    try:
        mapping = _mapping(maps or [])
        with progress_bar() as progress:
            outcome = flow.run(
                settings, path=path, source=source, mapping=mapping, progress=progress
            )
    except (FileNotFoundError, NotADirectoryError, ValueError, EngineError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error
    console.print(_table(outcome.reports))
    totals = outcome.totals
    console.print(
        f"{totals['rows read']:,} rows read = {totals['rows loaded']:,} loaded + "
        f"{totals['rows duplicate']:,} duplicate + {totals['rows quarantined']:,} quarantined, "
        f"into {outcome.warehouse}"
    )
    if outcome.lake is not None:
        console.print(
            f"lake: {sum(outcome.lake.rows.values()):,} raw rows, "
            f"{sum(outcome.lake.written.values()):,} partitions written"
        )
    for report in outcome.rejected:
        console.print(f"[bold red]error:[/] {report.explain()}")
    if outcome.rejected:
        raise typer.Exit(code=1)


def stage(settings: Settings) -> None:
    """The load stage of `cip run`: every file of the data folder's sources/."""
    run_stage("load", flow.run, settings, show=lambda o: console.print(_table(o.reports)))
