"""Progress by callback: how a flow says what it is doing, whoever listens.

A flow calls `progress(step, done=..., total=...)` as it goes: the step in words and, when
it can count, how far it is. The CLI draws a rich progress bar from the calls
(`pipelines.console.progress_bar`), a notebook may print them or pass nothing (`silent`).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Progress", "silent"]


class Progress(Protocol):
    """What a flow reports as it goes: the current step, and how far when it can count."""

    def __call__(
        self, step: str, /, *, done: float | None = None, total: float | None = None
    ) -> None: ...


def silent(step: str, /, *, done: float | None = None, total: float | None = None) -> None:
    """Hear nothing (the default of every flow)."""
