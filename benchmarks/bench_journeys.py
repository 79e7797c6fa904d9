"""Journey runner speed: ticks over 100,000 customers in journeys at once.

Builds a warehouse with N customers (profiles with consents, a segment every one of them
has just entered, and a purchase history of raw orders keyed through `identity_map` for a
tenth of them), then times the runner's ticks on the cart-recovery journey shipped with
the platform (push now, wait up to a day for a page view, branch, email), without
delivering (the outbox is what a tick produces; delivery is measured apart):

1. the entry tick: N customers enroll (10% held out), the exits are checked, and every
   treated one takes the push step (an outbox row each) and parks at the wait;
2. a steady tick: nobody new, every enrollment re-checked for the exits and for the
   page view it waits for (the slowest kind of wait: an event with a timeout);
3. the day-later tick: every wait times out, the branch is evaluated, the email is queued;
4. delivery of D messages to files (`FileChannel`) from the outbox, D = `--deliver`.

Prints wall and CPU seconds and the load average, since the machine is shared.

    .venv/bin/python benchmarks/bench_journeys.py [--customers 100000] [--deliver 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import warehouse
from segments.journeys import (
    CHANNELS,
    EXAMPLES_DIR,
    TEMPLATES_DIR,
    FileChannel,
    Runtime,
    deliver_due,
    load_journeys,
    load_templates,
    tick,
)
from segments.membership import record_run

T0 = datetime(2026, 7, 1, 10)


def build(path: Path, customers: int) -> None:
    rng = np.random.default_rng(7)
    ids = [f"cust{i:07d}" for i in range(customers)]
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": "Alex",
            "email": [f"{c}@example.com" for c in ids],
            "phone": None,
            "consent_email": rng.random(customers) < 0.9,
            "consent_sms": True,
            "consent_push": True,
            "consent_ads": True,
        }
    )
    buyers = rng.choice(customers, customers // 10, replace=False)
    days_ago = rng.integers(1, 300, len(buyers)).astype(float)
    days_ago[: len(buyers) // 5] = -0.125  # a fifth of them buy 3 hours after entering
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(len(buyers))],
            "channel": "online",
            "ordered_at": [T0 - timedelta(days=d) for d in days_ago],
            "amount": 50.0,
        }
    )
    identity = pd.DataFrame(
        {
            "source": "orders",
            "record_key": orders["order_id"],
            "customer_id": [ids[b] for b in buyers],
        }
    )
    with warehouse.connect(path) as con:
        con.register("_p", profiles)
        con.execute("CREATE TABLE profiles AS SELECT * FROM _p")
        con.register("_o", orders)
        con.execute(
            "INSERT INTO raw_orders BY NAME SELECT *, 'orders' AS _source, 'bench' AS _file, "
            "0 AS _row_number, now() AS _loaded_at FROM _o"
        )
        con.register("_i", identity)
        con.execute("CREATE TABLE identity_map AS SELECT * FROM _i")
        record_run(
            con,
            run_id="r",
            evaluated_at=T0,
            as_of=T0,
            members={"cart_abandoners_3d": pd.Index(ids)},
        )


def timed(label: str, action) -> tuple[str, float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return label, time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=5_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_journeys_"))
    path = folder / "warehouse.duckdb"
    build(path, args.customers)
    cart = next(j for j in load_journeys(folders=[EXAMPLES_DIR]) if j.name == "cart_recovery")
    runtime = Runtime(
        channels={c: FileChannel() for c in CHANNELS},
        templates=load_templates(folders=[TEMPLATES_DIR]),
        exports=folder / "exports",
        unsubscribe_secret="bench-secret",
        batch_size=1_000,
    )
    rows = []
    with warehouse.connect(path) as con:
        for label, now in [
            ("entry tick (all enroll, push queued)", T0),
            ("steady tick (exits and page-view wait re-checked)", T0 + timedelta(hours=1)),
            ("day-later tick (timeouts, branch, email queued)", T0 + timedelta(days=1, hours=1)),
        ]:
            row = timed(
                label,
                lambda now=now: tick(con, journeys=[cart], runtime=runtime, now=now, deliver=False),
            )
            rows.append(row)
        active = con.execute("SELECT count(*) FROM journey_enrollments").fetchone()[0]
        con.execute(f"""UPDATE journey_sends SET next_attempt_at = NULL WHERE idempotency_key
                        NOT IN (SELECT idempotency_key FROM journey_sends ORDER BY
                        idempotency_key LIMIT {args.deliver})""")
        rows.append(
            timed(
                f"deliver {args.deliver:,} messages to files",
                lambda: deliver_due(con, runtime=runtime, now=T0 + timedelta(days=2)),
            )
        )
    load = os.getloadavg()
    print(
        f"{args.customers:,} customers, {active:,} enrollments; {datetime.now():%Y-%m-%d %H:%M}; "
        f"{os.cpu_count()} cores; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
    )
    print(f"| {'step':<52} | {'wall s':>7} | {'CPU s':>6} | outcome |")
    for label, wall, cpu, result in rows:
        summary = (
            (f"queued {result.queued:,}, exited {result.exited:,}, entered {result.entered:,}")
            if hasattr(result, "queued")
            else str(result)
        )
        print(f"| {label:<52} | {wall:7.2f} | {cpu:6.2f} | {summary} |")


if __name__ == "__main__":
    main()
