"""Loading files and row batches into the raw tables, idempotently, with a load log.

Each load is one transaction: stage the input, route its rows (`warehouse.validation`),
write one `load_log` row. A file whose content (sha256) was already loaded for the same
source is skipped; a row whose key is already in the table counts as a duplicate. So a
re-run, or a re-run after a crash mid-load, never duplicates anything.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.database import first_row, literal, quote
from warehouse.schemas import Source
from warehouse.segment import text_value
from warehouse.sources import SOURCES
from warehouse.staging import Staged, check_mapping, clear, file_format, stage_file, stage_rows
from warehouse.suppression import suppression_of
from warehouse.tables import LOAD_LOG
from warehouse.validation import route

__all__ = [
    "LoadReport",
    "append_rows",
    "load_directory",
    "load_file",
    "source_files",
    "source_of",
]


@dataclass(frozen=True)
class LoadReport:
    """What one load did. `rows_read == rows_loaded + rows_duplicate + rows_quarantined +
    rows_suppressed`."""

    source: str
    file: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    rows_suppressed: int = 0  # naming a forgotten person (`warehouse.suppression`): dropped
    seconds: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)
    skipped: bool = False  # the same file was loaded before: nothing was read

    @property
    def all_quarantined(self) -> bool:
        """Rows were read and every one of them went to quarantine."""
        return self.rows_read > 0 and self.rows_quarantined == self.rows_read

    def explain(self) -> str:
        """What the source expects, for a load whose every row was quarantined."""
        schema = SOURCES[self.source]
        example = next(c.name for c in schema.columns if c.required and c.name != schema.key)
        ignored = f"; the file's other columns: {', '.join(self.ignored_columns)}" * bool(
            self.ignored_columns
        )
        return (
            f"{Path(self.file).name}: all {self.rows_read:,} rows were quarantined (reasons "
            f"in the quarantine table). {schema.name} expects {schema.expected()}{ignored}. "
            f"Name your columns with --map, e.g. --map {example}=YOUR_COLUMN"
        )


def _schema(source: str, *, where: str) -> Source:
    if source not in SOURCES:
        raise ValueError(f"{where}: unknown source {source!r}; known sources: {', '.join(SOURCES)}")
    return SOURCES[source]


def source_of(path: Path) -> str:
    """The source a file belongs to: its name up to the first dot (`events.jsonl.gz`)."""
    source = path.name.split(".", 1)[0]
    _schema(source, where=str(path))
    return source


def source_files(directory: Path, *, source: str | None = None) -> list[Path]:
    """The files of `directory` (not hidden), sorted, checked to be loadable.

    Each must have a known format and, unless they are all of `source`, be named after a
    known source; the error names the first file that is not.
    """
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory}: not a directory")
    if source is not None:
        _schema(source, where=str(directory))
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in files:
        file_format(path)
        if source is None:
            source_of(path)
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _load(
    con: duckdb.DuckDBPyConnection,
    *,
    schema: Source,
    stage: Callable[[], Staged],
    lineage: tuple[str, str],
    sha256: str | None,
) -> LoadReport:
    """Stage, route and log one input in one transaction."""
    started = time.perf_counter()
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    staged = stage()  # temp tables, outside the transaction: rowids count from 0
    staged, suppressed = _drop_suppressed(con, staged)
    con.begin()
    try:
        counts = route(con, staged=staged, schema=schema, lineage=lineage, loaded_at=loaded_at)
        seconds = time.perf_counter() - started
        con.execute(
            f"INSERT INTO {LOAD_LOG} (load_id, source, file, file_sha256, rows_read, rows_loaded,"
            " rows_duplicate, rows_quarantined, ignored_columns, seconds, loaded_at,"
            " rows_suppressed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                str(uuid.uuid4()),
                schema.name,
                lineage[1],
                sha256,
                counts.read + suppressed,
                counts.loaded,
                counts.duplicate,
                counts.quarantined,
                staged.ignored,
                seconds,
                loaded_at,
                suppressed,
            ],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.execute(f"DROP VIEW IF EXISTS {_KEPT}")
        clear(con)
    return LoadReport(
        source=schema.name,
        file=lineage[1],
        rows_read=counts.read + suppressed,
        rows_loaded=counts.loaded,
        rows_duplicate=counts.duplicate,
        rows_quarantined=counts.quarantined,
        rows_suppressed=suppressed,
        seconds=seconds,
        ignored_columns=staged.ignored,
    )


_KEPT = "_stage_unsuppressed"


def _drop_suppressed(con: duckdb.DuckDBPyConnection, staged: Staged) -> tuple[Staged, int]:
    """`staged` without the rows naming a suppressed identifier, and how many those were."""
    suppression = suppression_of(con)
    if suppression is None or not suppression.hashes:
        return staged, 0
    declared = "to_json({" + ", ".join(f"{literal(c)}: {quote(c)}" for c in staged.columns) + "})"
    rows = con.execute(f"SELECT _row_number, {declared} FROM {staged.relation}").fetchall()
    dropped = [n for n, text in rows if suppression.names_anyone_json(text)]
    if not dropped:
        return staged, 0
    con.register("_suppressed_arrow", pa.table({"_row_number": pa.array(dropped, pa.int64())}))
    con.execute("CREATE OR REPLACE TEMP TABLE _suppressed_rows AS FROM _suppressed_arrow")
    con.unregister("_suppressed_arrow")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {_KEPT} AS SELECT * FROM {staged.relation} "
        "WHERE _row_number NOT IN (SELECT _row_number FROM _suppressed_rows)"
    )
    return replace(staged, relation=_KEPT), len(dropped)


def load_file(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
) -> LoadReport:
    """Load one CSV, Parquet or JSONL file into its source's raw table.

    `source` defaults to the file's name up to its first dot. `mapping` names the file's
    column for a declared one (`{"customer_id": "CustomerID", "ordered_at": "InvoiceDate"}`).
    A file with the same content already loaded for this source is skipped
    (`LoadReport.skipped`), unless that load quarantined every row (a retry, say with a
    mapping, reads it again).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    file_format(path)
    source = source or source_of(path)
    schema = _schema(source, where=str(path))
    check_mapping(mapping or {}, schema)
    file = str(path.resolve())
    sha256 = _sha256(path)
    seen = first_row(
        con,
        f"SELECT 1 FROM {LOAD_LOG} WHERE source = ? AND file_sha256 = ? "
        f"AND (rows_read = 0 OR rows_quarantined < rows_read) LIMIT 1",
        [source, sha256],
    )
    if seen:
        return LoadReport(source=source, file=file, skipped=True)
    return _load(
        con,
        schema=schema,
        stage=lambda: stage_file(con, path=path, schema=schema, mapping=mapping),
        lineage=(source, file),
        sha256=sha256,
    )


def load_directory(con: duckdb.DuckDBPyConnection, *, directory: Path) -> list[LoadReport]:
    """Load every file of `directory` (see `source_files`), in name order."""
    return [load_file(con, path=path) for path in source_files(directory)]


def _as_table(rows: pa.Table | Iterable[dict[str, Any]]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    rows = list(rows)
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = {name: [text_value(row.get(name)) for row in rows] for name in names}
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def append_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str,
    rows: pa.Table | Iterable[dict[str, Any]],
    origin: str,
    sender: str | None = None,
) -> LoadReport:
    """Load a batch of rows (column name -> value) into `source`'s raw table.

    Same validation, key dedup and quarantine as files. `origin` (e.g. `collector`) is
    recorded as the file; `sender` (e.g. the collector's write-key source `web`) is recorded
    in `_source`, defaulting to `source`. Values of dict rows may be text or any JSON value.
    """
    schema = _schema(source, where=origin)
    table = _as_table(rows)
    return _load(
        con,
        schema=schema,
        stage=lambda: stage_rows(con, rows=table, schema=schema),
        lineage=(sender or source, origin),
        sha256=None,
    )
