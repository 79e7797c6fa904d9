"""Timestamps written the way exports write them: one reading per column, chosen from the data.

ISO 8601 (with or without a UTC offset, `T` or a space, date only) is read by DuckDB's
cast. Other common spellings (`12/1/2010 8:26`, `01.12.2010`, `2010/12/01`, `1 Dec 2010`,
`20101201`, Unix seconds or milliseconds) are read with `strptime`. A column is read one
way throughout: `01/02/2024` is the 2nd of January in a month-first file and the 1st of
February in a day-first one, so the reading that parses the most values of the column
wins (month-first before day-first when both parse all). A value the chosen reading
cannot parse is quarantined with its column named, like any other bad value.
"""

from __future__ import annotations

import duckdb

from warehouse.database import first_row

__all__ = ["ISO", "READINGS", "choose_reading", "read_as"]

ISO = "iso"
SAMPLE = 20_000

# Reading name -> SQL over the text value `{v}`, giving a naive UTC timestamp or NULL.
_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%y %H:%M",
    "%d/%m/%y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d-%b-%Y %H:%M",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%Y%m%d",
)
READINGS: dict[str, str] = {
    ISO: "(TRY_CAST({v} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')",
    **{f: f"try_strptime({{v}}, '{f}')" for f in _FORMATS},
    "unix seconds": "CASE WHEN regexp_full_match({v}, '[0-9]{{9,10}}') "
    "THEN make_timestamp(CAST({v} AS BIGINT) * 1000000) END",
    "unix milliseconds": "CASE WHEN regexp_full_match({v}, '[0-9]{{12,13}}') "
    "THEN make_timestamp(CAST({v} AS BIGINT) * 1000) END",
}


def read_as(reading: str, value: str) -> str:
    """SQL reading the text expression `value` as a timestamp the way `reading` says."""
    return READINGS[reading].format(v=value)


def choose_reading(con: duckdb.DuckDBPyConnection, *, relation: str, value: str) -> str:
    """The reading that parses the most non-blank values of `value` over `relation`
    (judged on up to `SAMPLE` of them).

    ISO wins whenever it parses as many as any other (the house format, and what Parquet
    and JSON exports mostly hold); a column of blanks reads as ISO.
    """
    sample = f"SELECT {value} AS v FROM {relation} WHERE {value} IS NOT NULL LIMIT {SAMPLE}"
    iso = f"count(*) FILTER (WHERE {read_as(ISO, 'v')} IS NOT NULL)"
    total, parsed_iso = con.execute(f"SELECT count(*), {iso} FROM ({sample})").fetchone()
    if parsed_iso == total:  # nothing parses more: ISO columns, the common case
        return ISO
    counts = ", ".join(f"count(*) FILTER (WHERE {read_as(r, 'v')} IS NOT NULL)" for r in READINGS)
    found = first_row(con, f"SELECT {counts} FROM ({sample})")
    parsed = dict(zip(READINGS, found or (), strict=False))
    best = max(parsed.values(), default=0)
    return next((r for r, n in parsed.items() if n == best), ISO) if best else ISO
