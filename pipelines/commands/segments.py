"""`cip segments`: refresh every segment, and look at definitions, sizes and changes.

`cip segments` (or `cip segments refresh`) checks every definition against the
warehouse, then evaluates all segments and records who entered and left;
`validate` only checks; `history` shows sizes over time; `changes NAME` who
entered and left at the latest refresh; `report` writes the marketers' report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import segments
import warehouse
from pipelines.config import Settings
from pipelines.console import console, progress
from pipelines.console import stage as stage_report


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


def definition_folders(settings: Settings) -> list[Path]:
    """The shipped examples (unless turned off), then the user's folders."""
    examples = [segments.EXAMPLES_DIR] if settings.segments.include_examples else []
    return [*examples, *settings.segments.definition_dirs]


def definitions(settings: Settings) -> list[segments.SegmentDefinition]:
    """Every segment definition the settings point at; exits with the problems if any."""
    try:
        return segments.load_definitions(folders=definition_folders(settings))
    except segments.DefinitionError as error:
        _fail(error)


def stage(settings: Settings) -> None:
    """Evaluate every segment and record the membership changes (one refresh)."""
    found = definitions(settings)
    with stage_report("segments") as report:
        with warehouse.connect(settings.paths.warehouse) as con, progress() as bar:
            task = bar.add_task("segments", total=len(found))
            try:
                results = segments.refresh_segments(
                    con,
                    definitions=found,
                    as_of=settings.segments.as_of,
                    on_segment=lambda _: bar.advance(task),
                )
            except (segments.DefinitionError, LookupError) as error:
                _fail(error)
        report.add("as of", f"{results[0].as_of:%Y-%m-%d %H:%M}" if results else "-")
        for run in sorted(results, key=lambda r: r.segment):
            report.add(run.segment, f"{run.size:,} members (+{run.entered:,} / -{run.exited:,})")


def refresh_or_subcommand(ctx: typer.Context) -> None:
    """Refresh every segment when no subcommand is given."""
    if ctx.invoked_subcommand is None:
        stage(ctx.obj)


def refresh(ctx: typer.Context) -> None:
    """Evaluate every segment and record who entered and who left."""
    stage(ctx.obj)


def validate(ctx: typer.Context) -> None:
    """Check every definition against the warehouse's fields without evaluating anything."""
    settings: Settings = ctx.obj
    found = definitions(settings)
    with warehouse.connect(settings.paths.warehouse, read_only=True) as con:
        try:
            segments.check_definitions(con, definitions=found, as_of=settings.segments.as_of)
        except (segments.DefinitionError, LookupError) as error:
            _fail(error)
    for definition in found:
        console.print(f"[green]ok[/] {definition.name}  [dim]{definition.path}[/]")


def history(
    ctx: typer.Context,
    segment: Annotated[str | None, typer.Argument(help="One segment; default: all.")] = None,
) -> None:
    """Sizes over time: every refresh with its size and how many entered and left."""
    with warehouse.connect(ctx.obj.paths.warehouse) as con:
        frame = segments.runs(con, segment=segment)
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
    with warehouse.connect(ctx.obj.paths.warehouse) as con:
        frame = segments.runs(con, segment=segment)
        if frame.empty:
            _fail(f"segment {segment!r} has never been refreshed")
        since = frame["evaluated_at"].iloc[-2] if len(frame) > 1 else None
        diff = segments.changes_between(
            con, segment=segment, since=since, until=frame["evaluated_at"].iloc[-1]
        )
    for change in ("entered", "exited"):
        ids = diff.loc[diff["change"] == change, "customer_id"].astype(str).tolist()
        more = f" and {len(ids) - limit:,} more" if len(ids) > limit else ""
        console.print(f"[bold]{change}[/] ({len(ids):,}): {', '.join(ids[:limit])}{more}")


def report(ctx: typer.Context) -> None:
    """Write the marketers' HTML report into the exports folder."""
    from pipelines.commands.activate import write_marketers_report

    path = write_marketers_report(ctx.obj)
    console.print(f"report: {path}")


def _fail(error: object) -> None:
    console.print(f"[bold red]segments:[/] {error}")
    raise typer.Exit(1)
