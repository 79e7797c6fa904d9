"""Terminal output shared by every command: one console, progress bars, stage reports.

The flows (`pipelines.flows`) report progress by callback; `progress_bar` turns the calls
into a rich progress bar, `stage` frames a stage with a rule and prints its figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from pydantic import ValidationError

    from pipelines.flows.progress import Progress as FlowProgress

console = Console()
T = TypeVar("T")


def print_invalid(error: ValidationError, *, source: str = "") -> None:
    """One line per invalid setting: where it is, what is wrong, and `source` (where it
    was given) if any; never the traceback."""
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        given = f" (given in {source})" if source else ""
        console.print(f"[bold red]error:[/] {where}: {problem['msg']}{given}", highlight=False)


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


@contextmanager
def progress_bar() -> Iterator[FlowProgress]:
    """A progress bar driven by a flow's progress calls (the step, how far when counted)."""
    with progress() as bar:
        task = bar.add_task("", total=None)

        def report(step: str, /, *, done: float | None = None, total: float | None = None) -> None:
            bar.update(task, description=step, completed=done, total=total)

        yield report


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


def run_stage(
    name: str,
    flow: Callable[..., T],
    settings: Any,
    *,
    show: Callable[[T], None] | None = None,
    **options: Any,
) -> T:
    """Run a flow as a stage: a rule, a progress bar, what `show` prints of the outcome,
    then the outcome's figures and the time; the outcome."""
    with stage(name) as report:
        with progress_bar() as progress:
            outcome = flow(settings, progress=progress, **options)
        if show is not None:
            show(outcome)
        report.figures.update(outcome.figures)
    return outcome
