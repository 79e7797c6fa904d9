"""`cip stream`: the stream worker alone (`cip serve` runs one beside the collector).

It loads the collector's log as it grows, ties each new event to a customer, keeps the
`realtime: true` segments current for the customers concerned and ticks the journeys, until
Ctrl-C or SIGTERM (a `kill -9` loses nothing: the next start resumes from the log's offsets).
Run it with `cip collect` only when that collector's own loader is off
(`serving.collector.background_load: false`): events another loader moves skip the stream.
"""

from __future__ import annotations

import signal
import threading

import typer

from pipelines.config import Settings
from pipelines.console import console
from pipelines.flows import stream as flow
from serving.collector.loader import BatchReport

__all__ = ["command", "register"]


def register(app: typer.Typer) -> None:
    app.command("stream")(command)


def command(ctx: typer.Context) -> None:
    """Keep realtime segments and journeys current as events reach the collector."""
    settings: Settings = ctx.obj
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(
        f"stream worker: the collector log in {settings.paths.collector} every "
        f"{settings.serving.stream.interval_seconds:g} s; Ctrl-C stops it"
    )

    def on_batch(report: BatchReport) -> None:
        if report.busy:
            console.print("[dim]warehouse busy (another command has it); the events wait[/]")
        else:
            console.print(f"{report.events:,} events loaded ({report.duplicates:,} duplicates)")

    figures = flow.run_forever(settings, stop=stop, on_batch=on_batch)
    console.print(
        "stream worker stopped: " + ", ".join(f"{k} {v}" for k, v in figures.figures.items())
    )
