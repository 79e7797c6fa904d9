"""Benchmark: resolution and feature snapshots on DuckDB and on Spark, time and peak memory.

For each target size a synthetic universe is generated and loaded once (not timed, as in
`bench_resolution.py`); then, for each engine, a fresh process copies the loaded
warehouse and runs `resolution.resolve` (training the Splink model on DuckDB, then every
step to `profiles`; on Spark the identity graph's components and Splink's scoring run
there) and `features.build_snapshots` at the last `--dates` as-of dates of the schedule.
It reports wall and CPU seconds per stage (CPU of the process and its children: the
Spark JVM), the peak resident memory of the process tree (sampled every 0.2 s: Python
and the JVM) and of the Spark JVM (the driver) alone, whether the two engines' identity
maps are the same, and the wall and CPU seconds and peak memory of each step
(`step_timer`; CPU of Python and DuckDB apart from the JVM's). `--duckdb-memory` sets
DuckDB's `memory_limit` (per database) in the measured process. The Spark driver maps its
classes from the archive the first Spark run of the machine leaves in `~/.cache/cip`
(`warehouse.class_sharing`): that first run is slower. Run from the repository root:

    .venv/bin/python benchmarks/bench_spark.py --records 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_resolution import RECORDS_PER_PERSON, prepare  # noqa: E402
from step_timer import StepTimer, table, tree_cpu_seconds  # noqa: E402

ENGINES = ("duckdb", "spark")


class PeakMemory:
    """The largest resident memory of this process and its children, and of the Spark
    JVM (the driver: the `java` child) alone, sampled."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak = 0
        self.jvm_peak = 0
        self.samples: list[tuple[float, int]] = []  # perf_counter, tree's resident bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(every,), daemon=True)
        self._thread.start()

    def _tree(self) -> list[psutil.Process]:
        me = psutil.Process()
        return [me, *me.children(recursive=True)]

    def _sample(self, every: float) -> None:
        while not self._stop.is_set():
            total = jvm = 0
            for process in self._tree():
                with contextlib.suppress(psutil.Error):
                    rss = process.memory_info().rss
                    total += rss
                    if process.name() == "java":
                        jvm += rss
            self.peak = max(self.peak, total)
            self.jvm_peak = max(self.jvm_peak, jvm)
            self.samples.append((time.perf_counter(), total))
            time.sleep(every)

    def stop(self) -> tuple[float, float]:
        """The peaks of the tree and of the JVM, GiB."""
        self._stop.set()
        self._thread.join()
        return self.peak / 1024**3, self.jvm_peak / 1024**3


def cpu_seconds() -> float:
    """CPU seconds (user + system) of the process tree so far."""
    return sum(tree_cpu_seconds())


def cap_duckdb(limit: str) -> None:
    """Give every DuckDB database this process opens from now on `memory_limit` = `limit`
    (the warehouse, Splink's DuckDB and the other in-memory ones alike)."""
    import duckdb

    connect = duckdb.connect

    def capped(*args, config: dict | None = None, **kwargs):
        return connect(*args, config={**(config or {}), "memory_limit": limit}, **kwargs)

    duckdb.connect = capped


def progress(**figures) -> None:
    """A stage's figures on stderr as soon as they are known (long runs, interrupted ones)."""
    print(
        json.dumps({"at": time.strftime("%H:%M:%S", time.gmtime())} | figures),
        file=sys.stderr,
        flush=True,
    )


