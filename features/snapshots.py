"""Dated feature snapshots computed in DuckDB SQL, the offline side of the Feast repo.

For every as-of date, each feature group aggregates its base rows strictly before that
instant, one row per customer with any history in the group, into the warehouse table
`customer_<group>_features` keyed by (`customer_id`, `event_timestamp` = as-of). Each table
is then exported to `<feast_dir>/<table>.parquet`, the file Feast's DuckDB offline store
reads. A group whose raw tables are absent or empty (an orders-only business) gets an empty
table with the full schema, so every feature view and service still answers, with nulls.

Each build is logged (`BUILDS`: the dates, when, from which definitions), so that a later
stage can reuse snapshots nothing has changed since (`fresh_dates`; `build_snapshots`
with `reuse=True`): `cip train` reads the month starts `cip features` built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

import duckdb
import pandas as pd

from features.definitions import GROUPS, LINKED_COLUMNS, FeatureGroup, expand, linked_records
from features.settings import FeatureSettings
from warehouse.engine import Engine
from warehouse.schemas import Source
from warehouse.sources import SOURCES
from warehouse.tables import IDENTITY_MAP, table_names

__all__ = [
    "BUILDS",
    "FeatureInputError",
    "SnapshotReport",
    "build_snapshots",
    "default_schedule",
    "fresh_dates",
    "link_select",
    "snapshot_dates",
    "snapshot_select",
]

_AS_OF = "(SELECT unnest($as_of::TIMESTAMP[]) AS as_of)"  # the dates, as a DuckDB parameter
SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN"}
EARLIEST_ACTIVITY = datetime(1970, 1, 1)
"""Activity dated before this (year 0001, a broken clock) does not stretch the schedule."""
BUILDS = "feature_snapshot_builds"
"""Which as-of dates were built, when (UTC), and from which definitions (a hash of the SQL)."""


class FeatureInputError(ValueError):
    """The warehouse lacks what feature computation needs (says which table and what to run)."""


@dataclass
class SnapshotReport:
    """What a build did: the as-of dates, rows written per group, groups without source data."""

    as_of: list[datetime]
    rows: dict[str, int] = field(default_factory=dict)
    groups_without_data: list[str] = field(default_factory=list)
    reused: list[datetime] = field(default_factory=list)


def default_schedule(
    con: duckdb.DuckDBPyConnection, *, settings: FeatureSettings
) -> list[datetime]:
    """Month starts (every `snapshot_every_months`) over the activity history, plus the day
    after the last activity, so that the latest snapshot sees everything.

    The history is the activity dated from 1970 to tomorrow: a stored time in year 0001 or
    9999 (a broken device clock, a typo in a file) neither stretches the schedule over
    centuries nor overflows it. Snapshots still count every row before their date."""
    tables = table_names(con)
    spans = [
        f'SELECT min("{s.time}") AS lo, max("{s.time}") AS hi FROM {s.table} '
        f'WHERE "{s.time}" BETWEEN $earliest AND $latest'
        for s in SOURCES.values()
        if s.kind == "activity" and s.table in tables
    ]
    latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    lo, hi = con.execute(
        f"SELECT min(lo), max(hi) FROM ({' UNION ALL '.join(spans) or 'SELECT NULL, NULL'})",
        {"earliest": EARLIEST_ACTIVITY, "latest": latest} if spans else {},
    ).fetchone()
    if lo is None:
        raise FeatureInputError(
            "no orders, events, email events or tickets dated between 1970 and today in the "
            "warehouse: run `cip load` first"
        )
    latest = pd.Timestamp(hi).normalize() + pd.Timedelta(days=1)
    months = pd.date_range(
        pd.Timestamp(lo).normalize(), latest, freq=f"{settings.snapshot_every_months}MS"
    )
    return sorted({*(m.to_pydatetime() for m in months), latest.to_pydatetime()})


def snapshot_dates(con: duckdb.DuckDBPyConnection) -> list[datetime]:
    """The as-of dates that have snapshots in the warehouse, oldest first."""
    table = GROUPS["order"].table
    if table not in table_names(con):
        return []
    rows = con.execute(f"SELECT DISTINCT event_timestamp FROM {table} ORDER BY 1").fetchall()
    return [ts for (ts,) in rows]


def _definitions(settings: FeatureSettings) -> str:
    """A hash of every group's snapshot SQL: it changes with the settings and the code."""
    sql = "".join(snapshot_select(g, settings, dates=_AS_OF) for g in GROUPS.values())
    return sha256(sql.encode()).hexdigest()[:16]


