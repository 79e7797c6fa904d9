"""The raw tables' copy in the lake, that Spark reads: kept in step with the warehouse.

With `engine: spark` every raw table is also a Parquet table at `<lake>/raw/<table>/`,
partitioned by the day and origin of loading (`load=<YYYY-MM-DD>_<hash of _file>`): a
loaded file adds a partition, the collector's batches of a day share one, and nothing
else is rewritten. The DuckDB warehouse stays the record (checks, quarantine, lineage,
erasure); `sync` makes the lake say what it says, and may run at any time:

- the warehouse's partitions are fingerprinted (rows, the xor of their lineage's hashes,
  the table's columns); a partition the manifest (`_manifest.json`) lists with the same
  fingerprint is left alone, any other is written again, and a partition the warehouse
  no longer has (a forgotten person's last rows, say) is deleted;
- a partition is written into a hidden staging folder, then renamed in place of the old
  one: a reader sees the old rows or the new, never both. The manifest drops the
  partitions about to change before they are written and lists them once they are, so a
  crash at any point leaves nothing the next `sync` would not write again, and hidden
  leftovers (staging, replaced partitions) are deleted by it. (A DuckDB upgrade that
  changes `hash` makes every partition look changed: one full copy, then quiet again.)

So a re-run never duplicates rows in the lake, and rows the lake missed (a crash after the
warehouse's commit, the collector's and `cip stream`'s rows) or must lose (`cip forget`)
are caught up by the next `sync`. One `sync` at a time per lake (a lock file).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.database import literal, quote
from warehouse.sources import SOURCES
from warehouse.tables import table_names

__all__ = ["RAW", "LakeSync", "raw_folder", "sync"]

RAW = "raw"
"""The lake's folder of raw tables."""
_MANIFEST = "_manifest.json"
_PARTITION = "load"
_KEY = "strftime(_loaded_at, '%Y-%m-%d') || '_' || left(md5(_file), 12)"
"""A partition's name: the day of loading and a hash of the origin (`_file`)."""


@dataclass
class LakeSync:
    """What one `sync` did, per raw table: partitions written and deleted, rows held."""

    written: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def raw_folder(lake: Path, table: str) -> Path:
    """Where the lake keeps raw table `table` (a folder of `load=...` partitions)."""
    return lake / RAW / table


def sync(con: duckdb.DuckDBPyConnection, *, lake: Path) -> LakeSync:
    """Bring the lake's raw tables (under the folder `lake`) in step with the warehouse."""
    report = LakeSync()
    (lake / RAW).mkdir(parents=True, exist_ok=True)
    present = table_names(con)
    with _locked(lake / RAW / ".lock"):
        for source in SOURCES.values():
            folder = raw_folder(lake, source.table)
            wanted = _fingerprints(con, source.table) if source.table in present else {}
            if not wanted and not folder.exists():
                continue
            written, deleted = _sync_table(con, source.table, folder, wanted)
            report.written[source.table] = written
            report.deleted[source.table] = deleted
            report.rows[source.table] = sum(rows for rows, _ in wanted.values())
    return report


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fingerprints(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, tuple[int, str]]:
    """(rows, fingerprint) of each partition of the warehouse's `table`."""
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    schema = hashlib.sha256(repr(columns).encode()).hexdigest()[:12]
    rows = con.execute(
        f"SELECT {_KEY}, count(*), bit_xor(hash(_file, _loaded_at, _row_number)) "
        f"FROM {quote(table)} GROUP BY 1"
    ).fetchall()
    return {key: (n, f"{n}:{lineage:016x}:{schema}") for key, n, lineage in rows}


def _sync_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    folder: Path,
    wanted: dict[str, tuple[int, str]],
) -> tuple[int, int]:
    """Write the partitions of `table` that changed, delete those that went; returns how
    many of each."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*"):  # a crashed sync's staging or replaced partitions
        _remove(leftover)
    listed = _read_manifest(folder)
    on_disk = {p.name.removeprefix(f"{_PARTITION}=") for p in folder.glob(f"{_PARTITION}=*")}
    changed = sorted(k for k, (_, fp) in wanted.items() if listed.get(k) != fp or k not in on_disk)
    gone = sorted(on_disk - wanted.keys())
    if changed:  # the manifest never lists a partition while it is being written
        _write_manifest(
            folder, {k: fp for k, fp in listed.items() if k in wanted and k not in changed}
        )
        staging = folder / f".staging-{uuid.uuid4().hex}"
        _copy(con, table, changed, staging)
        for key in changed:
            _swap(staging / f"{_PARTITION}={key}", folder / f"{_PARTITION}={key}")
        shutil.rmtree(staging)
    for key in gone:
        _swap(None, folder / f"{_PARTITION}={key}")
    if changed or gone or listed.keys() != wanted.keys():
        _write_manifest(folder, {k: fp for k, (_, fp) in wanted.items()})
    return len(changed), len(gone)


def _copy(con: duckdb.DuckDBPyConnection, table: str, keys: list[str], staging: Path) -> None:
    """The rows of `table`'s partitions `keys`, one folder each under `staging`, in one pass."""
    con.register("_lake_keys", pa.table({"key": pa.array(keys, pa.string())}))
    try:
        con.execute(
            f"COPY (SELECT *, {_KEY} AS {_PARTITION} FROM {quote(table)} "
            f"WHERE {_KEY} IN (SELECT key FROM _lake_keys)) TO {literal(str(staging))} "
            f"(FORMAT parquet, PARTITION_BY ({_PARTITION}), ROW_GROUP_SIZE 262144)"
        )
    finally:
        con.unregister("_lake_keys")


def _swap(new: Path | None, target: Path) -> None:
    """Put the folder `new` (None: nothing) where `target` is, each a rename."""
    old = target.with_name(f".replaced-{uuid.uuid4().hex}")
    if target.exists():
        os.rename(target, old)
    if new is not None:
        os.rename(new, target)
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / _MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text())["partitions"]


def _write_manifest(folder: Path, partitions: dict[str, str]) -> None:
    temporary = folder / f".{_MANIFEST}.{uuid.uuid4().hex}"
    temporary.write_text(json.dumps({"partitions": partitions}, indent=0, sort_keys=True))
    os.replace(temporary, folder / _MANIFEST)