def timed_steps(spark: bool) -> StepTimer:
    """A timer on the steps of resolution and of the feature snapshots (and of their Spark
    parts, with `spark`); each stage's own row is what the steps below it leave."""
    from features import snapshots
    from resolution import (
        clusters,
        golden,
        graph,
        linkage,
        matching,
        model,
        names,
        records,
        resolver,
    )

    timer = StepTimer()
    timer.wrap(resolver, "resolve", "resolve (the rest)")
    timer.wrap(records, "collect_records", "normalize records")
    timer.wrap(graph, "build_identifiers", "identifier guard")
    timer.wrap(graph, "deterministic_components")
    timer.wrap(matching, "build_candidates", "Splink candidates")
    timer.wrap(model.MatchModel, "train", "Splink training")
    timer.wrap(model.MatchModel, "check_blocking", "Splink blocking check")
    timer.wrap(model.MatchModel, "predict", "Splink predict")
    timer.wrap(matching, "store_matches", "store pairs")
    timer.wrap(linkage, "accepted_merges")
    timer.wrap(clusters, "cluster", per_call=True)
    timer.wrap(names, "link_names")
    timer.wrap(clusters, "assign_customer_ids")
    timer.wrap(clusters, "write_identity_map")
    timer.wrap(golden, "build_profiles", "golden records")
    timer.wrap(snapshots, "build_snapshots", "features (the rest)")
    timer.wrap(snapshots, "_link", "features: link sources")
    timer.wrap(snapshots, "_export", "features: Feast files")
    if spark:
        from features import spark_snapshots
        from resolution import spark_graph
        from warehouse.spark import SparkEngine

        timer.wrap(spark_graph, "label_records", "Spark components", per_call=True)
        timer.wrap(spark_graph, "_stars", "Spark components: convergence checks")
        timer.wrap(SparkEngine, "export", "lake: DuckDB export")
        timer.wrap(SparkEngine, "register", "Spark: Splink input")
        timer.wrap(SparkEngine, "to_arrow", "Spark: Splink result")
        timer.wrap(spark_snapshots, "prepare", "Spark features: inputs")
        timer.wrap(spark_snapshots, "insert", "Spark features: aggregate and insert", per_call=True)
    return timer


def measure(
    data_dir: Path,
    engine_name: str,
    dates: int,
    driver_memory: str,
    conf: dict[str, str],
    duckdb_memory: str | None = None,
) -> dict:
    """Resolve and featurize a fresh copy of the loaded warehouse on one engine."""
    if duckdb_memory:
        cap_duckdb(duckdb_memory)
    import warehouse
    from features import FeatureSettings, default_schedule, snapshots
    from resolution import ResolutionSettings, resolver

    timer = timed_steps(engine_name == "spark")
    memory = PeakMemory()
    work = data_dir / engine_name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    shutil.copy(data_dir / "raw.duckdb", work / "warehouse.duckdb")
    engine = None
    figures: dict = {"engine": engine_name}
    start = time.perf_counter()
    if engine_name == "spark":
        from warehouse.engine import SparkSettings
        from warehouse.spark import SparkEngine

        spark = SparkSettings(master="local[2]", driver_memory=driver_memory, conf=conf)
        engine = SparkEngine(spark, location=str(work / "lake"))
        engine.session()
        figures["spark_start_s"] = round(time.perf_counter() - start, 1)
    con = warehouse.connect(work / "warehouse.duckdb")
    if engine is not None:  # what `cip load` does for Spark: the raw tables into the lake
        from warehouse.lake import sync

        cpu, began = cpu_seconds(), time.perf_counter()
        sync(con, lake=engine.lake_folder())
        figures["lake_copy_s"] = round(time.perf_counter() - began, 1)
        figures["lake_copy_cpu_s"] = round(cpu_seconds() - cpu, 1)
    cpu = cpu_seconds()
    began = time.perf_counter()
    result = resolver.resolve(
        con, settings=ResolutionSettings(), model_dir=work / "resolution", engine=engine
    )
    figures["resolve_s"] = round(time.perf_counter() - began, 1)
    figures["resolve_cpu_s"] = round(cpu_seconds() - cpu, 1)
    progress(**figures, peak_rss_gib_so_far=round(memory.peak / 1024**3, 2))
    settings = FeatureSettings()
    as_of = default_schedule(con, settings=settings)[-dates:]
    cpu, began = cpu_seconds(), time.perf_counter()
    report = snapshots.build_snapshots(
        con, as_of=as_of, feast_dir=work / "feast", settings=settings, engine=engine
    )
    figures["features_s"] = round(time.perf_counter() - began, 1)
    figures["features_cpu_s"] = round(cpu_seconds() - cpu, 1)
    figures["steps"] = timer.rows(memory.samples)
    timer.restore()
    figures["total_s"] = round(time.perf_counter() - start, 1)
    tree, jvm = memory.stop()
    figures["peak_rss_gib"] = round(tree, 2)
    if engine is not None:
        figures["jvm_peak_rss_gib"] = round(jvm, 2)
    figures["records"] = result.figures["records"]
    figures["profiles"] = result.figures["profiles"]
    figures["feature_rows"] = sum(report.rows.values())
    con.execute(
        f"COPY (SELECT source, record_key, customer_id FROM identity_map ORDER BY ALL) "
        f"TO '{work / 'identity.parquet'}' (FORMAT parquet)"
    )
    con.close()
    if engine is not None:
        engine.cleanup()
        engine.stop()
    return figures


