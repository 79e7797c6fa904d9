"""Reading a source file or a batch of rows into a staging relation, without judging it.

Every reader produces the same shape, a `Staged` relation: `_row_number` (1-based row in
the file), `_error` (why the row could not even be parsed, else NULL) and one column per
declared column the input has, in whatever type the input gave (text for CSV and JSONL,
native types for Parquet). `warehouse.validation` then casts, checks and routes the rows.
Nothing is read row by row in Python: DuckDB scans the files.

Row numbers are exact for Parquet, JSONL (the line number) and row batches; for CSV they
count records after the header, which is the line number minus one unless a quoted value
spans several lines. Lines the CSV parser cannot split (wrong number of fields, invalid
UTF-8) come back from DuckDB's reject tables as rows with an `_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse import segment
from warehouse.database import first_row, literal, quote
from warehouse.schemas import EVENTS, SourceSchema

__all__ = ["FORMATS", "Staged", "clear", "file_format", "stage_file", "stage_rows"]

# File suffix -> format; a compression suffix (.gz, .zst) may follow.
FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
}
_COMPRESSION = (".gz", ".zst")

_RAW = "cip_stage_raw"  # materialized input, when row numbers need it
_STAGE = "cip_stage"  # the staging relation handed to validation
_REJECTS, _REJECT_SCANS = "cip_rejects", "cip_reject_scans"
_ROWS = "cip_rows"  # a registered row batch
# DuckDB may report several errors for one line: one row per rejected line.
_REJECTED_LINES = (
    f"SELECT line, any_value(csv_line) AS csv_line, string_agg(error_message, '; ' "
    f"ORDER BY byte_position) AS errors FROM {_REJECTS} GROUP BY line"
)
_INTERNAL = ("_row_number", "_error", "_line")  # staging's own columns; inputs' are ignored


@dataclass(frozen=True)
class Staged:
    """A staging relation: its name, the declared columns it has, what it ignored."""

    relation: str
    columns: dict[str, str]  # declared column present in the input -> its DuckDB type
    ignored: list[str]  # input columns (or JSON keys) that are not declared
    row_json: str  # SQL expression over the relation: the original row as JSON


def file_format(path: Path) -> str:
    """The format of `path` from its suffixes (`csv`, `parquet` or `json`)."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in _COMPRESSION
    if compressed:
        suffixes.pop()
    found = FORMATS.get(suffixes[-1]) if suffixes else None
    if found is None or (compressed and found == "parquet"):
        known = ", ".join(FORMATS)
        raise ValueError(
            f"{path}: unsupported file type; use one of {known} (text formats may end in "
            f"{' or '.join(_COMPRESSION)})"
        )
    return found


def clear(con: duckdb.DuckDBPyConnection) -> None:
    """Drop whatever the last staging left behind (it can be large)."""
    con.execute(f"DROP VIEW IF EXISTS {_STAGE}")
    con.unregister(_ROWS)
    for name in (_RAW, _REJECTS, _REJECT_SCANS):
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _struct(columns: list[str]) -> str:
    return "to_json({" + ", ".join(f"{literal(c)}: {quote(c)}" for c in columns) + "})"


