"""The whole pipeline: every stage's flow in data-flow order, each idempotent (`cip run`)."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.config import Settings
from pipelines.flows import (
    activate,
    collect,
    features,
    generate,
    journeys,
    load,
    resolve,
    score,
    segments,
    train,
)
from pipelines.flows.progress import Progress, silent

__all__ = ["STAGES", "run", "stage_names"]

STAGES: dict[str, Callable[..., object]] = {
    "generate": generate.run,
    "load": load.run,
    "collect": collect.run,
    "resolve": resolve.run,
    "features": features.run,
    "train": train.run,
    "score": score.run,
    "segments": segments.run,
    "activate": activate.run,
    "journeys": journeys.run,
}
"""Each stage's flow, `flow(settings, progress=...) -> outcome`, in data-flow order."""


def stage_names(start: str | None = None, until: str | None = None) -> list[str]:
    """The stages from `start` to `until` (default: all); ValueError for an unknown name."""
    for name in (start, until):
        if name is not None and name not in STAGES:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGES)}")
    names = list(STAGES)
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(names) - 1
    return names[first : last + 1]


def run(
    settings: Settings,
    *,
    start: str | None = None,
    until: str | None = None,
    progress: Progress = silent,
    on_outcome: Callable[[str, object], None] | None = None,
) -> dict[str, object]:
    """Run the stages from `start` to `until` on `settings`; each stage's outcome by name
    (`on_outcome(name, outcome)` hears of each as it ends)."""
    outcomes = {}
    for name in stage_names(start, until):
        outcomes[name] = STAGES[name](settings, progress=progress)
        if on_outcome is not None:
            on_outcome(name, outcomes[name])
    return outcomes
