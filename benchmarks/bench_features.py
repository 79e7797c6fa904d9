"""Benchmark of `features`: snapshot SQL, a Feast point-in-time training set, online lookups.

    .venv/bin/python benchmarks/bench_features.py [--customers 100000] [--rows 10000000]
        [--dates 6] [--entity-rows 1000000] [--lookups 1000] [--repeat 3] [--reuse]
        [--lookups-only] [--out benchmarks/out/features]

Generates a warehouse directly in DuckDB SQL (orders, web/app events, email events and
tickets spread over two years, each record linked to one of `--customers` customers through
`identity_map`, plus profiles), then times:

1. one feature snapshot (every group, the latest as-of date) over all of it;
2. the last `--dates` monthly snapshots in one build (what the training set reads);
3. a point-in-time training set of `--entity-rows` rows through Feast's DuckDB offline store,
   timestamps spread over the month after each of those snapshots;
4. full materialization into the SQLite online store;
5. `--lookups` online lookups of one customer's full `churn_v1` vector (p50, p99).

Medians over `--repeat` runs for 1 and 3, with CPU seconds and the load average (the
machine is shared). `--reuse` keeps the generated warehouse of a previous run, and
`--lookups-only` then measures only 5 on its online store. Prints each figure as it is
measured, then a markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import warehouse  # noqa: E402
from features import (  # noqa: E402
    FeatureSettings,
    OnlineFeatures,
    apply_repo,
    build_snapshots,
    default_schedule,
    materialize,
    open_store,
    training_set,
)

# Share of all generated rows per source, and the SQL of one generated row (i = row number).
MIX = {"events": 0.80, "orders": 0.15, "email_events": 0.045, "support_tickets": 0.005}
START = "TIMESTAMP '2023-07-01'"
WHEN = f"{START} + to_seconds(CAST(hash(i, 'ts') % (730 * 86400) AS BIGINT))"
LINEAGE = "'bench', 'generated', i, now()"
GENERATE = {
    "events": (
        "raw_events (message_id, type, event, timestamp, _source, _file, _row_number, _loaded_at)",
        "'e' || i",
        f"""SELECT 'e' || i, CASE WHEN i % 4 = 0 THEN 'page' ELSE 'track' END,
            ['Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed',
             'Product Viewed', 'Products Searched'][1 + i % 6], {WHEN}, {LINEAGE}""",
    ),
    "orders": (
        "raw_orders (order_id, channel, ordered_at, amount, discount, items, "
        "_source, _file, _row_number, _loaded_at)",
        "'o' || i",
        f"""SELECT 'o' || i, CASE WHEN i % 3 = 0 THEN 'store' ELSE 'online' END, {WHEN},
            10 + hash(i, 'amount') % 200, CASE WHEN i % 5 = 0 THEN 5 ELSE 0 END,
            '[{{"sku": "s", "category": "cat' || i % 12 || '", "quantity": 1, "unit_price": 10}}]',
            {LINEAGE}""",
    ),
    "email_events": (
        "raw_email_events (email_event_id, email, event_type, occurred_at, "
        "_source, _file, _row_number, _loaded_at)",
        "'m' || i",
        f"""SELECT 'm' || i, 'x', ['send', 'send', 'open', 'click', 'send', 'unsubscribe'][
            1 + CASE WHEN i % 97 = 0 THEN 5 ELSE i % 5 END], {WHEN}, {LINEAGE}""",
    ),
    "support_tickets": (
        "raw_support_tickets (ticket_id, sentiment, created_at, _source, _file, _row_number, "
        "_loaded_at)",
        "'t' || i",
        f"SELECT 't' || i, ['negative', 'neutral', 'positive'][1 + i % 3], {WHEN}, {LINEAGE}",
    ),
}


def generate(con, *, customers: int, rows: int) -> None:
    con.execute(
        "CREATE TABLE identity_map (source VARCHAR, record_key VARCHAR, customer_id VARCHAR)"
    )
    for source, (target, key, select) in GENERATE.items():
        n = int(rows * MIX[source])
        series = f"FROM range({n}) t(i)"
        con.execute(f"INSERT INTO {target} {select} {series}")
        con.execute(
            f"INSERT INTO identity_map SELECT '{source}', {key}, "
            f"'c' || hash(i, '{source}') % {customers} {series}"
        )
    con.execute(
        f"""CREATE TABLE profiles AS SELECT 'c' || i AS customer_id,
            ['Paris', 'Lyon', 'Lille'][1 + i % 3] AS city,
            DATE '1950-01-01' + CAST(i % 18000 AS INTEGER) AS date_of_birth,
            i % 2 = 0 AS consent_email, i % 3 = 0 AS consent_sms, i % 5 = 0 AS consent_ads
        FROM range({customers}) t(i)"""
    )


def timed(fn, repeat: int) -> tuple[str, object]:
    """Median wall time, with the process's CPU time (the machine is shared: load varies)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    load = os.getloadavg()[0]
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return f"{wall:.1f} s (CPU {cpu:.1f} s, load {load:.1f})", result


