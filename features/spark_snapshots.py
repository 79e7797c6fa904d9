"""Feature snapshots aggregated on Spark, from the same definitions as on DuckDB.

`features.snapshots` links each source to customers in the warehouse (`linked_<source>`),
as for DuckDB. `prepare` hands those tables, the golden records and the as-of dates to
Spark through the lake; `insert` runs a group's snapshot SELECT (`snapshot_select`, the
DuckDB SQL of `features.definitions`, translated by `warehouse.dialect`) on Spark, writes
the rows to the lake and inserts them into the group's warehouse table, which Feast's
files and every later stage read as before. The rows x as-of dates aggregation, the part
that grows with the data, is what runs on Spark.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from features.definitions import FeatureGroup
from features.settings import FeatureSettings
from features.snapshots import snapshot_select
from warehouse.dialect import to_spark
from warehouse.sources import SOURCES
from warehouse.spark import SparkEngine
from warehouse.tables import PROFILES, table_names

__all__ = ["DATES", "insert", "prepare"]

DATES = "snapshot_as_of"


def prepare(con: duckdb.DuckDBPyConnection, *, engine: SparkEngine, as_of: list[datetime]) -> None:
    """Make the linked sources, the golden records and the dates Spark temporary views
    of the same names."""
    spark = engine.session()
    names = [f"linked_{source}" for source in SOURCES]
    if PROFILES in table_names(con):
        names.append(PROFILES)
    for name in names:
        frame = engine.export(con, query=f"SELECT * FROM {name}", name=engine.scratch(name))
        frame.createOrReplaceTempView(name)
    # A frame made from Python rows has no size Spark can see: without the hint, the rows x
    # dates join would be a cartesian product, or would broadcast the rows.
    dates = spark.createDataFrame([(d,) for d in as_of], "as_of TIMESTAMP").hint("broadcast")
    dates.createOrReplaceTempView(DATES)


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
