"""Wall and CPU seconds per step of a run, for the benchmarks.

`StepTimer.wrap(owner, name)` replaces the function `owner.name` (a module's function or
a class's method) with one that times each call; a step's figures are its own time,
without the time of the wrapped steps it calls, so that the rows add up to the run. CPU
is counted for this process (Python, DuckDB) and its children (the Spark JVM) apart.
`restore()` puts the functions back.
"""

from __future__ import annotations

import contextlib
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = ["StepTimer", "table", "tree_cpu_seconds"]


def tree_cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) so far of this process and of its live children."""
    me = psutil.Process()
    own = me.cpu_times()
    children = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            children += times.user + times.system
    return own.user + own.system, children


def _now() -> tuple[float, float, float]:
    return time.perf_counter(), *tree_cpu_seconds()


@dataclass
class _Totals:
    calls: int = 0
    wall: float = 0.0
    python_cpu: float = 0.0
    children_cpu: float = 0.0
    spans: list[tuple[float, float]] = field(default_factory=list)  # perf_counter, per call


class StepTimer:
    """Times the functions it wraps, each exclusive of the wrapped calls nested in it."""

    def __init__(self) -> None:
        self.totals: dict[str, _Totals] = {}
        self._stack: list[list[float]] = []  # per open call: nested wall, python, children
        self._wrapped: list[tuple[Any, str, Any]] = []

    def wrap(
        self, owner: Any, name: str, label: str | None = None, *, per_call: bool = False
    ) -> None:
        """Time every call of `owner.name` as step `label` (default: the name); with
        `per_call`, each call is a step of its own (`label #1`, `label #2`, ...)."""
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        kind = type(original) if isinstance(original, (staticmethod, classmethod)) else None
        function = original.__func__ if kind else original
        step = label or name
        calls = 0

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            with self._timing(f"{step} #{calls}" if per_call else step):
                return function(*args, **kwargs)

        setattr(owner, name, kind(timed) if kind else timed)
        self._wrapped.append((owner, name, original))

    def restore(self) -> None:
        """Put back every wrapped function."""
        for owner, name, original in reversed(self._wrapped):
            setattr(owner, name, original)
        self._wrapped.clear()

    @contextlib.contextmanager
    def _timing(self, step: str):
        totals = self.totals.setdefault(step, _Totals())
        start = _now()
        self._stack.append([0.0, 0.0, 0.0])
        try:
            yield
        finally:
            nested = self._stack.pop()
            spent = [end - begin for end, begin in zip(_now(), start, strict=True)]
            own = [total - inner for total, inner in zip(spent, nested, strict=True)]
            totals.calls += 1
            totals.wall += own[0]
            totals.python_cpu += own[1]
            totals.children_cpu += own[2]
            totals.spans.append((start[0], start[0] + spent[0]))
            if self._stack:
                self._stack[-1] = [a + b for a, b in zip(self._stack[-1], spent, strict=True)]

    def rows(self, samples: list[tuple[float, int]] | None = None) -> list[dict[str, Any]]:
        """One row per step, in the order of their first call; with `samples` (perf_counter,
        resident bytes), also the largest sample taken during the step's calls (nested
        steps included), GiB ("-": no sample fell in a call)."""
        rows = []
        for step, t in self.totals.items():
            row = {
                "step": step,
                "calls": t.calls,
                "wall_s": round(t.wall, 2),
                "python_cpu_s": round(t.python_cpu, 2),
                "jvm_cpu_s": round(t.children_cpu, 2),
            }
            if samples is not None:
                during = [rss for at, rss in samples if any(a <= at <= b for a, b in t.spans)]
                row["peak_rss_gib"] = round(max(during) / 1024**3, 2) if during else "-"
            rows.append(row)
        return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    peaks = all("peak_rss_gib" in r for r in rows)
    lines = [
        "| step | calls | wall s | CPU s (Python) | CPU s (JVM) |"
        + (" peak RSS GiB |" if peaks else ""),
        "|---|---:|---:|---:|---:|" + ("---:|" if peaks else ""),
    ]
    lines += [
        f"| {r['step']} | {r['calls']} | {r['wall_s']} | {r['python_cpu_s']} | {r['jvm_cpu_s']} |"
        + (f" {r['peak_rss_gib']} |" if peaks else "")
        for r in rows
    ]
    return "\n".join(lines)