def _types(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE {relation}").fetchall()}


def _split(schema: SourceSchema, types: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The declared columns among the input's (with their types), and the other ones."""
    declared = {name: types[name] for name in schema.column_names if name in types}
    return declared, [name for name in types if name not in declared]


def _selected(names: list[str]) -> list[str]:
    """The input columns staging carries along: all but those named like its own."""
    return [name for name in names if name not in _INTERNAL]


def _row_numbers(con: duckdb.DuckDBPyConnection, *, header_lines: int) -> str:
    """SQL for the row number of each record of the materialized scan `_RAW`.

    DuckDB keeps insertion order, so `rowid` is the k-th parsed record; every record the
    parser rejected before it (numbered from its line) shifts it by one.
    """
    if not first_row(con, f"SELECT count(*) FROM {_REJECTS}")[0]:
        return "rowid + 1"
    gaps = (
        f"SELECT line - {header_lines} - row_number() OVER (ORDER BY line) AS parsed_before "
        f"FROM ({_REJECTED_LINES})"
    )
    return f"rowid + 1 + (SELECT count(*) FROM ({gaps}) WHERE parsed_before <= {_RAW}.rowid)"


def _csv_options(extra: str) -> str:
    return (
        f"{extra}, store_rejects = true, rejects_table = '{_REJECTS}', "
        f"rejects_scan = '{_REJECT_SCANS}', max_line_size = 64000000"
    )


def _rejects_sql(*, header_lines: int, columns: list[str]) -> str:
    nulls = "".join(f", NULL AS {quote(c)}" for c in columns)
    return (
        f"SELECT line - {header_lines} AS _row_number, "
        f"'cannot parse line ' || line || ': ' || errors AS _error, "
        f"trim(csv_line, E'\\r\\n') AS _line{nulls} FROM ({_REJECTED_LINES})"
    )


def _stage_csv(con: duckdb.DuckDBPyConnection, path: str, schema: SourceSchema) -> Staged:
    options = _csv_options("header = true, all_varchar = true")
    con.execute(f"CREATE TEMP TABLE {_RAW} AS SELECT * FROM read_csv({path}, {options})")
    columns, ignored = _split(schema, _types(con, _RAW))
    all_columns = _selected(list(columns) + ignored)
    picked = "".join(f", {quote(c)}" for c in all_columns)
    con.execute(
        f"CREATE TEMP VIEW {_STAGE} AS "
        f"SELECT {_row_numbers(con, header_lines=1)} AS _row_number, NULL::VARCHAR AS _error, "
        f"NULL AS _line{picked} "
        f"FROM {_RAW} UNION ALL BY NAME {_rejects_sql(header_lines=1, columns=all_columns)}"
    )
    row_json = f"coalesce(to_json(_line), {_struct(all_columns)})"
    return Staged(_STAGE, columns, ignored, row_json)


def _stage_json(con: duckdb.DuckDBPyConnection, path: str, schema: SourceSchema) -> Staged:
    options = _csv_options(
        "columns = {'_line': 'VARCHAR'}, header = false, delim = E'\\x1e', quote = '', "
        "escape = '', auto_detect = false"
    )
    con.execute(f"CREATE TEMP TABLE {_RAW} AS SELECT * FROM read_csv({path}, {options})")
    if schema is EVENTS:
        keys, values = segment.KEYS, segment.select_list("_v")
    else:
        keys = tuple(schema.column_names)
        values = ", ".join(f"_v[{i}] AS {quote(c)}" for i, c in enumerate(keys, 1))
    paths = ", ".join(literal(f'$."{key}"') for key in keys)
    # Nested CASEs rather than AND/OR: DuckDB then evaluates trim and json_type only on the
    # few rows that need them. Lines of blanks are no records (but keep their numbers).
    error = (
        "CASE WHEN _error IS NOT NULL THEN _error WHEN _v IS NULL THEN CASE "
        "  WHEN trim(_line) = '' THEN 'blank' ELSE 'line is not valid JSON' END "
        "WHEN list_count(_v) = 0 THEN CASE "
        "  WHEN try(json_type(_line)) <> 'OBJECT' THEN 'line is not a JSON object' END END"
    )
    con.execute(
        f"CREATE TEMP VIEW {_STAGE} AS SELECT _row_number, _error, _line, {values} FROM ("
        f"  SELECT _row_number, _line, _v, {error} AS _error FROM ("
        f"    SELECT {_row_numbers(con, header_lines=0)} AS _row_number, _line, NULL AS _error,"
        f"      try(json_extract_string(_line, [{paths}])) AS _v"
        f"    FROM {_RAW} WHERE _line IS NOT NULL"
        f"    UNION ALL BY NAME {_rejects_sql(header_lines=0, columns=[])}))"
        f"WHERE _error IS DISTINCT FROM 'blank'"
    )
    found = con.execute(
        f"SELECT DISTINCT unnest(try(json_keys(_line))) AS k FROM {_RAW} ORDER BY k"
    ).fetchall()
    ignored = [key for (key,) in found if key not in keys]
    row_json = "coalesce(try(_line::JSON), to_json(_line))"
    return Staged(_STAGE, {c: "VARCHAR" for c in schema.column_names}, ignored, row_json)


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: str, schema: SourceSchema) -> Staged:
    read = f"read_parquet({path}, file_row_number = true)"
    types = _types(con, f"SELECT * FROM {read}")
    types.pop("file_row_number")
    columns, ignored = _split(schema, types)
    picked = _selected(list(types))
    con.execute(
        f"CREATE TEMP VIEW {_STAGE} AS SELECT file_row_number + 1 AS _row_number, "
        f"NULL::VARCHAR AS _error, {', '.join(quote(c) for c in picked)} FROM {read}"
    )
    return Staged(_STAGE, columns, ignored, _struct(picked))


_READERS = {"csv": _stage_csv, "json": _stage_json, "parquet": _stage_parquet}


def stage_file(con: duckdb.DuckDBPyConnection, *, path: Path, schema: SourceSchema) -> Staged:
    """Stage the file at `path` (CSV, Parquet or JSONL) for `schema`."""
    reader = _READERS[file_format(path)]
    clear(con)
    return reader(con, literal(str(path)), schema)


def stage_rows(con: duckdb.DuckDBPyConnection, *, rows: pa.Table, schema: SourceSchema) -> Staged:
    """Stage an Arrow table of rows (row numbers are positions in the batch)."""
    clear(con)
    picked = _selected(rows.column_names)
    numbers = pa.array(range(1, rows.num_rows + 1), type=pa.int64())
    con.register(_ROWS, rows.select(picked).append_column("_row_number", numbers))
    con.execute(f"CREATE TEMP VIEW {_STAGE} AS SELECT *, NULL::VARCHAR AS _error FROM {_ROWS}")
    types = {name: kind for name, kind in _types(con, _ROWS).items() if name in picked}
    columns, ignored = _split(schema, types)
    return Staged(
        _STAGE,
        columns,
        ignored + [n for n in rows.column_names if n not in picked],
        _struct(picked),
    )
