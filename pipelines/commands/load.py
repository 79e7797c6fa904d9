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
from pipelines.console import console, progress
from pipelines.console import stage as stage_report

__all__ = ["command", "register", "stage"]


def register(app: typer.Typer) -> None:
    app.command("load")(command)


def _files(path: Path, source: str | None) -> list[Path]:
    if path.is_dir():
        files = warehouse.source_files(path, source=source)
        if not files:
            raise FileNotFoundError(f"{path}: no source files to load (run `cip generate`?)")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if source is None:
        warehouse.source_of(path)  # fail before loading anything
    return [path]


def _mapping(pairs: list[str]) -> dict[str, str]:
    """`--map target=column` options as {target: column}."""
    mapping = {}
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise ValueError(f"--map {pair!r}: write it as DECLARED_COLUMN=FILE_COLUMN")
        mapping[target.strip()] = column.strip()
    return mapping


def _load(
    settings: Settings,
    files: list[Path],
    source: str | None,
    mapping: dict[str, str] | None = None,
) -> list[warehouse.LoadReport]:
    """Load `files` in order with a progress bar; print one row per file at the end."""
    reports = []
    con = warehouse.connect(settings.paths.warehouse)
    try:
        with progress() as bar:
            task = bar.add_task("loading", total=len(files))
            for path in files:
                bar.update(task, description=f"loading {path.name}")
                reports.append(warehouse.load_file(con, path=path, source=source, mapping=mapping))
                bar.advance(task)
            bar.update(task, description="loaded")
    finally:
        con.close()
    console.print(_table(reports))
    return reports


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


def _totals(reports: list[warehouse.LoadReport]) -> dict[str, int]:
    return {
        "files loaded": sum(not r.skipped for r in reports),
        "files already loaded": sum(r.skipped for r in reports),
        "rows read": sum(r.rows_read for r in reports),
        "rows loaded": sum(r.rows_loaded for r in reports),
        "rows duplicate": sum(r.rows_duplicate for r in reports),
        "rows quarantined": sum(r.rows_quarantined for r in reports),
    }


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
        files = _files(path or settings.paths.sources, source)
        reports = _load(settings, files, source, mapping)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error
    totals = _totals(reports)
    console.print(
        f"{totals['rows read']:,} rows read = {totals['rows loaded']:,} loaded + "
        f"{totals['rows duplicate']:,} duplicate + {totals['rows quarantined']:,} quarantined, "
        f"into {settings.paths.warehouse}"
    )
    rejected = [r for r in reports if r.all_quarantined]
    for report in rejected:
        console.print(f"[bold red]error:[/] {report.explain()}")
    if rejected:
        raise typer.Exit(code=1)


def stage(settings: Settings) -> None:
    """The load stage of `cip run`: every file of the data folder's sources/."""
    with stage_report("load") as report:
        reports = _load(settings, _files(settings.paths.sources, None), None)
        for name, value in _totals(reports).items():
            report.add(name, value)
