"""Benchmark of the real-time path: event acknowledged -> segment entry -> first send.

    .venv/bin/python benchmarks/bench_realtime.py --data data [--seconds 60] [--rate 1000]

On a copy of a built data folder's warehouse (`make demo`, or `cip run`: resolved at
least), after a batch refresh of the realtime segments: a real collector process (its own loader
off), a real `cip stream` process, and a push receiver on loopback. A background load of
`--rate` events/s (page views and product views by known cookies, a fifth of them by new
cookies, in `/v1/batch` requests of 50) runs for `--seconds`; meanwhile `--probes`
customers (known by a user id, consenting to push, not in `cart_abandoners_3d`) each add
something to the cart. A journey triggered by that segment sends a push at once.

Each probe is stamped when the collector acknowledges it (the HTTP answer), when it entered
the segment (`segment_membership.entered_at`, written by the worker) and when its push
reached the receiver; the table gives p50/p95/max of each leg (target: ack -> first send
p95 < 5 s), the background rate achieved, and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_collector import (  # noqa: E402
    SOURCE,
    WRITE_KEY,
    cpu_seconds,
    free_port,
    load_average,
    start_collector,
    stop_collector,
)

import warehouse  # noqa: E402
from pipelines import flows  # noqa: E402
from pipelines.config import Settings  # noqa: E402
from segments import refresh_segments  # noqa: E402

SEGMENT = "cart_abandoners_3d"
JOURNEY = f"""name: bench_cart_push
description: A push as soon as someone leaves something in the cart (benchmark).
trigger: {{segment: {SEGMENT}}}
holdout: 0
exit: [purchase]
steps:
  - id: push_now
    send: {{channel: push, template: cart_push}}
"""


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Receiver:
    """A push gateway on loopback: when each customer's first push arrived."""

    def __init__(self) -> None:
        self.first: dict[str, datetime] = {}
        received = self.first

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                at = utc_now()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                received.setdefault(body["message"]["token"], at)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def prepare(data: Path, work: Path, *, probes: int) -> tuple[Settings, list[tuple], list[str]]:
    """The warehouse copied and segmented; probe customers (id, user id) and known cookies."""
    settings = Settings(data_dir=work / "data")
    settings.paths.warehouse.parent.mkdir(parents=True)
    shutil.copy2(data / "warehouse.duckdb", settings.paths.warehouse)
    realtime = [d for d in flows.segments.definitions(settings) if d.realtime]
    with warehouse.connect(settings.paths.warehouse) as con:
        refresh_segments(con, definitions=realtime)
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        candidates = con.execute(
            "SELECT p.customer_id, min(i.id_value) FROM profiles p "
            "JOIN customer_identifiers i ON i.customer_id = p.customer_id "
            "AND i.id_type = 'user_id' WHERE p.consent_push AND p.customer_id NOT IN "
            "(SELECT customer_id FROM segment_membership WHERE segment = ? AND exited_at IS NULL) "
            "GROUP BY 1 ORDER BY 1",
            [SEGMENT],
        ).fetchall()
        cookies = [
            c
            for (c,) in con.execute(
                "SELECT id_value FROM customer_identifiers WHERE id_type = 'anonymous_id' "
                "ORDER BY hash(id_value) LIMIT 20000"
            ).fetchall()
        ]
    rng = random.Random(13)
    return settings, rng.sample(candidates, probes), cookies


def start_stream(settings: Settings, *, push_url: str, journeys: Path, interval: float):
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_SEGMENTS__JOURNEYS__INCLUDE_EXAMPLES": "false",
        "CIP_SEGMENTS__JOURNEYS__DEFINITION_DIRS": json.dumps([str(journeys)]),
        "CIP_SEGMENTS__JOURNEYS__CHANNELS": json.dumps({"push": {"type": "push", "url": push_url}}),
        "CIP_SERVING__STREAM__INTERVAL_SECONDS": str(interval),
    }
    cip = str(Path(sys.executable).with_name("cip"))
    errors = (settings.data_dir / "stream-stderr.txt").open("wb")
    process = subprocess.Popen(
        [cip, "stream"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors
    )
    process.lines = []  # what it prints, read as it goes

    def read() -> None:
        for line in process.stdout:
            process.lines.append(line.decode())

    threading.Thread(target=read, daemon=True).start()
    return process


def wait_ready(stream: subprocess.Popen, port: int) -> float:
    """Post one event and wait until the worker has loaded it (its imports and the check of
    the definitions done: under load that takes tens of seconds); the seconds it took."""
    started = time.monotonic()
    event = _event("page", anonymousId="bench-warm-up", name="home")
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v1/batch", json={"batch": [event]}, auth=(WRITE_KEY, "")
    )
    assert answer.status_code == 200, answer.text
    while not any("events loaded" in line for line in stream.lines):
        assert stream.poll() is None and time.monotonic() - started < 600, "cip stream not ready"
        time.sleep(0.1)
    return time.monotonic() - started


def _event(kind: str, **fields: object) -> dict:
    return {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        **fields,
    }


