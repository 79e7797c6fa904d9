"""The DuckDB warehouse file: opening it and creating the raw, quarantine and load-log tables.

`connect` is the one way into the warehouse. It creates the parent folder and every table
the loaders write (idempotently), pins the session time zone to UTC (timestamps are stored
as naive UTC) and keeps DuckDB's own progress bar quiet (progress belongs to the CLI).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import duckdb

from warehouse.schemas import LINEAGE_COLUMNS, SOURCES, Column

__all__ = ["LOAD_LOG_TABLE", "QUARANTINE_TABLE", "connect", "first_row", "literal", "quote"]

QUARANTINE_TABLE = "quarantine"
LOAD_LOG_TABLE = "load_log"

_QUARANTINE_COLUMNS = (
    Column("source", "VARCHAR", True),
    Column("file", "VARCHAR", True),
    Column("row_number", "BIGINT", True),
    Column("row", "JSON", True),
    Column("reason", "VARCHAR", True),
    Column("quarantined_at", "TIMESTAMP", True),
)

_LOAD_LOG_COLUMNS = (
    Column("load_id", "VARCHAR", True),
    Column("source", "VARCHAR", True),
    Column("file", "VARCHAR", True),
    Column("file_sha256", "VARCHAR"),
    Column("rows_read", "BIGINT", True),
    Column("rows_loaded", "BIGINT", True),
    Column("rows_duplicate", "BIGINT", True),
    Column("rows_quarantined", "BIGINT", True),
    Column("ignored_columns", "VARCHAR[]", True),
    Column("seconds", "DOUBLE", True),
    Column("loaded_at", "TIMESTAMP", True),
)


def quote(identifier: str) -> str:
    """A DuckDB identifier in double quotes (column names such as `type` are keywords)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def first_row(
    con: duckdb.DuckDBPyConnection, sql: str, parameters: list[object] | None = None
) -> tuple | None:
    """The first row of a query (or None), reading the result to the end as DuckDB asks."""
    rows = con.execute(sql, parameters or []).fetchall()
    return rows[0] if rows else None


def _create_table(name: str, columns: tuple[Column, ...]) -> str:
    body = ", ".join(
        f"{quote(c.name)} {c.type}{' NOT NULL' if c.required else ''}" for c in columns
    )
    return f"CREATE TABLE IF NOT EXISTS {quote(name)} ({body})"


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at `path`, creating the folder and every loader table if needed."""
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no warehouse at {path}: run `cip load` first")
        con = duckdb.connect(str(path), read_only=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        for schema in SOURCES.values():
            con.execute(_create_table(schema.table, schema.columns + LINEAGE_COLUMNS))
        con.execute(_create_table(QUARANTINE_TABLE, _QUARANTINE_COLUMNS))
        con.execute(_create_table(LOAD_LOG_TABLE, _LOAD_LOG_COLUMNS))
    con.execute("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.InvalidInputException):
        # Inside Jupyter DuckDB refuses the setting unless ipywidgets is installed.
        con.execute("SET enable_progress_bar = false")
    return con