def lookups(store, *, customers: int, n: int) -> tuple[str, str]:
    """Wall and CPU (this thread) milliseconds of `n` lookups of random customers."""
    online = OnlineFeatures(store, service="churn_v1")
    ids = [f"c{i}" for i in np.random.default_rng(3).integers(0, customers, n)]
    online.get(ids[0])  # warm the registry cache
    walls, cpus = [], []
    for customer in ids:
        start, cpu = time.perf_counter(), time.thread_time()
        online.get(customer)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((time.thread_time() - cpu) * 1000)
    (p50, p99), (c50, c99) = np.percentile(walls, [50, 99]), np.percentile(cpus, [50, 99])
    return (
        f"online lookup, {len(online.names)} features of churn_v1, {n:,} calls",
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (CPU p50 {c50:.2f} ms, p99 {c99:.2f} ms, "
        f"load {os.getloadavg()[0]:.1f}), target p99 < 2 ms",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dates", type=int, default=6)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--lookups-only", action="store_true", help="with --reuse")
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "features")
    args = parser.parse_args()

    if not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)
    feast_dir, settings = args.out / "feast", FeatureSettings()
    con = warehouse.connect(args.out / "warehouse.duckdb")
    figures: list[tuple[str, str]] = []

    def record(what: str, value: str) -> None:
        figures.append((what, value))
        print(f"{what}: {value}", flush=True)

    if not args.reuse:
        seconds, _ = timed(lambda: generate(con, customers=args.customers, rows=args.rows), 1)
        print(f"generated in {seconds}", flush=True)
    if args.lookups_only:
        con.close()
        store = open_store(feast_dir=feast_dir, settings=settings)
        print(*lookups(store, customers=args.customers, n=args.lookups), sep=": ")
        return
    (total,) = con.execute("SELECT count(*) FROM identity_map").fetchone()

    schedule = default_schedule(con, settings=settings)
    latest, recent = schedule[-1], schedule[-1 - args.dates : -1]
    seconds, report = timed(
        lambda: build_snapshots(con, as_of=[latest], feast_dir=feast_dir, settings=settings),
        args.repeat,
    )
    record(
        f"one snapshot, all 5 groups, {total / 1e6:.1f} M records, "
        f"{report.rows['order']:,} customers with orders",
        f"{seconds}, target < 10 s",
    )
    seconds, report = timed(
        lambda: build_snapshots(con, as_of=recent, feast_dir=feast_dir, settings=settings), 1
    )
    record(
        f"{len(recent)} monthly snapshots in one build, {sum(report.rows.values()):,} rows",
        f"{seconds}, once",
    )

    store = open_store(feast_dir=feast_dir, settings=settings)
    apply_repo(store, feast_dir=feast_dir, settings=settings)
    rng = np.random.default_rng(7)
    customers = rng.integers(0, args.customers, args.entity_rows)
    entities = pd.DataFrame(
        {
            "customer_id": "c" + pd.Series(customers).astype(str),
            "event_timestamp": pd.to_datetime(rng.choice(recent, args.entity_rows))
            + pd.to_timedelta(rng.integers(0, 28 * 86400, args.entity_rows), unit="s"),
        }
    )
    seconds, frame = timed(lambda: training_set(store, entity_df=entities), args.repeat)
    record(
        f"point-in-time training set through Feast: {len(frame):,} rows x "
        f"{frame.shape[1] - 2} features ({frame['orders_total'].notna().mean():.0%} "
        "with order history)",
        f"{seconds}, target < 15 s",
    )

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        seconds, _ = timed(lambda: materialize(store, until=latest), 1)
    record("full materialization into SQLite, 5 views", f"{seconds}, once")

    record(*lookups(store, customers=args.customers, n=args.lookups))
    con.close()

    print(f"\nbench_features.py, {datetime.now():%Y-%m-%d}\n")
    print("| what | time |\n|---|---|")
    for what, value in figures:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