async def background(
    client: httpx.AsyncClient, url: str, *, cookies: list[str], rate: float, until: float
) -> int:
    """`rate` events/s in batches of 50 until `until`; how many were acknowledged."""
    rng, sent, batch = random.Random(5), 0, 50
    start = time.monotonic()
    while time.monotonic() < until:
        items = []
        for _ in range(batch):
            cookie = rng.choice(cookies) if rng.random() < 0.8 else f"bench-{uuid.uuid4().hex}"
            if rng.random() < 0.5:
                items.append(_event("page", anonymousId=cookie, name="home"))
            else:
                items.append(_event("track", anonymousId=cookie, event="Product Viewed"))
        answer = await client.post(url, json={"batch": items}, auth=(WRITE_KEY, ""))
        sent += batch if answer.status_code == 200 else 0
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
    return sent


async def probe(
    client: httpx.AsyncClient, url: str, *, probes: list[tuple], every: float
) -> dict[str, datetime]:
    """One cart add per probe customer every `every` s; when each was acknowledged."""
    acked = {}
    for customer, user_id in probes:
        event = _event("track", userId=user_id, event="Product Added", properties={"sku": "b1"})
        answer = await client.post(url, json={"batch": [event]}, auth=(WRITE_KEY, ""))
        if answer.status_code == 200:
            acked[customer] = utc_now()
        await asyncio.sleep(every)
    return acked


async def drive(port: int, args: argparse.Namespace, probes: list[tuple], cookies: list[str]):
    url = f"http://127.0.0.1:{port}/v1/batch"
    until = time.monotonic() + args.seconds
    async with httpx.AsyncClient(timeout=30) as loader, httpx.AsyncClient(timeout=30) as prober:
        await asyncio.sleep(2)  # the background load first
        return await asyncio.gather(
            background(loader, url, cookies=cookies, rate=args.rate, until=until),
            probe(prober, url, probes=probes, every=(args.seconds - 4) / len(probes)),
        )


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return f"{at(0.5):6.2f} {at(0.95):6.2f} {ordered[-1]:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a built data folder")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="background events/s")
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.2, help="stream worker, s")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as folder:
        work = Path(folder)
        settings, probes, cookies = prepare(args.data, work, probes=args.probes)
        journeys = work / "journeys"
        journeys.mkdir()
        (journeys / "bench_cart_push.yaml").write_text(JOURNEY)
        receiver = Receiver()
        port = free_port()
        collector = start_collector(data=settings.data_dir, port=port, loader=False, interval=1)
        stream = start_stream(
            settings, push_url=receiver.url, journeys=journeys, interval=args.interval
        )
        try:
            ready = wait_ready(stream, port)
            cpu_ready = cpu_seconds(stream.pid)
            load_before = load_average()
            started = time.monotonic()
            sent, acked = asyncio.run(drive(port, args, probes, cookies))
            elapsed = time.monotonic() - started - 2
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(acked) <= set(receiver.first):
                time.sleep(0.2)
            load_after = load_average()
            cpu = {
                "cip stream": [
                    a - b for a, b in zip(cpu_seconds(stream.pid), cpu_ready, strict=True)
                ],
                "collector": cpu_seconds(collector.pid),
            }
        finally:
            stop_collector(collector)
            stream.send_signal(signal.SIGTERM)
            stream.wait(timeout=120)
        output = "".join(stream.lines)
        errors = (settings.data_dir / "stream-stderr.txt").read_text()
        with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
            entered = dict(
                con.execute(
                    "SELECT customer_id, min(entered_at) FROM segment_membership "
                    "WHERE segment = ? AND customer_id IN (SELECT unnest(?)) GROUP BY 1",
                    [SEGMENT, list(acked)],
                ).fetchall()
            )
            loaded = con.execute("SELECT count(*) FROM raw_events WHERE _file = 'collector'")
            loaded = loaded.fetchone()[0]
        legs: dict[str, list[float]] = {"ack -> entry": [], "entry -> send": [], "ack -> send": []}
        for customer, ack in acked.items():
            if customer in entered:
                legs["ack -> entry"].append((entered[customer] - ack).total_seconds())
            if customer in receiver.first:
                legs["ack -> send"].append((receiver.first[customer] - ack).total_seconds())
                if customer in entered:
                    gap = receiver.first[customer] - entered[customer]
                    legs["entry -> send"].append(gap.total_seconds())
    print(f"source {SOURCE}; background {sent:,} events in {elapsed:.0f} s "
          f"({sent / elapsed:,.0f}/s); {loaded:,} collector events loaded")  # fmt: skip
    print(f"probes: {len(acked)} acknowledged, {len(entered)} entered, "
          f"{len(legs['ack -> send'])} pushed")  # fmt: skip
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after; {os.cpu_count()} CPUs")
    print(f"cip stream ready (first event loaded) {ready:.1f} s after its start")
    for name, (ran, waited) in cpu.items():
        print(f"{name}: {ran:.1f} s on a CPU, {waited:.1f} s runnable but waiting for one")
    print(f"{'leg':<16} {'p50 s':>6} {'p95 s':>6} {'max s':>6}")
    for name, values in legs.items():
        print(f"{name:<16} {percentiles(values)}")
    # the worker's counts and seconds per phase (since its start), as it stopped
    print(" ".join(output[output.rfind("stream worker stopped") :].split()))
    if stream.returncode:
        print(f"cip stream exited with {stream.returncode}:\n{errors[-3000:]}")


if __name__ == "__main__":
    main()
