"""Set-based validation of a staging relation, and routing its rows to table or quarantine.

One SQL pass casts every declared column with TRY_CAST and writes down, per row, every
reason it breaks the schema: a parse error from the reader, a missing required field, or
a value that is not of the declared type (naming the column and the value); a second
marks good rows whose key an earlier good row of the same input already has. Rejected
rows go to `quarantine` with their original content; good rows whose key is already in
the table are duplicates and are not inserted again; the rest are inserted with their
lineage. Timestamps with a UTC offset are converted to
UTC; timestamps without one are taken as UTC; text timestamps are read the way the
column is written (`warehouse.timestamps`). A value under its column's minimum (a
negative amount) is quarantined. An input without the key column gets keys derived from
the row (`Source.key_from`); one without any customer column
(`Source.customer_columns`) is quarantined whole, saying what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from warehouse.database import first_row, index_lookups, literal, quote
from warehouse.schemas import LINEAGE_COLUMNS, Column, Source
from warehouse.staging import Staged
from warehouse.tables import QUARANTINE
from warehouse.timestamps import ISO, choose_reading, read_as

__all__ = ["Counts", "route"]

_CHECKED = "cip_checked"
_PRESENT = "cip_present"  # the keys of good checked rows that the table already holds
_SHOWN_CHARS = 80  # a quarantine reason quotes at most this much of a bad value


@dataclass(frozen=True)
class Counts:
    """What happened to the staged rows; `read == loaded + duplicate + quarantined`."""

    read: int
    loaded: int
    duplicate: int
    quarantined: int


def _value(column: Column, staged_type: str | None) -> str:
    """The staged value of `column`: NULL when the input lacks it or it is empty text."""
    if staged_type is None:
        return "NULL"
    name = quote(column.name)
    return f"NULLIF({name}, '')" if staged_type == "VARCHAR" else name


def _cast(column: Column, value: str, reading: str = ISO) -> str:
    if column.type == "TIMESTAMP":
        return read_as(reading, value if reading == ISO else f"CAST({value} AS VARCHAR)")
    return f"TRY_CAST({value} AS {column.type})"


def _reason(column: Column, given: str, *, required: bool) -> str:
    """Why the cast value of `column` (from the input value `given`) breaks the schema."""
    cast, label = quote(column.name), literal(column.name)
    missing = f"'missing required field ' || {label}" if required else "NULL"
    text = f"CAST({given} AS VARCHAR)"  # blank text counts as missing, not as a bad value
    shown = f"'''' || left({text}, {_SHOWN_CHARS}) || ''''"
    bad = f"'column ' || {label} || ': ' || {shown} || ' is not a valid {column.type}'"
    low = ""
    if column.minimum is not None:
        low = (
            f"WHEN {cast} < {column.minimum} THEN 'column ' || {label} || ': ' || {shown} "
            f"|| ' is below the minimum {column.minimum:g}' "
        )
    return (
        f"CASE WHEN {cast} IS NULL THEN "
        f"CASE WHEN {given} IS NULL OR trim({text}) = '' THEN {missing} ELSE {bad} END "
        f"{low}END"
    )


def _readings(con: duckdb.DuckDBPyConnection, staged: Staged, schema: Source) -> dict[str, str]:
    """How each text timestamp column of the input is written (`warehouse.timestamps`)."""
    return {
        c.name: choose_reading(
            con, relation=staged.relation, value=f"NULLIF(trim({quote(c.name)}), '')"
        )
        for c in schema.columns
        if c.type == "TIMESTAMP" and staged.columns.get(c.name) == "VARCHAR"
    }


def _derived_key(schema: Source) -> str:
    """A key from the row's own values: a hash of `key_from` and the occurrence number of
    identical rows, so that a re-loaded or overlapping export duplicates nothing."""
    parts = [f"coalesce(CAST({quote(c)} AS VARCHAR), '')" for c in schema.key_from]
    values = f"concat_ws('|', {', '.join(parts)})"
    return (
        f"left(md5({values}), 20) || '-' || "
        f"row_number() OVER (PARTITION BY {values} ORDER BY _row_number)"
    )


def _check(con: duckdb.DuckDBPyConnection, *, staged: Staged, schema: Source) -> None:
    """Materialize the checked rows: row number, cast columns, `_reason` (NULL if good).

    The reason lists every broken column; a good row whose key an earlier good row of the
    same input already has is a duplicate within the input.
    """
    given = {c.name: f"_given_{i}" for i, c in enumerate(schema.columns)}
    inputs = ", ".join(
        f"{_value(c, staged.columns.get(c.name))} AS {given[c.name]}" for c in schema.columns
    )
    readings = _readings(con, staged, schema)
    casts = ", ".join(
        f"{_cast(c, given[c.name], readings.get(c.name, ISO))} AS {quote(c.name)}"
        for c in schema.columns
    )
    derive = bool(schema.key_from) and schema.key not in staged.columns
    reasons = [
        _reason(c, given[c.name], required=c.required and not (derive and c.name == schema.key))
        for c in schema.columns
    ]
    if schema.customer_columns and not set(schema.customer_columns) & set(staged.columns):
        reasons.insert(0, literal(f"no customer column: expected {schema.expected()}"))
    columns = ", ".join(
        f"{_derived_key(schema)} AS {quote(c.name)}"
        if derive and c.name == schema.key
        else quote(c.name)
        for c in schema.columns
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_CHECKED} AS "
        f"SELECT _row_number, {columns}, "
        f"  coalesce(_error, NULLIF(concat_ws('; ', {', '.join(reasons)}), '')) AS _reason FROM ("
        f"    SELECT *, {casts} FROM (SELECT _row_number, _error, {inputs} FROM {staged.relation}))"
    )
    key = quote(schema.key)
    con.execute(
        f"UPDATE {_CHECKED} c SET _reason = 'duplicate key ' || {literal(schema.key)} || ' ' "
        f"  || c.{key} || ' (first at row ' || d.first || ')' "
        f"FROM (SELECT {key}, min(_row_number) AS first FROM {_CHECKED} WHERE _reason IS NULL "
        f"  GROUP BY {key} HAVING count(*) > 1) d "
        f"WHERE c.{key} = d.{key} AND c._reason IS NULL AND c._row_number > d.first"
    )


def route(
    con: duckdb.DuckDBPyConnection,
    *,
    staged: Staged,
    schema: Source,
    lineage: tuple[str, str],
    loaded_at: datetime,
) -> Counts:
    """Check `staged`, quarantine bad rows, insert new good rows into the schema's table.

    `lineage` is (`_source`, `_file`) for the inserted rows; quarantine rows name the
    schema's source and the same file. Runs inside the caller's transaction.
    """
    _check(con, staged=staged, schema=schema)
    source, file = lineage
    read, quarantined = first_row(con, f"SELECT count(*), count(_reason) FROM {_CHECKED}")
    if quarantined:
        rejected = f"SELECT _row_number, _reason FROM {_CHECKED} WHERE _reason IS NOT NULL"
        originals = (
            f"SELECT _row_number, {staged.row_json} AS _row FROM {staged.relation} "
            f"WHERE _row_number IN (SELECT _row_number FROM ({rejected}))"
        )
        con.execute(
            f"INSERT INTO {QUARANTINE} SELECT ?, ?, _row_number, _row, _reason, ? "
            f"FROM ({rejected}) JOIN ({originals}) USING (_row_number) ORDER BY _row_number",
            [schema.name, file, loaded_at],
        )
    columns = ", ".join(quote(c.name) for c in schema.columns + LINEAGE_COLUMNS)
    key, table = quote(schema.key), quote(schema.table)
    # The keys already there are looked up first, in a statement of their own (index
    # lookups on the raw table's key for a small input); an anti-join against the table,
    # or this one inlined into the insert, reads every key of the table.
    with index_lookups(con):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_PRESENT} AS SELECT {key} FROM {table} "
            f"WHERE {key} IN (SELECT {key} FROM {_CHECKED} WHERE _reason IS NULL)"
        )
    (loaded,) = first_row(
        con,
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {', '.join(quote(c.name) for c in schema.columns)}, ?, ?, _row_number, ? "
        f"FROM {_CHECKED} c WHERE _reason IS NULL AND NOT EXISTS "
        f"(SELECT 1 FROM {_PRESENT} p WHERE p.{key} = c.{key})",
        [source, file, loaded_at],
    )
    con.execute(f"DROP TABLE {_CHECKED}; DROP TABLE {_PRESENT}")
    return Counts(read, loaded, read - quarantined - loaded, quarantined)
