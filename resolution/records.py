"""Every raw record of every source as one normalized row: the input of resolution.

`collect_records` reads the raw tables that exist, maps each source's columns
onto common roles (identifiers, person attributes, timestamp, consent) and
normalizes the values with `resolution.normalize`. Normalization runs once per
distinct value, so a million records cost only as much as their distinct
emails, phones and names. The result is the temporary table `res_records`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import pyarrow as pa

from resolution import normalize
from warehouse.schemas import RECORD_ROLES, Source
from warehouse.sources import SOURCES

__all__ = ["RAW_COLUMNS", "RECORDS", "collect_records", "existing_tables", "normalize_table"]

RECORDS = "res_records"
# How much likelier a full name must read surname first before its split is turned round.
SWAP_ODDS = 4.0

# Raw role columns every source select produces, in order.
RAW_COLUMNS = ", ".join(("source", "record_key", *RECORD_ROLES))


def _source_select(source: Source) -> str:
    """The SELECT producing RAW_COLUMNS from a source's raw table, as its catalog entry
    (`warehouse.sources`) maps its columns onto the roles."""
    roles = ", ".join(source.record(role) for role in RECORD_ROLES)
    return f"SELECT '{source.name}', \"{source.key}\", {roles} FROM {source.table}"


def existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views in the connection's main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def collect_records(
    con: duckdb.DuckDBPyConnection, *, phone_region: str, where: str | None = None
) -> int:
    """Build `res_records` from the raw tables present (the rows `where` selects, if given)."""
    present = existing_tables(con)
    selects = [_source_select(s) for s in SOURCES.values() if s.table in present]
    if not selects:
        raise LookupError(
            "no raw tables to resolve: load sources first (`cip load`); expected one of "
            + ", ".join(s.table for s in SOURCES.values())
        )
    union = " UNION ALL ".join(selects)
    if where:
        union = f"SELECT * FROM ({union}) AS u({RAW_COLUMNS}) WHERE {where}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE res_raw_records ({RAW_COLUMNS}) AS {union}")
    n_records = normalize_table(con, "res_raw_records", RECORDS, phone_region=phone_region)
    if not n_records and where is None:
        raise LookupError("the raw tables are empty: load sources first (`cip load`)")
    return n_records


def normalize_table(
    con: duckdb.DuckDBPyConnection,
    source_table: str,
    target_table: str,
    *,
    phone_region: str,
    extra_columns: Sequence[str] = (),
) -> int:
    """Write `target_table`: `source_table` (RAW_COLUMNS, then `extra_columns`) normalized."""
    extras: dict[str, Callable[[str], str | None]] = dict.fromkeys(extra_columns, normalize.text)
    maps = {
        "email": normalize.email,
        "phone": lambda v: normalize.phone(v, phone_region),
        "first_name": normalize.name,
        "last_name": normalize.name,
        "address": normalize.text,
        "city": normalize.text,
        "postcode": normalize.postcode,
    } | extras
    for column, function in maps.items():
        _register_lookup(con, source_table, column, function)
    _register_full_name_lookup(con, source_table)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target_table} AS
        SELECT r.source || '|' || r.record_key AS uid, r.source, r.record_key, r.seen_at,
               m_email.norm AS email, m_phone.norm AS phone,
               nullif(trim(r.user_id), '') AS user_id,
               nullif(trim(r.anonymous_id), '') AS anonymous_id,
               nullif(trim(r.previous_id), '') AS previous_id,
               nullif(trim(r.contact_id), '') AS contact_id,
               nullif(coalesce(m_first_name.norm, m_full.first_name),
                      coalesce(m_last_name.norm, m_full.last_name)) AS first_name,
               CASE WHEN coalesce(m_first_name.norm, m_full.first_name)
                         IS DISTINCT FROM coalesce(m_last_name.norm, m_full.last_name)
                    THEN coalesce(m_last_name.norm, m_full.last_name) END AS last_name,
               m_address.norm AS address, m_city.norm AS city, m_postcode.norm AS postcode,
               r.date_of_birth, r.store_id, r.consent_email, r.consent_sms, r.consent_ads,
               r.consent_profiling, r.consent_push, r.consent_at, r.is_person
               {"".join(f", m_{c}.norm AS {c}" for c in extras)}
        FROM {source_table} r
        {" ".join(_lookup_join(column) for column in maps)}
        LEFT JOIN res_map_full_name m_full ON m_full.raw = r.full_name
    """)
    return con.execute(f"SELECT count(*) FROM {target_table}").fetchall()[0][0]


def _distinct(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    sql = f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM {table} WHERE {column} IS NOT NULL"
    return [value for (value,) in con.execute(sql).fetchall()]


def _register_lookup(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    function: Callable[[str], str | None],
) -> None:
    values = _distinct(con, table, column)
    lookup = pa.table(
        {"raw": pa.array(values, pa.string()), "norm": pa.array(map(function, values), pa.string())}
    )
    con.register(f"res_map_{column}", lookup)


def _register_full_name_lookup(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Split full names, putting the surname last where the table's own names say so.

    A name typed as one string may be written surname first (`"Smith John"`). The
    records that give first and last names separately tell how often each word is
    used as which; a split is turned round when its words are far likelier the other
    way round (`SWAP_ODDS`).
    """
    values = _distinct(con, table, "full_name")
    firsts, lasts = (_name_counts(con, table, column) for column in ("first_name", "last_name"))

    def odds(first: str, last: str) -> float:
        return (firsts.get(first, 0) + 1) * (lasts.get(last, 0) + 1)

    parts = []
    for value in values:
        first, last = normalize.split_full_name(value)
        if first and last and odds(last, first) > SWAP_ODDS * odds(first, last):
            first, last = last, first
        parts.append((first, last))
    lookup = pa.table(
        {
            "raw": pa.array(values, pa.string()),
            "first_name": pa.array([first for first, _ in parts], pa.string()),
            "last_name": pa.array([last for _, last in parts], pa.string()),
        }
    )
    con.register("res_map_full_name", lookup)


def _name_counts(con: duckdb.DuckDBPyConnection, table: str, column: str) -> dict[str, int]:
    rows = con.execute(
        f"SELECT {column}, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY 1"
    ).fetchall()
    counts: dict[str, int] = {}
    for value, n in rows:
        key = normalize.name(value)
        if key:
            counts[key] = counts.get(key, 0) + n
    return counts


def _lookup_join(column: str) -> str:
    return f"LEFT JOIN res_map_{column} m_{column} ON m_{column}.raw = r.{column}"
