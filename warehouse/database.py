"""The DuckDB warehouse file: opening it and creating the raw, quarantine and load-log tables.

`connect` is the one way into the warehouse. It creates the parent folder and every table
the loaders write (idempotently; each raw table with an index on its key), pins the session
time zone to UTC (timestamps are stored as naive UTC), waits briefly while another process
holds the file (DuckDB allows one writing process; the collector's loader takes it for a
moment at a time) and keeps DuckDB's own progress bar quiet (progress belongs to the CLI).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from warehouse.schemas import LINEAGE_COLUMNS, Column
from warehouse.sources import SOURCES
from warehouse.tables import LOAD_LOG, QUARANTINE

__all__ = [
    "LOOKUP_KEYS",
    "connect",
    "first_row",
    "index_lookups",
    "literal",
    "quote",
    "transaction",
]

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


LOOKUP_KEYS = 2048
"""Up to this many keys (DuckDB's `index_scan_max_count`), `index_lookups` reaches an
indexed column by index lookups."""


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


def connect(
    path: Path, *, read_only: bool = False, wait_seconds: float = 30.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at `path`, creating the folder and every loader table if needed.

    While another process holds the file, retry for up to `wait_seconds`, then raise
    DuckDB's lock error (`duckdb.IOException`)."""
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no warehouse at {path}: run `cip load` first")
        con = _open(path, read_only=True, wait_seconds=wait_seconds)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open(path, read_only=False, wait_seconds=wait_seconds)
        for schema in SOURCES.values():
            con.execute(_create_table(schema.table, schema.columns + LINEAGE_COLUMNS))
            for column in schema.columns:  # columns declared since the table was made
                con.execute(
                    f"ALTER TABLE {quote(schema.table)} ADD COLUMN IF NOT EXISTS "
                    f"{quote(column.name)} {column.type}"
                )
            con.execute(  # a batch's keys are looked up, not scanned for (`index_lookups`)
                f"CREATE INDEX IF NOT EXISTS {quote(schema.table + '_key')} "
                f"ON {quote(schema.table)} ({quote(schema.key)})"
            )
        con.execute(_create_table(QUARANTINE, _QUARANTINE_COLUMNS))
        con.execute(_create_table(LOAD_LOG, _LOAD_LOG_COLUMNS))
        con.execute(
            f"ALTER TABLE {LOAD_LOG} ADD COLUMN IF NOT EXISTS rows_suppressed BIGINT DEFAULT 0"
        )
    con.execute("SET TimeZone = 'UTC'")
    with contextlib.suppress(duckdb.InvalidInputException):
        # Inside Jupyter DuckDB refuses the setting unless ipywidgets is installed.
        con.execute("SET enable_progress_bar = false")
    return con


def _open(path: Path, *, read_only: bool, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Connect, waiting while another process holds the file's lock, or while a connection
    of this process in the other mode (read-only against read-write) is being closed."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            busy = "lock" in str(error).lower() or "different configuration" in str(error)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing: a crash inside leaves the tables as they were."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def index_lookups(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within, a join whose other side has at most `LOOKUP_KEYS` keys reaches an indexed
    column (a raw table's key) by index lookups rather than by reading the whole column:
    DuckDB hands the keys to the scan as a list (50 at most by default) and answers the
    list from the index. Only around such joins: elsewhere the list is checked against
    every row a scan reads. The scan must have no other filter (a semi- or inner join in a
    statement of its own); an anti-join (`NOT EXISTS`) reads the whole column regardless."""
    con.execute(f"SET dynamic_or_filter_threshold = {LOOKUP_KEYS}")
    try:
        yield
    finally:
        # A failed statement's transaction refuses the reset; the next exit resets it.
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("RESET dynamic_or_filter_threshold")
