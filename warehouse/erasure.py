"""Erasing people from the warehouse file, and compacting it so the bytes are gone.

`erase_people` deletes, in one transaction, every row about the people of an `Erasure`:
raw rows by their source key, and any raw row naming one of their identifiers (an
unresolved record, a later load); quarantined rows naming them; and every row of every
other table keyed by one of their customer ids (`customer_id`, `other_customer_id`) or
record ids (`unique_id`, `unique_id_l`, `unique_id_r`: `source|key`, as resolution's
tables hold them). `compact` then copies the database into a fresh file and swaps it in:
DuckDB keeps deleted rows' bytes in its blocks until then.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.database import literal, quote
from warehouse.sources import SOURCES
from warehouse.suppression import canonical, identifiers_in
from warehouse.tables import QUARANTINE

__all__ = ["Erasure", "canonical_pairs", "compact", "erase_people"]

_CUSTOMER_COLUMNS = ("customer_id", "other_customer_id")
_RECORD_COLUMNS = ("unique_id", "unique_id_l", "unique_id_r")
_CANONICAL_SQL = {
    "email": "lower(trim({}))",
    "phone": r"right(regexp_replace({}, '\D', '', 'g'), 10)",
    "user_id": "trim({})",
}


@dataclass(frozen=True)
class Erasure:
    """Who to erase: customer ids, raw records (source, key) and canonical identifiers
    (kind, value, as `warehouse.suppression.canonical` gives them)."""

    customer_ids: frozenset[str] = frozenset()
    records: frozenset[tuple[str, str]] = frozenset()
    identifiers: frozenset[tuple[str, str]] = frozenset()

    def names(self, document: object) -> bool:
        """Whether a JSON-like document names one of the identifiers."""
        return any(pair in self.identifiers for pair in identifiers_in(document))


def _register(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, Iterable]) -> None:
    table = pa.table({k: pa.array(list(v), pa.string()) for k, v in columns.items()})
    con.register(name, table)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return {name for (name,) in rows}


def _base_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
    ).fetchall()
    return {name for (name,) in rows}


def erase_people(con: duckdb.DuckDBPyConnection, *, erasure: Erasure) -> dict[str, int]:
    """Delete every row about the people of `erasure`; returns rows deleted per table."""
    _register(con, "_erase_customers", {"customer_id": erasure.customer_ids})
    _register(
        con,
        "_erase_records",
        {
            "source": (s for s, _ in sorted(erasure.records)),
            "record_key": (k for _, k in sorted(erasure.records)),
        },
    )
    _register(
        con,
        "_erase_identifiers",
        {
            "kind": (k for k, _ in sorted(erasure.identifiers)),
            "value": (v for _, v in sorted(erasure.identifiers)),
        },
    )
    deleted: dict[str, int] = {}
    present = _base_tables(con)
    con.begin()
    try:
        for source in SOURCES.values():
            if source.table in present:
                deleted[source.table] = _erase_raw(con, source.name)
        if QUARANTINE in present:
            deleted[QUARANTINE] = _erase_quarantined(con, erasure)
        raw = {s.table for s in SOURCES.values()} | {QUARANTINE}
        for table in sorted(present - raw):
            columns = _columns(con, table)
            where = [
                f"{quote(c)} IN (SELECT customer_id FROM _erase_customers)"
                for c in _CUSTOMER_COLUMNS
                if c in columns
            ] + [
                f"{quote(c)} IN (SELECT source || '|' || record_key FROM _erase_records)"
                for c in _RECORD_COLUMNS
                if c in columns
            ]
            if where:
                (n,) = con.execute(
                    f"DELETE FROM {quote(table)} WHERE {' OR '.join(where)}"
                ).fetchone()
                deleted[table] = n
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        for name in ("_erase_customers", "_erase_records", "_erase_identifiers"):
            con.unregister(name)
    return {table: n for table, n in deleted.items() if n}


def _erase_raw(con: duckdb.DuckDBPyConnection, source_name: str) -> int:
    source = SOURCES[source_name]
    named = [
        f"{_CANONICAL_SQL[kind].format(f'CAST(({source.records[kind]}) AS VARCHAR)')} IN "
        f"(SELECT value FROM _erase_identifiers WHERE kind = '{kind}')"
        for kind in _CANONICAL_SQL
        if kind in source.records
    ]
    by_key = (
        f"CAST({quote(source.key)} AS VARCHAR) IN "
        f"(SELECT record_key FROM _erase_records WHERE source = '{source.name}')"
    )
    (n,) = con.execute(
        f"DELETE FROM {quote(source.table)} WHERE {' OR '.join([by_key, *named])}"
    ).fetchone()
    return n


def _erase_quarantined(con: duckdb.DuckDBPyConnection, erasure: Erasure) -> int:
    rows = con.execute(f"SELECT rowid, CAST(row AS VARCHAR) FROM {QUARANTINE}").fetchall()
    doomed = []
    for rowid, text in rows:
        try:
            document = json.loads(text) if text else None
        except ValueError:
            document = text
        if erasure.names(document) or _mentions_key(document, erasure):
            doomed.append(rowid)
    if doomed:
        con.register("_erase_rowids", pa.table({"id": pa.array(doomed, pa.int64())}))
        con.execute(f"DELETE FROM {QUARANTINE} WHERE rowid IN (SELECT id FROM _erase_rowids)")
        con.unregister("_erase_rowids")
    return len(doomed)


def _mentions_key(document: object, erasure: Erasure) -> bool:
    keys = {key for _, key in erasure.records}
    if isinstance(document, dict):
        return any(isinstance(v, str) and v in keys for v in document.values())
    return False


def compact(path: Path) -> None:
    """Rewrite the database file at `path` into a fresh file holding only live rows, and
    swap it in (no connection to `path` may be open)."""
    fresh = path.with_name(path.name + ".compact")
    fresh.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        _checkpoint(con)
        (name,) = con.execute("SELECT current_database()").fetchone()
        con.execute(f"ATTACH {literal(str(fresh))} AS _fresh")
        con.execute(f"COPY FROM DATABASE {quote(name)} TO _fresh")
        con.execute("DETACH _fresh")
    finally:
        con.close()
    os.replace(fresh, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


def _checkpoint(con: duckdb.DuckDBPyConnection, *, tries: int = 50) -> None:
    """CHECKPOINT, waiting out (0.2 s at a time, 10 s at most) a write transaction that
    another connection of this process is finishing."""
    for attempt in range(tries):
        try:
            con.execute("CHECKPOINT")
            return
        except duckdb.TransactionException:
            if attempt == tries - 1:
                raise
            time.sleep(0.2)


def canonical_pairs(pairs: Iterable[tuple[str, object]]) -> frozenset[tuple[str, str]]:
    """(kind, canonical value) of (kind, raw value) pairs, leaving out what is no identifier."""
    return frozenset((k, c) for k, v in pairs if (c := canonical(k, v)))
