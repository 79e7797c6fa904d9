"""Terminal output shared by every command: one console, progress bars, stage reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

console = Console()


def progress() -> Progress:
    """A rich progress bar in the house style; use as a context manager."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@dataclass
class StageReport:
    """What a stage did: figures to print as `name: value` lines."""

    stage: str
    figures: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: object) -> None:
        self.figures[name] = value


@contextmanager
def stage(name: str) -> Iterator[StageReport]:
    """Time a stage and print its report when it ends."""
    report = StageReport(name)
    console.rule(f"[bold cyan]{name}")
    start = time.perf_counter()
    yield report
    report.seconds = time.perf_counter() - start
    print_report(report)


def print_report(report: StageReport) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    for key, value in report.figures.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("time", f"{report.seconds:.1f} s")
    console.print(table)
