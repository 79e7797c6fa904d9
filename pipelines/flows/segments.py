"""The segments flows: refresh every segment (membership history), check definitions,
and read sizes over time and who entered and left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import segments
import warehouse
from pipelines.config import Settings
from pipelines.flows.progress import Progress, silent

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Changes",
    "SegmentsOutcome",
    "changes",
    "definition_folders",
    "definitions",
    "history",
    "run",
    "save_folder",
    "validate",
]


@dataclass(frozen=True)
class SegmentsOutcome:
    """One refresh: each segment's size and who entered and exited."""

    runs: list[segments.SegmentRun]

    @property
    def figures(self) -> dict[str, object]:
        as_of = f"{self.runs[0].as_of:%Y-%m-%d %H:%M}" if self.runs else "-"
        return {"as of": as_of} | {
            run.segment: f"{run.size:,} members (+{run.entered:,} / -{run.exited:,})"
            for run in sorted(self.runs, key=lambda r: r.segment)
        }


def definition_folders(settings: Settings) -> list[Path]:
    """The shipped examples (unless turned off), then the user's folders (or, when none is
    set, the data folder's `segments/` where the workspace saves, once it exists)."""
    examples = [segments.EXAMPLES_DIR] if settings.segments.include_examples else []
    saved = [] if settings.segments.definition_dirs else [settings.paths.segments]
    return [*examples, *settings.segments.definition_dirs, *(p for p in saved if p.is_dir())]


def save_folder(settings: Settings) -> Path:
    """Where the workspace saves a definition: the last user folder, else `data/segments/`."""
    return (settings.segments.definition_dirs or [settings.paths.segments])[-1]


def definitions(settings: Settings) -> list[segments.SegmentDefinition]:
    """Every segment definition the settings point at (`segments.DefinitionError` lists the
    problems)."""
    return segments.load_definitions(folders=definition_folders(settings))


def run(settings: Settings, *, progress: Progress = silent) -> SegmentsOutcome:
    """Evaluate every segment and record who entered and who left (one refresh); checks
    every definition against the warehouse first (`segments.DefinitionError`, LookupError)."""
    found = definitions(settings)
    done = 0

    def on_segment(_: object) -> None:
        nonlocal done
        done += 1
        progress("segments", done=done, total=len(found))

    progress("segments", done=0, total=len(found))
    with warehouse.connect(settings.paths.warehouse) as con:
        runs = segments.refresh_segments(
            con, definitions=found, as_of=settings.segments.as_of, on_segment=on_segment
        )
    return SegmentsOutcome(runs)


def validate(settings: Settings) -> list[segments.SegmentDefinition]:
    """Check every definition against the warehouse's fields without evaluating anything."""
    found = definitions(settings)
    with warehouse.connect(settings.paths.warehouse, read_only=True) as con:
        segments.check_definitions(con, definitions=found, as_of=settings.segments.as_of)
    return found


def history(settings: Settings, *, segment: str | None = None) -> pd.DataFrame:
    """Every refresh of every segment (or of one) with its size and who entered and left."""
    with warehouse.connect(settings.paths.warehouse) as con:
        return segments.runs(con, segment=segment)


@dataclass(frozen=True)
class Changes:
    """Who entered and who left a segment at its latest refresh (customer ids)."""

    entered: list[str]
    exited: list[str]


def changes(settings: Settings, *, segment: str) -> Changes:
    """Who entered and left `segment` at its latest refresh (LookupError if never refreshed)."""
    with warehouse.connect(settings.paths.warehouse) as con:
        frame = segments.runs(con, segment=segment)
        if frame.empty:
            raise LookupError(f"segment {segment!r} has never been refreshed")
        since = frame["evaluated_at"].iloc[-2] if len(frame) > 1 else None
        diff = segments.changes_between(
            con, segment=segment, since=since, until=frame["evaluated_at"].iloc[-1]
        )
    ids = {
        c: diff.loc[diff["change"] == c, "customer_id"].astype(str).tolist()
        for c in ("entered", "exited")
    }
    return Changes(ids["entered"], ids["exited"])
