"""Writing the universe: one file per source in its connector's format, and the truth.

Sources are DuckDB relations named after the source (with a `person_id`
column that never reaches the source file). Events become Segment-shaped JSONL,
orders Parquet, everything else CSV. Each file is written under a temporary
name and renamed, so a reader never sees half a file. The truth maps every
record to its person and lists each person's hidden parameters.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.sources import SOURCES

__all__ = ["FORMATS", "source_file", "write_sources", "write_truth"]

FORMATS = {
    "crm_contacts": "csv",
    "accounts": "csv",
    "events": "jsonl",
    "orders": "parquet",
    "email_events": "csv",
    "support_tickets": "csv",
}
_COPY_OPTIONS = {
    "csv": "FORMAT CSV, HEADER",
    "jsonl": "FORMAT JSON",
    "parquet": "FORMAT PARQUET, COMPRESSION ZSTD",
}
EVENT_KEY = "messageId"


def source_file(directory: Path, source: str) -> Path:
    """Where a source's file lives: `<directory>/<source>.<format>`."""
    return directory / f"{source}.{FORMATS[source]}"


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path, options: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    con.execute(f"COPY ({query}) TO '{partial}' ({options})")
    partial.replace(path)


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """The declared columns in declared order; those the generated relation lacks are null
    (the generated shop keeps no customer id of its own on orders: accounts and phones)."""
    if source == "events":
        return "* EXCLUDE (person_id)"
    present = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
    return ", ".join(
        f'"{c.name}"' if c.name in present else f'NULL::{c.type} AS "{c.name}"'
        for c in SOURCES[source].columns
    )


def write_sources(con: duckdb.DuckDBPyConnection, *, directory: Path) -> dict[str, int]:
    """Write every source relation to its file; returns rows written per source."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = {}
    for source, fmt in FORMATS.items():
        _copy(
            con,
            f"SELECT {_columns(con, source)} FROM {source}",
            source_file(directory, source),
            _COPY_OPTIONS[fmt],
        )
        rows[source] = con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0]
    return rows


def write_truth(con: duckdb.DuckDBPyConnection, *, people: pa.Table, directory: Path) -> None:
    """`record_truth.parquet` (source, record_key, person_id) and `people.parquet`."""
    directory.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [("source", pa.string()), ("record_key", pa.string()), ("person_id", pa.string())]
    )
    path = directory / "record_truth.parquet"
    partial = path.with_name(f".{path.name}.partial")
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for source in FORMATS:
            key = EVENT_KEY if source == "events" else SOURCES[source].key
            query = f"SELECT '{source}' AS source, \"{key}\" AS record_key, person_id FROM {source}"
            for batch in con.sql(query).to_arrow_reader(batch_size=1_000_000):
                writer.write_batch(batch.cast(schema))
    partial.replace(path)
    pq.write_table(people, directory / "people.parquet", compression="zstd")