def fresh_dates(con: duckdb.DuckDBPyConnection, *, settings: FeatureSettings) -> set[datetime]:
    """The as-of dates whose snapshots a build would compute again unchanged: built from
    today's definitions after the last row was loaded into any raw table (`_loaded_at`)
    and after the last resolution (`identity_map.resolved_at`)."""
    tables = table_names(con)
    if BUILDS not in tables or IDENTITY_MAP not in tables:
        return set()
    changes = " UNION ALL ".join(
        [
            f"SELECT max(_loaded_at) AS t FROM {s.table}"
            for s in SOURCES.values()
            if s.table in tables
        ]
        + [f"SELECT max(resolved_at) FROM {IDENTITY_MAP}"]
    )
    rows = con.execute(
        f"SELECT event_timestamp FROM {BUILDS} WHERE definitions = $definitions "
        f"AND built_at > (SELECT max(t) FROM ({changes}))",
        {"definitions": _definitions(settings)},
    ).fetchall()
    return {ts for (ts,) in rows}


def _log_build(
    con: duckdb.DuckDBPyConnection,
    *,
    dates: list[datetime],
    began: datetime,
    settings: FeatureSettings,
    replace: bool,
) -> None:
    """Log the dates built (with `replace`, only those: the tables keep no others)."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {BUILDS} "
        "(event_timestamp TIMESTAMP, built_at TIMESTAMP, definitions VARCHAR)"
    )
    con.execute(
        f"DELETE FROM {BUILDS} WHERE $replace OR event_timestamp = ANY($as_of)",
        {"replace": replace, "as_of": dates},
    )
    con.execute(
        f"INSERT INTO {BUILDS} SELECT unnest($as_of::TIMESTAMP[]), $began, $definitions",
        {"as_of": dates, "began": began, "definitions": _definitions(settings)},
    )


def link_select(source: Source, tables: set[str]) -> str:
    """The SELECT (DuckDB SQL) of `linked_<source>`: the source's records with their
    customer_id, through the identity map (empty, with the declared column types, when
    the raw table is not among `tables`)."""
    wanted = LINKED_COLUMNS.get(source.name, ())
    if source.table in tables:
        columns = "".join(f', r."{c}"' for c in wanted)
        return (
            f'SELECT m.customer_id, r."{source.time}" AS ts{columns} FROM {source.table} r '
            f"JOIN {IDENTITY_MAP} m ON m.source = '{source.name}' "
            f'AND m.record_key = r."{source.key}"'
        )
    types = {c.name: c.type for c in source.columns}
    columns = "".join(f', NULL::{types[c]} AS "{c}"' for c in wanted)
    return f"SELECT NULL::VARCHAR AS customer_id, NULL::TIMESTAMP AS ts{columns} WHERE false"


def _link(con: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
    """Temporary `linked_<source>` tables (`link_select`)."""
    for source in SOURCES.values():
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE linked_{source.name} AS {link_select(source, tables)}"
        )


def _has_data(con: duckdb.DuckDBPyConnection, group: FeatureGroup, tables: set[str]) -> bool:
    for name in group.requires:
        table = f"linked_{name}" if name in SOURCES else name
        if name not in SOURCES and table not in tables:
            return False
        if con.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None:
            return False
    return True


def _ensure_table(
    con: duckdb.DuckDBPyConnection, group: FeatureGroup, settings: FeatureSettings, replace: bool
) -> None:
    features = expand(group, settings.windows)
    wanted = [("customer_id", "VARCHAR"), ("event_timestamp", "TIMESTAMP")] + [
        (f.name, SQL_TYPES[f.dtype]) for f in features
    ]
    existing = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
        "ORDER BY column_index",
        [group.table],
    ).fetchall()
    if replace or [tuple(c) for c in existing] != wanted:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in wanted)
        con.execute(f"CREATE OR REPLACE TABLE {group.table} ({columns})")


def snapshot_select(group: FeatureGroup, settings: FeatureSettings, *, dates: str) -> str:
    """The SELECT of `group`'s snapshot rows (DuckDB SQL) at every `as_of` of the relation
    `dates`, over the `linked_<source>` tables."""
    base = group.base.format(
        session_gap_minutes=settings.session_gap_minutes, linked_records=linked_records()
    )
    since = ", ".join(
        f"as_of - INTERVAL {n} DAY AS since_{n}d" for n in sorted({*settings.windows, 90, 180})
    )
    aggregates = ",\n  ".join(f'{f.sql} AS "{f.name}"' for f in expand(group, settings.windows))
    return f"""
    SELECT customer_id, as_of AS event_timestamp,
      {aggregates}
    FROM ({base}) AS base
    JOIN (SELECT as_of, {since} FROM {dates}) AS dates
      ON base.ts < dates.as_of
    GROUP BY customer_id, as_of
    """


def _export(con: duckdb.DuckDBPyConnection, group: FeatureGroup, feast_dir: Path) -> None:
    feast_dir.mkdir(parents=True, exist_ok=True)
    target = feast_dir / f"{group.table}.parquet"
    partial = target.with_suffix(".parquet.partial")
    con.execute(
        f"COPY (SELECT * FROM {group.table} ORDER BY event_timestamp, customer_id) "
        f"TO '{partial}' (FORMAT parquet)"
    )
    partial.replace(target)


def build_snapshots(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: Sequence[datetime],
    feast_dir: Path,
    settings: FeatureSettings,
    replace: bool = False,
    on_group: Callable[[str], None] | None = None,
    engine: Engine | None = None,
    reuse: bool = False,
) -> SnapshotReport:
    """Compute every group's snapshot for each date in `as_of` and export the Feast sources.

    Rows already present for those dates are replaced (idempotent); with `replace` the
    tables keep only the given dates; with `reuse` the dates whose snapshots are fresh
    (`fresh_dates`) are kept as they are, and nothing is written when all are.
    `on_group(name)` is called after each group. With `engine` Spark, the aggregation
    runs there, from the same definitions (`features.spark_snapshots`); the tables and
    files written are the same.
    """
    began = datetime.now(UTC).replace(tzinfo=None)
    tables = table_names(con)
    if IDENTITY_MAP not in tables:
        raise FeatureInputError(f"table {IDENTITY_MAP} not found: run `cip resolve` first")
    dates = sorted({pd.Timestamp(d).to_pydatetime() for d in as_of})
    fresh = fresh_dates(con, settings=settings) if reuse and not replace else set()
    report = SnapshotReport(
        as_of=[d for d in dates if d not in fresh], reused=[d for d in dates if d in fresh]
    )
    if reuse and not report.as_of:
        return report
    dates = report.as_of
    linked = "TABLE"
    if engine is not None and dates:
        from features import spark_snapshots

        linked = "VIEW"  # of the linked tables Spark built from the lake
        spark_snapshots.prepare(con, engine=engine, as_of=dates)
    else:
        engine = None
        _link(con, tables)
    try:
        for group in GROUPS.values():
            _ensure_table(con, group, settings, replace)
            where = "WHERE event_timestamp = ANY($as_of)"
            con.execute(f"DELETE FROM {group.table} {where}", {"as_of": dates})
            if not _has_data(con, group, tables):
                report.groups_without_data.append(group.name)
            elif engine is not None:  # the rows computed on Spark, inserted from the lake
                spark_snapshots.insert(con, engine=engine, group=group, settings=settings)
            elif dates:
                select = snapshot_select(group, settings, dates=_AS_OF)
                con.execute(f"INSERT INTO {group.table} BY NAME {select}", {"as_of": dates})
            (report.rows[group.name],) = con.execute(
                f"SELECT count(*) FROM {group.table} {where}", {"as_of": dates}
            ).fetchone()
            _export(con, group, feast_dir)
            if on_group is not None:
                on_group(group.name)
        _log_build(con, dates=dates, began=began, settings=settings, replace=replace)
    finally:
        for source in SOURCES:
            con.execute(f"DROP {linked} IF EXISTS linked_{source}")
    return report
