"""Reading a source file or a batch of rows into a staging relation, without judging it.

Every reader produces the same shape, a `Staged` relation: `_row_number` (1-based row in
the file), `_error` (why the row could not even be parsed, else NULL) and one column per
declared column the input has, in whatever type the input gave (text for CSV and JSONL,
native types for Parquet). `warehouse.validation` then casts, checks and routes the rows.
Nothing is read row by row in Python: DuckDB scans the files. A `mapping` (declared
column -> the file's column) renames a file's columns first, so that any export loads
(`--map ordered_at=order_ts`).

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
from warehouse.schemas import Source

__all__ = [
    "FORMATS",
    "Staged",
    "check_mapping",
    "clear",
    "file_format",
    "stage_file",
    "stage_rows",
]

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


def _split(schema: Source, types: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The declared columns among the input's (with their types), and the other ones."""
    declared = {name: types[name] for name in schema.column_names if name in types}
    return declared, [name for name in types if name not in declared]


def check_mapping(mapping: dict[str, str], schema: Source) -> None:
    """Refuse a mapping onto columns the source does not declare."""
    unknown = sorted(set(mapping) - set(schema.column_names))
    if unknown:
        raise ValueError(
            f"--map {unknown[0]}=...: {schema.name} has no column {unknown[0]!r}; its columns: "
            + ", ".join(schema.column_names)
        )


def _renamed(names: list[str], mapping: dict[str, str], where: str) -> dict[str, str]:
    """The input's column names after the mapping: {input name: staged name}."""
    missing = [f"{t}={c}" for t, c in mapping.items() if c not in names]
    if missing:
        raise ValueError(
            f"{where}: --map {missing[0]}: the file has no such column; its columns: "
            + ", ".join(names)
        )
    clash = [t for t, c in mapping.items() if t in names and t != c and t not in mapping.values()]
    if clash:
        raise ValueError(
            f"{where}: --map {clash[0]}={mapping[clash[0]]}: the file already has a column "
            f"{clash[0]!r}; map that one, or rename it"
        )
    back = {c: t for t, c in mapping.items()}
    return {name: back.get(name, name) for name in names}


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


def _stage_csv(
    con: duckdb.DuckDBPyConnection, path: str, schema: Source, mapping: dict[str, str]
) -> Staged:
    options = _csv_options("header = true, all_varchar = true")
    con.execute(f"CREATE TEMP TABLE {_RAW} AS SELECT * FROM read_csv({path}, {options})")
    names = _renamed(list(_types(con, _RAW)), mapping, path)
    for old, new in names.items():
        if old != new:
            con.execute(f"ALTER TABLE {_RAW} RENAME COLUMN {quote(old)} TO {quote(new + '~')}")
    for old, new in names.items():
        if old != new:
            con.execute(f"ALTER TABLE {_RAW} RENAME COLUMN {quote(new + '~')} TO {quote(new)}")
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


def _stage_json(
    con: duckdb.DuckDBPyConnection, path: str, schema: Source, mapping: dict[str, str]
) -> Staged:
    options = _csv_options(
        "columns = {'_line': 'VARCHAR'}, header = false, delim = E'\\x1e', quote = '', "
        "escape = '', auto_detect = false"
    )
    con.execute(f"CREATE TEMP TABLE {_RAW} AS SELECT * FROM read_csv({path}, {options})")
    if schema.segment_messages:
        if mapping:
            raise ValueError(f"{path}: events are Segment messages; --map does not apply")
        keys, values = segment.KEYS, segment.select_list("_v")
    else:
        keys = tuple(mapping.get(c, c) for c in schema.column_names)
        values = ", ".join(f"_v[{i}] AS {quote(c)}" for i, c in enumerate(schema.column_names, 1))
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
    present = [key for (key,) in found]
    _renamed(present, mapping, path)
    ignored = [key for key in present if key not in keys]
    row_json = "coalesce(try(_line::JSON), to_json(_line))"
    declared = schema.column_names
    if not schema.segment_messages:  # events: Segment keys, mapped in `warehouse.segment`
        declared = [c for c, key in zip(declared, keys, strict=True) if key in present]
    return Staged(_STAGE, dict.fromkeys(declared, "VARCHAR"), ignored, row_json)


def _stage_parquet(
    con: duckdb.DuckDBPyConnection, path: str, schema: Source, mapping: dict[str, str]
) -> Staged:
    read = f"read_parquet({path}, file_row_number = true)"
    found = _types(con, f"SELECT * FROM {read}")
    found.pop("file_row_number")
    names = _renamed(list(found), mapping, path)
    types = {names[name]: kind for name, kind in found.items()}
    columns, ignored = _split(schema, types)
    picked = [name for name in found if names[name] not in _INTERNAL]
    selected = ", ".join(f"{quote(c)} AS {quote(names[c])}" for c in picked)
    con.execute(
        f"CREATE TEMP VIEW {_STAGE} AS SELECT file_row_number + 1 AS _row_number, "
        f"NULL::VARCHAR AS _error, {selected} FROM {read}"
    )
    return Staged(_STAGE, columns, ignored, _struct([names[c] for c in picked]))


_READERS = {"csv": _stage_csv, "json": _stage_json, "parquet": _stage_parquet}


def stage_file(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    schema: Source,
    mapping: dict[str, str] | None = None,
) -> Staged:
    """Stage the file at `path` (CSV, Parquet or JSONL) for `schema`, its columns renamed
    by `mapping` (declared column -> file column)."""
    reader = _READERS[file_format(path)]
    clear(con)
    return reader(con, literal(str(path)), schema, dict(mapping or {}))


def stage_rows(con: duckdb.DuckDBPyConnection, *, rows: pa.Table, schema: Source) -> Staged:
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
