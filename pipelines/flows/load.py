"""The load flow: source files (CSV, Parquet, JSONL) into the warehouse's raw tables, and
with `engine: spark` into the lake's copy of them (`warehouse.lake`), caught up after the
warehouse accepted the rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import warehouse
from pipelines.config import Settings
from pipelines.engines import raw_lake
from pipelines.flows.progress import Progress, silent
from warehouse.lake import LakeSync, sync

__all__ = ["LoadOutcome", "run", "source_files"]


@dataclass(frozen=True)
class LoadOutcome:
    """One report per file loaded (or skipped as already loaded), in order; what the
    lake's copy took (`engine: spark`)."""

    warehouse: Path
    reports: list[warehouse.LoadReport]
    lake: LakeSync | None = None

    @property
    def totals(self) -> dict[str, int]:
        reports = self.reports
        return {
            "files loaded": sum(not r.skipped for r in reports),
            "files already loaded": sum(r.skipped for r in reports),
            "rows read": sum(r.rows_read for r in reports),
            "rows loaded": sum(r.rows_loaded for r in reports),
            "rows duplicate": sum(r.rows_duplicate for r in reports),
            "rows quarantined": sum(r.rows_quarantined for r in reports),
        }

    @property
    def rejected(self) -> list[warehouse.LoadReport]:
        """Files whose every row was quarantined (their columns were not understood)."""
        return [r for r in self.reports if r.all_quarantined]

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = dict(self.totals)
        if self.lake is not None:
            figures["lake partitions written"] = sum(self.lake.written.values())
            figures["lake rows"] = sum(self.lake.rows.values())
        return figures


def source_files(path: Path, *, source: str | None = None) -> list[Path]:
    """The files `path` names (a file, or a folder of files named after their source),
    checked to be loadable before anything is loaded."""
    if path.is_dir():
        files = warehouse.source_files(path, source=source)
        if not files:
            raise FileNotFoundError(f"{path}: no source files to load (run `cip generate`?)")
        return files
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if source is None:
        warehouse.source_of(path)  # fail before loading anything
    return [path]


def run(
    settings: Settings,
    *,
    path: Path | None = None,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
    progress: Progress = silent,
) -> LoadOutcome:
    """Load `path` (default: the data folder's sources/) as `source` (default: each file's
    name says), reading declared columns from the file's columns `mapping` names. With
    `engine: spark` the lake's raw tables are then brought in step (an unwritable lake is
    refused before anything loads)."""
    files = source_files(path or settings.paths.sources, source=source)
    lake = raw_lake(settings)
    reports, synced = [], None
    con = warehouse.connect(settings.paths.warehouse)
    try:
        for done, file in enumerate(files):
            progress(f"loading {file.name}", done=done, total=len(files))
            reports.append(warehouse.load_file(con, path=file, source=source, mapping=mapping))
        if lake is not None:
            progress("copying the raw tables to the lake", done=len(files), total=len(files))
            synced = sync(con, lake=lake)
        progress("loaded", done=len(files), total=len(files))
    finally:
        con.close()
    return LoadOutcome(settings.paths.warehouse, reports, synced)
