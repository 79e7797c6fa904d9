"""`cip journeys`: check the journeys, run the runner (one tick, or ticking until stopped),
and show each journey's funnel and lift.

`cip journeys validate` checks every journey against the segments, templates, channels,
events and scores; `cip journeys tick` runs one tick; `cip journeys run` ticks every
`segments.journeys.tick_seconds` until Ctrl-C or SIGTERM (a `kill -9` loses nothing:
the next start resumes); `cip journeys status [NAME]` prints the funnels and the lift.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import journeys as flow
from segments import journeys as jn

__all__ = ["register", "stage"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Journeys: validate, tick, run, status.", no_args_is_help=True)
    group.command("validate")(validate)
    group.command("tick")(tick)
    group.command("run")(run)
    group.command("status")(status)
    app.add_typer(group, name="journeys")


@contextmanager
def _problems() -> Iterator[None]:
    """A journey, template or definition problem, or a missing table: in red, exit 1."""
    try:
        yield
    except (jn.JourneyError, jn.TemplateError, LookupError, ValueError) as error:
        _fail(error)


def stage(settings: Settings) -> flow.TickFigures:
    """One tick of every journey (the demo's `journeys` stage)."""
    with _problems():
        return run_stage("journeys", flow.run, settings)


def validate(ctx: typer.Context) -> None:
    """Check every journey against the segments, templates, channels, events and scores."""
    with _problems():
        found = flow.definitions(ctx.obj)
    for journey in found:
        console.print(f"[green]ok[/] {journey.name}  [dim]{journey.path}[/]")


def tick(ctx: typer.Context) -> None:
    """Run one tick: enroll, exit, advance every journey, then deliver what is due."""
    stage(ctx.obj)


def run(ctx: typer.Context) -> None:
    """Keep ticking until Ctrl-C or SIGTERM; resumes where it was after any stop."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    seconds = ctx.obj.segments.journeys.tick_seconds
    console.print(f"journey runner: a tick every {seconds:g} s; Ctrl-C stops it")

    def on_tick(figures: flow.TickFigures) -> None:
        o = figures.outcome
        if o.entered or o.queued or o.delivered or o.retrying or o.dead:
            console.print(
                f"+{o.entered:,} entered, {o.exited:,} exited, {o.queued:,} queued, "
                f"{o.delivered:,} delivered, {o.retrying:,} retrying, {o.dead:,} dead-lettered"
            )

    with _problems():
        ticks = flow.run_forever(ctx.obj, stop=stop, on_tick=on_tick)
    console.print(f"journey runner stopped after {ticks:,} ticks")


def status(
    ctx: typer.Context,
    journey: Annotated[str | None, typer.Argument(help="One journey; default: all.")] = None,
) -> None:
    """Each journey's funnel per step for the treated and the holdout, and its lift."""
    with _problems():
        found = flow.status(ctx.obj, journey=journey)
    for item in found:
        columns = [
            "group",
            "step",
            "entered",
            "sent",
            "delivered",
            "opened",
            "clicked",
            "converted",
        ]
        table = Table(*columns, title=f"{item.journey.name}: {item.journey.description}")
        for row in item.funnel.itertuples(index=False):
            table.add_row(row.group, row.step, *(f"{getattr(row, c):,}" for c in columns[2:]))
        console.print(table)
        console.print(item.lift.sentence)
        if item.outbox:
            console.print(
                "outbox: " + ", ".join(f"{k} {v:,}" for k, v in sorted(item.outbox.items()))
            )


def _fail(error: object) -> NoReturn:
    console.print(f"[bold red]journeys:[/] {error}")
    raise typer.Exit(1)
