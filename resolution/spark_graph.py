"""Connected components as Spark jobs: the identity graph past one machine.

The edges leave the DuckDB warehouse as Parquet in the lake (`SparkEngine.export`) and
are reduced by the alternating large-star and small-star operations of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014): each round joins nodes to
smaller ones, until the edges are stars around the smallest node of each component,
in O(log^2 n) rounds whatever the graph's diameter, without collecting the graph on the
driver. The rounds stop as soon as the edges are stars (the next round would not change
them). Each round is checkpointed on the executors (and every fourth one written to the
lake), so that no plan grows with the rounds. The labels come back to the warehouse
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
    pairs = found.where(F.col("a") != F.col("b")).select(
        F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b")
    )
    edges = engine.write(pairs.distinct(), _at(engine, "edges-0"))
    for round_ in range(1, MAX_ROUNDS + 1):
        edges = _small_star(_large_star(edges)).localCheckpoint()  # a short plan
        if _stars(edges):
            break
        if round_ % 4 == 0:  # now and then to the lake: a failed executor loses little
            edges = engine.write(edges, _at(engine, f"edges-{round_}"))
    else:
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    # Every edge now joins a node to the smallest node of its component, its only `a`.
    centres = edges.select(F.col("b").alias("node"), F.col("a").alias("centre"))
    records = spark.range(n_records).select(F.col("id").alias("node"))
    labels = records.join(centres, "node", "left").select(
        "node", F.coalesce("centre", "node").alias("label")
    )
    engine.write(labels, _at(engine, "records"))
    records = engine.duckdb_source(_at(engine, "records"))
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW {name} AS
        SELECT node, (dense_rank() OVER (ORDER BY label) - 1)::BIGINT AS label FROM {records}
    """)
    (count,) = con.execute(f"SELECT count(DISTINCT label) FROM {records}").fetchone()
    return int(count)


def _at(engine: SparkEngine, step: str) -> str:
    return engine.scratch(f"components/{step}")


def _large_star(edges: DataFrame) -> DataFrame:
    """Each node's larger neighbours joined to the smallest node around it (itself too)."""
    from pyspark.sql import functions as F

    both = edges.unionByName(edges.select(F.col("b").alias("a"), F.col("a").alias("b")))
    smallest = both.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("m"))
    return (
        both.where(F.col("b") > F.col("a"))
        .join(smallest, "a")
        .select(F.col("b").alias("b"), F.col("m").alias("a"))
        .where(F.col("a") != F.col("b"))
        .select("a", "b")
        .distinct()
    )


def _small_star(edges: DataFrame) -> DataFrame:
    """Each node and its smaller neighbours joined to the smallest of them."""
    from pyspark.sql import functions as F

    # edges are (a < b): the smaller neighbours of b are its a's
    smallest = edges.groupBy("b").agg(F.min("a").alias("m"))
    joined = edges.join(smallest, "b")
    return (
        joined.select(F.col("m").alias("a"), F.col("a").alias("b"))
        .unionByName(joined.select(F.col("m").alias("a"), F.col("b").alias("b")))
        .where(F.col("a") != F.col("b"))
        .distinct()
    )


def _stars(edges: DataFrame) -> bool:
    """Whether the edges (a < b) are stars around the smallest node of each component: no
    node is the `b` of two edges, nor both an `a` and a `b` (one job; large-star and
    small-star leave such edges as they are)."""
    from pyspark.sql import functions as F

    ends = edges.select(F.col("b").alias("node"), F.lit(1).alias("as_b")).unionByName(
        edges.select(F.col("a").alias("node"), F.lit(0).alias("as_b"))
    )
    counts = ends.groupBy("node").agg(F.sum("as_b").alias("as_b"), F.count("*").alias("ends"))
    return counts.where((F.col("as_b") > 0) & (F.col("ends") > 1)).isEmpty()
