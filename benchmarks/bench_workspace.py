"""Speed of the marketers' workspace on a built data folder (the `make demo` one by default).

    .venv/bin/python benchmarks/bench_workspace.py [--data-dir data] [--repeat 20]
    .venv/bin/python benchmarks/bench_workspace.py sizes [--data-dir data]

Through the workspace's ASGI app (Starlette's test client, signed in as a temporary editor
whose accounts file lives in a temporary folder): the median and 90th percentile wall time,
and the median CPU time of this process (all its threads), of live previews of a
three-condition segment (a cart add in the last 3 days, no purchase since, churn decile 6
or more), of the segments list, and of a segment page with its first 100 members. Then
what the first request after the warehouse changed pays: making the pages' copy (a
segment page on a fresh `Snapshot`) and the evaluation copy (the builder's catalog on a
fresh `Snapshot`). The machine's load average is printed beside: on a shared 2-core
machine it says how much of the wall time was other people's work. The warehouse is only
read.

`sizes`: each shipped example segment (`segments/definitions/`) evaluated on the data
folder (by the workspace's preview, i.e. the segments evaluator), beside an independent SQL
count over the warehouse's own tables where one is written (`CHECKS`), and how many members
can be e-mailed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from pipelines.config import load_settings  # noqa: E402
from pipelines.services import service_config  # noqa: E402
from serving.workspace import UserStore, create_workspace  # noqa: E402
from serving.workspace.snapshot import Snapshot  # noqa: E402

THREE_CONDITIONS = {
    "name": "bench_preview",
    "combine": "all",
    "kind_0": "event", "event_0": "cart_add", "within_0": "3",
    "kind_1": "event", "event_1": "purchase", "count_1": "none", "after_1": "cart_add",
    "kind_2": "field", "field_2": "scores.churn_decile", "op_2": ">=", "value_2": "6",
}  # fmt: skip


def timed(call, *, repeat: int, check: bool = True) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each of `repeat` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        answer = call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        if check:
            assert answer.status_code == 200, answer.text[:500]
    return wall, cpu


# Independent SQL for the shipped examples: the latest feature snapshot at or before
# the data's clock, current scores, profiles; `top p%` = at or above the value of the
# ceil(p% x N)-th of the population in that order.
_CLOCK = (
    "(SELECT greatest((SELECT max(timestamp) FROM raw_events),"
    " (SELECT max(ordered_at) FROM raw_orders)))"
)
_ORDERS = f"""(SELECT * FROM customer_order_features WHERE event_timestamp <= {_CLOCK}
    QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY event_timestamp DESC) = 1)"""


def _top(column: str, population: str, percent: int) -> str:
    return (f"(SELECT min(v) FROM (SELECT {column} AS v, row_number() OVER (ORDER BY {column} DESC)"
            f" AS r, count(*) OVER () AS n FROM {population} WHERE {column} IS NOT NULL)"
            f" WHERE r <= ceil({percent / 100} * n))")  # fmt: skip


_EMAILABLE = (
    "(SELECT s.* FROM current_scores s JOIN profiles p USING (customer_id) WHERE p.consent_email)"
)
# Events and purchases (orders, and `Order Completed` events of orders the orders table
# lacks) by customer; the cart abandoners: a cart add in the 3 days before the clock and no
# purchase after their last one; the acquisition prospects: a page or screen in the 30 days
# before the clock, ad consent, no purchase ever.
_EVENTS = """(SELECT m.customer_id, e.type, e.event, e.timestamp AS happened,
    e.properties->>'order_id' AS ord
    FROM raw_events e JOIN identity_map m ON m.source = 'events' AND m.record_key = e.message_id)"""
_PURCHASES = f"""(SELECT m.customer_id, o.ordered_at AS happened FROM raw_orders o
    JOIN identity_map m
    ON m.source = 'orders' AND m.record_key = o.order_id UNION ALL SELECT customer_id, happened
    FROM {_EVENTS} WHERE event = 'Order Completed'
    AND ord NOT IN (SELECT order_id FROM raw_orders))"""
_CART = f"""SELECT count(*) FROM (SELECT customer_id, max(happened) AS last_add FROM {_EVENTS}
    WHERE event = 'Product Added' AND happened <= {_CLOCK} GROUP BY 1
    HAVING max(happened) > {_CLOCK} - INTERVAL 3 DAY) c WHERE c.customer_id IN
    (SELECT customer_id FROM profiles) AND NOT EXISTS (SELECT 1 FROM {_PURCHASES} b
    WHERE b.customer_id = c.customer_id AND b.happened > c.last_add AND b.happened <= {_CLOCK})"""
_PROSPECTS = f"""SELECT count(*) FROM profiles p WHERE p.consent_ads AND EXISTS (SELECT 1
    FROM {_EVENTS} e WHERE e.customer_id = p.customer_id AND e.type IN ('page', 'screen')
    AND e.happened > {_CLOCK} - INTERVAL 30 DAY AND e.happened <= {_CLOCK}) AND NOT EXISTS
    (SELECT 1 FROM {_PURCHASES} b WHERE b.customer_id = p.customer_id)"""
CHECKS = {
    "cart_abandoners_3d": _CART,
    "acquisition_prospects": _PROSPECTS,
    "likely_to_churn": f"SELECT count(*) FROM {_EMAILABLE} e WHERE churn_probability >= "
    + _top("churn_probability", _EMAILABLE, 10),
    "at_risk_valuable": f"SELECT count(*) FROM {_EMAILABLE} e JOIN {_ORDERS} o USING (customer_id)"
    f" WHERE e.churn_probability >= {_top('churn_probability', _EMAILABLE, 30)}"
    f" AND o.spend_365d >= (SELECT min(v) FROM (SELECT o2.spend_365d AS v, row_number() OVER"
    f" (ORDER BY o2.spend_365d DESC) AS r, count(*) OVER () AS n FROM profiles p2 JOIN {_ORDERS}"
    f" o2 USING (customer_id) WHERE o2.spend_365d IS NOT NULL) WHERE r <= ceil(0.3 * n))",
    "loyal_high_value": f"SELECT count(*) FROM profiles p JOIN {_ORDERS} o USING (customer_id)"
    f" WHERE o.orders_365d >= 4 AND o.avg_order_value >= (SELECT min(v) FROM (SELECT"
    f" o2.avg_order_value AS v, row_number() OVER (ORDER BY o2.avg_order_value DESC) AS r,"
    f" count(*) OVER () AS n FROM profiles p2 JOIN {_ORDERS} o2 USING (customer_id)"
    f" WHERE o2.avg_order_value IS NOT NULL) WHERE r <= ceil(0.3 * n))",
}


def sizes(settings) -> None:
    import duckdb

    from segments.definition import EXAMPLES_DIR, load_definitions

    shipped = load_definitions(folders=[EXAMPLES_DIR])
    snapshot = Snapshot(warehouse=settings.paths.warehouse)
    con = duckdb.connect(str(settings.paths.warehouse), read_only=True)
    emailable = {
        cid
        for (cid,) in con.execute("SELECT customer_id FROM profiles WHERE consent_email").fetchall()
    }
    print("| segment | size | can be e-mailed | SQL check |\n|---|---:|---:|---:|")
    for definition in shipped:
        preview = snapshot.preview(definition, saved=shipped, sample=0)
        ids = snapshot.members(definition, saved=shipped)
        check = CHECKS.get(definition.name)
        check = f"{con.execute(check).fetchone()[0]:,}" if check else ""
        print(f"| {definition.name} | {preview.size:,} | {len(set(ids) & emailable):,} | {check} |")
        if definition.name == "lookalike_prospects":
            bought = con.execute(
                "SELECT count(DISTINCT customer_id) FROM identity_map WHERE source = 'orders'"
                " AND customer_id IN (SELECT unnest(?))", [list(ids)]
            ).fetchone()[0]  # fmt: skip
            print(f"|  (members with an order in the warehouse: {bought}) | | | |")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["speed", "sizes"], default="speed")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--segment", default="likely_to_churn")
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    if args.mode == "sizes":
        sizes(settings)
        return
    with tempfile.TemporaryDirectory() as scratch:
        users = Path(scratch) / "users.json"
        UserStore(path=users).add(name="bench", password="bench-password", role="editor")
        config = service_config(settings).workspace.model_copy(update={"users_file": users})
        app = create_workspace(config=config, secret=SecretStr("bench"))
        client = TestClient(Starlette(routes=[Mount("/app", app)]))
        form = client.get("/app/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        client.post(
            "/app/login", data={"csrf": token, "name": "bench", "password": "bench-password"}
        )
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/app/builder").text).group(1)

        def preview():
            return client.post("/app/builder/preview", data=THREE_CONDITIONS,
                               headers={"X-CSRF-Token": token})  # fmt: skip

        size = re.search(r'id="preview-size">([\d,]+)<', preview().text).group(1)
        previews = timed(preview, repeat=args.repeat)
        listing = timed(lambda: client.get("/app/segments"), repeat=args.repeat)
        page = timed(lambda: client.get(f"/app/segments/{args.segment}"), repeat=args.repeat)
        warehouse = config.warehouse
        changed = max(3, args.repeat // 5)
        pages_copy = timed(
            lambda: Snapshot(warehouse=warehouse).segment(args.segment, shown=100),
            repeat=changed, check=False,
        )  # fmt: skip
        evaluation_copy = timed(
            lambda: Snapshot(warehouse=warehouse).catalog(), repeat=changed, check=False
        )
    load = os.getloadavg()
    print(f"data folder: {args.data_dir} ({warehouse}); load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"three-condition preview: {size} people")
    print("| what | median wall | p90 wall | median CPU |\n|---|---:|---:|---:|")
    for name, (wall, cpu) in [
        ("live preview, three conditions", previews),
        ("segments list", listing),
        (f"segment page ({args.segment}, first 100 members)", page),
        (f"after a change: pages' copy + segment page ({changed} times)", pages_copy),
        (f"after a change: evaluation copy ({changed} times)", evaluation_copy),
    ]:
        p90 = statistics.quantiles(wall, n=10)[-1] if len(wall) >= 10 else max(wall)
        print(f"| {name} | {statistics.median(wall) * 1000:,.0f} ms | {p90 * 1000:,.0f} ms | "
              f"{statistics.median(cpu) * 1000:,.0f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