def same_identity(data_dir: Path) -> bool:
    import duckdb

    a, b = (str(data_dir / name / "identity.parquet") for name in ENGINES)
    con = duckdb.connect()
    (differ,) = con.execute(
        f"SELECT count(*) FROM ((FROM '{a}' EXCEPT FROM '{b}') UNION ALL "
        f"(FROM '{b}' EXCEPT FROM '{a}'))"
    ).fetchone()
    return differ == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--dates", type=int, default=6, help="as-of dates of features")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument(
        "--duckdb-memory", help="DuckDB's memory_limit for every database (e.g. 6GB)"
    )
    parser.add_argument(
        "--spark-conf", nargs="*", default=[], metavar="KEY=VALUE", help="more Spark settings"
    )
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/cip-bench-spark"))
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        data_dir, engine_name = args.measure
        conf = dict(item.split("=", 1) for item in args.spark_conf)
        figures = measure(
            Path(data_dir), engine_name, args.dates, args.driver_memory, conf, args.duckdb_memory
        )
        print(json.dumps(figures))
        return
    rows = []
    for target in args.records:
        people = max(50, round(target / RECORDS_PER_PERSON))
        data_dir = args.work / f"people-{people}"
        prepare(data_dir, people)
        for engine_name in args.engines:
            child = subprocess.run(
                [sys.executable, __file__, "--measure", str(data_dir), engine_name]
                + ["--dates", str(args.dates), "--driver-memory", args.driver_memory]
                + (["--duckdb-memory", args.duckdb_memory] if args.duckdb_memory else [])
                + ["--spark-conf", *args.spark_conf],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            load = os.getloadavg()[0]
            rows.append({"target_records": target, "load_1min": load} | figures)
            (data_dir / engine_name / "figures.json").write_text(json.dumps(rows[-1]))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "steps"}), flush=True)
        if len(args.engines) == len(ENGINES):
            same = same_identity(data_dir)
            print(json.dumps({"target_records": target, "same_identity_map": same}))
    print()
    print(
        "| records | engine | start s | resolve s (CPU s) | features s (CPU s) "
        "| peak RSS GiB, tree (JVM) |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        jvm = f" ({r['jvm_peak_rss_gib']})" if "jvm_peak_rss_gib" in r else ""
        print(
            f"| {r['records']:,} | {r['engine']} | {r.get('spark_start_s', 0)} | "
            f"{r['resolve_s']} ({r['resolve_cpu_s']}) | {r['features_s']} "
            f"({r['features_cpu_s']}) | {r['peak_rss_gib']}{jvm} |"
        )
    for r in rows:
        print(f"\nSteps, {r['records']:,} records, {r['engine']} (load {r['load_1min']:.2f}):\n")
        print(table(r["steps"]))


if __name__ == "__main__":
    main()
