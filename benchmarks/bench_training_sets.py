"""Point-in-time training sets through Feast's DuckDB and Spark offline stores, compared.

    .venv/bin/python benchmarks/bench_training_sets.py --data /tmp/copy/data
        [--cutoffs 12] [--repeat 3] [--master local[2]] [--driver-memory 2g]

Reads the Feast snapshot files of a data folder after `cip features` (not changed: each
offline store gets its own copy of the files and its own registry, in a temporary folder).
The entity rows are what training asks for: every customer with an order snapshot at
each of the last `--cutoffs` as-of dates, at that date. Times `features.training_set`
(service churn_v1) through each store, medians over `--repeat` (wall; CPU of this process
and, apart, of the Spark JVM; the Spark session's start apart), checks that the two frames
are equal (values to 1e-9, the same nulls) and prints the load average.
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

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from step_timer import tree_cpu_seconds  # noqa: E402

import features  # noqa: E402
from features.definitions import GROUPS  # noqa: E402
from warehouse.engine import SparkSettings  # noqa: E402
from warehouse.spark import SparkEngine  # noqa: E402


def entity_rows(feast_dir: Path, cutoffs: int) -> pd.DataFrame:
    """Every customer with an order snapshot at each of the last `cutoffs` as-of dates."""
    orders = pd.read_parquet(
        feast_dir / f"{GROUPS['order'].table}.parquet", columns=["customer_id", "event_timestamp"]
    )
    dates = sorted(orders["event_timestamp"].unique())[-cutoffs:]
    return orders[orders["event_timestamp"].isin(dates)].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cutoffs", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args()

    settings = features.FeatureSettings()
    entities = entity_rows(args.data / "feast", args.cutoffs)
    print(f"{len(entities):,} entity rows at {args.cutoffs} as-of dates", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-training-sets-") as scratch:
        spark = SparkSettings(master=args.master, driver_memory=args.driver_memory)
        engine = SparkEngine(spark, location=str(Path(scratch) / "lake"))
        began = time.perf_counter()
        engine.session()
        print(f"spark session started in {time.perf_counter() - began:.1f} s", flush=True)
        frames = {}
        for name, store_engine in (("duckdb", None), ("spark", engine)):
            feast_dir = Path(scratch) / name
            feast_dir.mkdir()
            for group in GROUPS.values():
                shutil.copy(args.data / "feast" / f"{group.table}.parquet", feast_dir)
            store = features.open_store(feast_dir=feast_dir, settings=settings, engine=store_engine)
            features.apply_repo(store, feast_dir=feast_dir, settings=settings)
            walls, own, jvm = [], [], []
            for _ in range(args.repeat):
                start, (py0, jvm0) = time.perf_counter(), tree_cpu_seconds()
                frames[name] = features.training_set(store, entity_df=entities)
                py1, jvm1 = tree_cpu_seconds()
                walls.append(time.perf_counter() - start)
                own.append(py1 - py0)
                jvm.append(jvm1 - jvm0)
                engine.cleanup()
            print(
                f"{name}: {statistics.median(walls):.1f} s wall, CPU "
                f"{statistics.median(own):.1f} s Python + {statistics.median(jvm):.1f} s JVM "
                f"(runs: {', '.join(f'{w:.1f}' for w in walls)} s; load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        engine.stop()
    duck, spark_frame = frames["duckdb"], frames["spark"]
    pd.testing.assert_frame_equal(spark_frame, duck, check_exact=False, rtol=1e-9, atol=1e-9)
    known = duck["orders_total"].notna().mean()
    print(f"equal: {len(duck):,} rows x {duck.shape[1] - 2} features, {known:.0%} with orders")


if __name__ == "__main__":
    main()
