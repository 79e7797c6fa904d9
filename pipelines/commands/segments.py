"""`cip segments`: refresh every segment, and look at definitions, sizes and changes.

`cip segments` (or `cip segments refresh`) checks every definition against the
warehouse, then evaluates all segments and records who entered and left;
`validate` only checks; `history` shows sizes over time; `changes NAME` who
entered and left at the latest refresh; `report` writes the marketers' report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.table import Table

import segments
from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import report as report_flow
from pipelines.flows import segments as flow

__all__ = ["register", "stage"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Predictive segments: refresh, validate, history, changes, report.",
        invoke_without_command=True,
    )
    group.callback(invoke_without_command=True)(refresh_or_subcommand)
    group.command("refresh")(refresh)
    group.command("validate")(validate)
    group.command("history")(history)
    group.command("changes")(changes)
    group.command("report")(report)
    app.add_typer(group, name="segments")


@contextmanager
def _problems() -> Iterator[None]:
    """A definition problem or a missing table: said in red, exit status 1."""
    try:
        yield
    except (segments.DefinitionError, LookupError) as error:
        _fail(error)


def stage(settings: Settings) -> flow.SegmentsOutcome:
    """Evaluate every segment and record the membership changes (one refresh)."""
    with _problems():
        return run_stage("segments", flow.run, settings)


def refresh_or_subcommand(ctx: typer.Context) -> None:
    """Refresh every segment when no subcommand is given."""
    if ctx.invoked_subcommand is None:
        stage(ctx.obj)


def refresh(ctx: typer.Context) -> None:
    """Evaluate every segment and record who entered and who left."""
    stage(ctx.obj)


def validate(ctx: typer.Context) -> None:
    """Check every definition against the warehouse's fields without evaluating anything."""
    with _problems():
        found = flow.validate(ctx.obj)
    for definition in found:
        console.print(f"[green]ok[/] {definition.name}  [dim]{definition.path}[/]")


def history(
    ctx: typer.Context,
    segment: Annotated[str | None, typer.Argument(help="One segment; default: all.")] = None,
) -> None:
    """Sizes over time: every refresh with its size and how many entered and left."""
    frame = flow.history(ctx.obj, segment=segment)
    table = Table("run", "segment", "evaluated at (UTC)", "as of", "size", "entered", "left")
    for row in frame.itertuples():
        table.add_row(
            row.run_id, row.segment, f"{row.evaluated_at:%Y-%m-%d %H:%M:%S}",
            f"{row.as_of:%Y-%m-%d %H:%M}", f"{row.size:,}", f"{row.entered:,}", f"{row.exited:,}",
        )  # fmt: skip
    console.print(table)


def changes(
    ctx: typer.Context,
    segment: Annotated[str, typer.Argument(help="The segment.")],
    limit: Annotated[int, typer.Option(help="Customer ids shown per direction.")] = 20,
) -> None:
    """Who entered and who left `segment` at its latest refresh (customer ids only)."""
    with _problems():
        found = flow.changes(ctx.obj, segment=segment)
    for change, ids in (("entered", found.entered), ("exited", found.exited)):
        more = f" and {len(ids) - limit:,} more" if len(ids) > limit else ""
        console.print(f"[bold]{change}[/] ({len(ids):,}): {', '.join(ids[:limit])}{more}")


def report(ctx: typer.Context) -> None:
    """Write the marketers' HTML report into the exports folder."""
    with _problems():
        path = report_flow.write(ctx.obj)
    console.print(f"report: {path}")


def _fail(error: object) -> NoReturn:
    console.print(f"[bold red]segments:[/] {error}")
    raise typer.Exit(1)
