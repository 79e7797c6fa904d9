"""Benchmark: DuckDB's Jaro-Winkler on Spark (`warehouse.spark_udf`) against Splink's.

Takes the pairs Splink scored in a resolved warehouse (`resolution_pairs` joined to
`resolution_candidates`: first name, last name and address of both records), computes
DuckDB's `jaro_winkler_similarity` of the three columns there, and hands them to Spark
(`local[2]`) as Parquet, cached in memory. Then, `--repeats` times in turn, it sums over
every pair the three similarities with our function, with Splink's `jaro_winkler` and,
as the floor, the three strings' lengths; it reports the Spark JVM's CPU seconds (user +
system) per pass, their median, how many pairs each function gives DuckDB's values for
(exactly, within 1e-9), and how many have a column on another side of one of the
comparisons' thresholds. Run from the
repository root on a copy of a resolved warehouse (`make demo` output):

    .venv/bin/python benchmarks/bench_jaro_winkler.py --warehouse /tmp/copy/warehouse.duckdb
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_timer import tree_cpu_seconds  # noqa: E402

from warehouse.engine import SparkSettings  # noqa: E402
from warehouse.spark import SparkEngine  # noqa: E402
from warehouse.spark_udf import JARO_WINKLER  # noqa: E402

COLUMNS = ("first_name", "last_name", "address")
THRESHOLDS = (0.7, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95)  # resolution/comparisons.py's levels


def export(warehouse: Path, folder: Path, pairs: int) -> None:
    """The scored pairs' strings and DuckDB's similarities, as Parquet."""
    con = duckdb.connect(str(warehouse), read_only=True)
    sides = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in COLUMNS)
    duck = ", ".join(f"jaro_winkler_similarity(l.{c}, r.{c}) AS {c}_duckdb" for c in COLUMNS)
    con.execute(
        f"COPY (SELECT {sides}, {duck} FROM (SELECT * FROM resolution_pairs LIMIT {pairs}) p "
        "JOIN resolution_candidates l ON l.unique_id = p.unique_id_l "
        "JOIN resolution_candidates r ON r.unique_id = p.unique_id_r) "
        f"TO '{folder}/pairs.parquet' (FORMAT parquet)"
    )
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-jw-"))
    export(args.warehouse, work, args.pairs)
    engine = SparkEngine(
        SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="2g"),
        location=str(work / "lake"),
    )
    session = engine.session()
    engine.splink_api()  # registers Splink's jar functions
    frame = session.read.parquet(str(work / "pairs.parquet")).cache()
    n = frame.count()

    def over_columns(function: str) -> str:
        return " + ".join(f"coalesce({function}({c}_l, {c}_r), 0)" for c in COLUMNS)

    passes = {
        "floor (lengths)": " + ".join(
            f"coalesce(length({c}_l) + length({c}_r), 0)" for c in COLUMNS
        ),
        f"{JARO_WINKLER} (DuckDB's)": over_columns(JARO_WINKLER),
        "jaro_winkler (Splink's jar)": over_columns("jaro_winkler"),
    }
    cpu: dict[str, list[float]] = {name: [] for name in passes}
    wall: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(args.repeats):
        for name, expression in passes.items():
            start, (_, jvm_start) = time.perf_counter(), tree_cpu_seconds()
            frame.selectExpr(f"sum({expression})").collect()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(tree_cpu_seconds()[1] - jvm_start)

    checks = []
    for function in (JARO_WINKLER, "jaro_winkler"):
        same = " AND ".join(f"{function}({c}_l, {c}_r) <=> {c}_duckdb" for c in COLUMNS)
        close = " AND ".join(
            f"coalesce(abs({function}({c}_l, {c}_r) - {c}_duckdb) <= 1e-9, "
            f"{c}_duckdb IS NULL AND {function}({c}_l, {c}_r) IS NULL)"
            for c in COLUMNS
        )
        level = " OR ".join(
            f"(coalesce({function}({c}_l, {c}_r), 0) >= {t}) != (coalesce({c}_duckdb, 0) >= {t})"
            for c in COLUMNS
            for t in THRESHOLDS
        )
        row = frame.selectExpr(
            f"sum(CAST({same} AS INT)) AS same",
            f"sum(CAST({close} AS INT)) AS close",
            f"sum(CAST({level} AS INT)) AS level",
        ).first()
        checks.append((function, row.same, row.close, row.level))
    engine.stop()
    shutil.rmtree(work)

    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{n:,} pairs x {len(COLUMNS)} columns, local[2], {args.repeats} passes, load {load}")
    print("| function | JVM CPU s per pass (median) | passes | wall s (median) |")
    print("|---|---:|---|---:|")
    for name in passes:
        runs = ", ".join(f"{v:.1f}" for v in cpu[name])
        print(
            f"| {name} | {statistics.median(cpu[name]):.2f} | {runs} | "
            f"{statistics.median(wall[name]):.2f} |"
        )
    print(
        "| function | pairs with DuckDB's values (3 columns): exactly | within 1e-9 "
        "| pairs with a column on another level |"
    )
    print("|---|---:|---:|---:|")
    for function, same, close, level in checks:
        print(f"| {function} | {same:,} of {n:,} | {close:,} | {level:,} |")


if __name__ == "__main__":
    main()
