"""Connected components as Spark jobs: the identity graph past one machine.

The edges leave the DuckDB warehouse as Parquet in the lake (`SparkEngine.export`).
Every node starts labelled by the smallest node among itself and its neighbours; each
round then takes the smallest label around each node and jumps it to that label's own
label (pointer jumping), until a round changes nothing (labels only ever fall, so an
unchanged sum of labels says so in one small job). The symmetric edges are written to
the lake once; each round's labels are checkpointed on the executors, so that no plan
grows with the rounds. A node's label is then the smallest node of its component, found
without collecting the graph on the driver. The labels come back to the warehouse
renumbered as scipy numbers components (in order of their smallest node), so that both
engines give every later step the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from warehouse.spark import SparkEngine

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["MAX_ROUNDS", "label_records"]

MAX_ROUNDS = 64


def label_records(
    con: duckdb.DuckDBPyConnection,
    *,
    engine: SparkEngine,
    edges: str,
    n_records: int,
    name: str,
) -> int:
    """Make `name(node, label)` a view of `con` for record nodes 0..n_records-1 of the graph
    whose edges are the rows (a, b) of the DuckDB SQL `edges`; returns the number of
    components among the records (see the module docstring)."""
    from pyspark.sql import functions as F

    spark = engine.session()
    found = engine.export(
        con, query=f"SELECT a::BIGINT AS a, b::BIGINT AS b FROM ({edges})", name=_at(engine, "in")
    )
    loops = spark.range(n_records).select(F.col("id").alias("a"), F.col("id").alias("b"))
    both = found.unionByName(found.select(F.col("b").alias("a"), F.col("a").alias("b")))
    graph = engine.write(both.unionByName(loops).distinct(), _at(engine, "edges"))
    labels = graph.groupBy(F.col("a").alias("node")).agg(F.min("b").alias("label"))
    labels = labels.localCheckpoint()
    total = _label_sum(labels)
    for _ in range(MAX_ROUNDS):
        spread = (
            graph.join(labels.withColumnRenamed("node", "b"), "b")
            .groupBy(F.col("a").alias("node"))
            .agg(F.min("label").alias("label"))
        )
        jumped = (
            spread.alias("x")
            .join(spread.alias("y"), F.col("y.node") == F.col("x.label"))
            .select(F.col("x.node").alias("node"), F.least("x.label", "y.label").alias("label"))
        )
        labels = jumped.localCheckpoint()  # a short plan for the next round
        # A label never grows, so an unchanged sum means that no label changed.
        total, before = _label_sum(labels), total
        if total == before:
            break
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    engine.write(labels.where(F.col("node") < n_records), _at(engine, "records"))
    records = engine.duckdb_source(_at(engine, "records"))
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {name} AS
        SELECT node, (dense_rank() OVER (ORDER BY label) - 1)::BIGINT AS label FROM {records}
    """)
    (count,) = con.execute(f"SELECT count(DISTINCT label) FROM {records}").fetchone()
    return int(count)


def _at(engine: SparkEngine, step: str) -> str:
    return engine.scratch(f"components/{step}")


def _label_sum(labels: DataFrame) -> int:
    from pyspark.sql import functions as F

    return int(labels.agg(F.sum("label")).first()[0] or 0)
