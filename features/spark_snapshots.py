"""Feature snapshots aggregated on Spark, from the same definitions as on DuckDB.

`prepare` brings the lake's raw tables in step with the warehouse (`warehouse.lake`,
which `cip load` keeps) and builds each source's `linked_<source>` on Spark from them and
the identity map (exported once), by the same SELECT as DuckDB's (`features.snapshots.
link_select`, translated by `warehouse.dialect`); the golden records and the as-of dates
go to Spark as well. `insert` runs a group's snapshot SELECT (`snapshot_select`, the
DuckDB SQL of `features.definitions`, translated) on Spark, writes the rows to the lake
and inserts them into the group's warehouse table, which Feast's files and every later
stage read as before. Linking and the rows x as-of dates aggregation, the parts that grow
with the data, run on Spark.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from features.definitions import FeatureGroup
from features.settings import FeatureSettings
from features.snapshots import link_select, snapshot_select
from warehouse.dialect import to_spark
from warehouse.lake import sync
from warehouse.sources import SOURCES
from warehouse.spark import SparkEngine
from warehouse.tables import IDENTITY_MAP, PROFILES, table_names

__all__ = ["DATES", "insert", "prepare"]

DATES = "snapshot_as_of"


def prepare(con: duckdb.DuckDBPyConnection, *, engine: SparkEngine, as_of: list[datetime]) -> None:
    """Make the linked sources, the golden records and the dates Spark temporary views of
    the same names; the linked sources also DuckDB temporary views (of Spark's files)."""
    spark = engine.session()
    tables = table_names(con)
    rows = sync(con, lake=engine.lake_folder()).rows
    in_lake = {table for table, n in rows.items() if n}
    map_query = f"SELECT source, record_key, customer_id FROM {IDENTITY_MAP}"
    engine.export(con, query=map_query, name=engine.scratch(IDENTITY_MAP)).createOrReplaceTempView(
        IDENTITY_MAP
    )
    for source in SOURCES.values():
        name, select = f"linked_{source.name}", link_select(source, tables)
        scratch = engine.scratch(name)
        if source.table in in_lake:
            engine.read_raw(source.table).createOrReplaceTempView(source.table)
            frame = engine.write(spark.sql(to_spark(select)), scratch)
        else:  # no rows: DuckDB gives the empty table its declared column types
            frame = engine.export(con, query=select, name=scratch)
        frame.createOrReplaceTempView(name)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS FROM {engine.duckdb_source(scratch)}")
    if PROFILES in tables:
        engine.export(
            con, query=f"SELECT * FROM {PROFILES}", name=engine.scratch(PROFILES)
        ).createOrReplaceTempView(PROFILES)
    # An inline table, not a frame of Python rows: Spark knows its size (the rows x dates
    # join broadcasts it, where Python rows made a cartesian product) and reads it without
    # starting Python workers.
    values = ", ".join(f"(TIMESTAMP_NTZ '{d:%Y-%m-%d %H:%M:%S.%f}')" for d in as_of)
    spark.sql(f"SELECT * FROM VALUES {values} AS dates(as_of)").createOrReplaceTempView(DATES)


def insert(
    con: duckdb.DuckDBPyConnection,
    *,
    engine: SparkEngine,
    group: FeatureGroup,
    settings: FeatureSettings,
) -> None:
    """Compute `group`'s rows on Spark and insert them into its warehouse table."""
    select = to_spark(snapshot_select(group, settings, dates=DATES))
    name = engine.scratch(f"snapshots/{group.table}")
    engine.write(engine.session().sql(select), name)
    con.execute(f"INSERT INTO {group.table} BY NAME SELECT * FROM {engine.duckdb_source(name)}")
