"""Benchmark and crash proof of the event collector, against a real uvicorn process.

    .venv/bin/python benchmarks/bench_collector.py throughput [--seconds 15] [--clients 16]
    .venv/bin/python benchmarks/bench_collector.py crash [--seconds 3]

`throughput`: concurrent keep-alive clients post `/v1/batch` requests of 100 events in the
shape analytics-python sends (Basic auth, `sentAt`, `context.library`, 1% resent messageIds)
on loopback for `--seconds`; reports events/s and request latency, with the background loader
on (default) or off (`--no-loader`), then how fast the loader drains what is left, and checks
the warehouse: every acknowledged messageId exactly once. It also reports the CPU time the
collector ran and the time it waited for a CPU (Linux schedstat): on a shared machine the
second says how much of the wall time belonged to other work.

`crash`: the same load, but the collector is killed with SIGKILL in the middle of it, then
restarted on the same log and warehouse while the clients go on; at the end every
acknowledged messageId must be in `raw_events` exactly once. The acknowledged ids are written
to `<data>/acked.txt` so a test can check the warehouse itself.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.collector import load_all  # noqa: E402

WRITE_KEY = "bench-write-key"
SOURCE = "bench"
LAUNCH = """
import json, sys
from pathlib import Path
from serving.collector import CollectorSettings, serve
args = json.loads(sys.argv[1])
serve(
    settings=CollectorSettings(**args["settings"]),
    log_dir=Path(args["log_dir"]),
    warehouse=Path(args["warehouse"]) if args["warehouse"] else None,
    host="127.0.0.1",
    port=args["port"],
    access_log=False,
)
"""


@dataclass
class Load:
    """Requests prepared before the clock starts, and what came back."""

    bodies: list[bytes]
    ids: list[list[str]]
    next: int = 0
    acked: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failed: int = 0


def prepare(*, requests: int, batch: int, duplicate_share: float) -> Load:
    """Bodies shaped like analytics-python's `/v1/batch` posts, with unique messageIds except
    for `duplicate_share` of them, which repeat an earlier id (a client's resend)."""
    rng = random.Random(7)
    library = {"name": "analytics-python", "version": "2.4.0"}
    bodies, ids, seen = [], [], []
    for r in range(requests):
        items, request_ids = [], []
        for i in range(batch):
            if seen and rng.random() < duplicate_share:
                message_id = rng.choice(seen)
            else:
                message_id = str(uuid.uuid4())
                seen.append(message_id)
            user = f"user-{rng.randrange(100_000)}"
            kind = "track" if i % 10 else "identify"
            item = {
                "type": kind,
                "messageId": message_id,
                "userId": user,
                "anonymousId": f"anon-{r}-{i}",
                "timestamp": "2026-11-29T10:00:00.123456+00:00",
                "context": {"library": library},
                "integrations": {},
            }
            if kind == "track":
                item["event"] = rng.choice(["Product Viewed", "Product Added", "Order Completed"])
                item["properties"] = {"sku": f"sku-{rng.randrange(500)}", "price": 19.99}
            else:
                item["traits"] = {
                    "plan": rng.choice(["free", "pro"]),
                    "email": f"{user}@example.com",
                }
            items.append(item)
            request_ids.append(message_id)
        body = {"batch": items, "sentAt": "2026-11-29T10:00:01.000000+00:00", "writeKey": WRITE_KEY}
        bodies.append(orjson.dumps(body))
        ids.append(request_ids)
    return Load(bodies, ids)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_collector(*, data: Path, port: int, loader: bool, interval: float) -> subprocess.Popen:
    settings = {"write_keys": {SOURCE: WRITE_KEY}, "load_interval_seconds": interval}
    args = {
        "settings": settings,
        "log_dir": str(data / "collector"),
        "warehouse": str(data / "warehouse.duckdb") if loader else None,
        "port": port,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, json.dumps(args)], cwd=ROOT, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the collector exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the collector did not start within 60 s")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time a process's threads have run so far, and time they waited for a CPU while
    runnable (Linux schedstat): the second shows how much other work on the machine held
    the collector back."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            on_cpu, on_queue, _ = (task / "schedstat").read_text().split()
        except (FileNotFoundError, ValueError):  # a thread that just ended
            continue
        ran, waited = ran + int(on_cpu), waited + int(on_queue)
    return ran / 1e9, waited / 1e9


def load_average() -> float:
    return os.getloadavg()[0]


def stop_collector(process: subprocess.Popen) -> None:
    """SIGTERM: uvicorn finishes in-flight requests, the loader drains, the log closes."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)


async def client(load: Load, *, port: int, stop: asyncio.Event) -> None:
    """One keep-alive connection posting the next prepared body until `stop`. A request that
    fails (the collector died) is sent again once the collector is back, as the Segment
    libraries retry: what was logged but not acknowledged then arrives twice."""
    auth = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    head = (
        f"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Basic {auth}\r\nContent-Type: application/json\r\n"
        "User-Agent: analytics-python/2.4.0\r\nContent-Length: "
    ).encode()
    reader = writer = None
    index = None
    while not stop.is_set():
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if index is None:
                if load.next == len(load.bodies):
                    return
                index, load.next = load.next, load.next + 1
            body = load.bodies[index]
            started = time.perf_counter()
            writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
            header = await reader.readuntil(b"\r\n\r\n")
            status = int(header.split(b" ", 2)[1])
            length = int(header.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            load.latencies.append(time.perf_counter() - started)
            load.acked.append(index)
            index = None
        except (OSError, asyncio.IncompleteReadError, RuntimeError, IndexError, ValueError):
            load.failed += 1
            if writer is not None:
                writer.close()
            reader = writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()


async def acknowledged(load: Load, count: int, *, timeout: float) -> bool:
    """Wait until `count` requests are acknowledged; False if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while len(load.acked) < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def run_clients(load: Load, *, port: int, clients: int, stop: asyncio.Event) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(client(load, port=port, stop=stop) for _ in range(clients)))
    return time.perf_counter() - started


async def for_seconds(load: Load, *, port: int, clients: int, seconds: float) -> float:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return await run_clients(load, port=port, clients=clients, stop=stop)


def drain(data: Path) -> tuple[int, float, float]:
    """Load what the log still holds; events loaded, seconds and CPU seconds taken."""
    started, cpu = time.perf_counter(), time.process_time()
    report = load_all(
        log_dir=data / "collector", warehouse=data / "warehouse.duckdb", max_bytes=16 << 20
    )
    if report.busy:
        raise RuntimeError("warehouse busy after the collector stopped")
    return report.events, time.perf_counter() - started, time.process_time() - cpu


def verify(data: Path, acked_ids: set[str]) -> dict[str, int]:
    """Every acknowledged messageId in `raw_events` exactly once."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        acked = pa.table({"message_id": pa.array(sorted(acked_ids), pa.string())})
        con.register("acked", acked)
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM raw_events"
        ).fetchone()
        (missing,) = con.execute(
            "SELECT count(*) FROM acked a ANTI JOIN raw_events r USING (message_id)"
        ).fetchone()
    finally:
        con.close()
    return {
        "acked_unique_ids": len(acked_ids),
        "raw_rows": rows,
        "duplicated_rows": rows - distinct,
        "acked_missing": missing,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def throughput(args: argparse.Namespace, data: Path) -> dict[str, object]:
    load = prepare(requests=int(args.seconds * 600) + 200, batch=args.batch, duplicate_share=0.01)
    port = free_port()
    process = start_collector(data=data, port=port, loader=args.loader, interval=args.interval)
    try:
        (ran, waited), client_cpu = cpu_seconds(process.pid), time.process_time()
        seconds = uvloop.run(
            for_seconds(load, port=port, clients=args.clients, seconds=args.seconds)
        )
        ran_after, waited_after = cpu_seconds(process.pid)
        server_cpu, server_wait = ran_after - ran, waited_after - waited
        client_cpu = time.process_time() - client_cpu
        load_avg = load_average()
    finally:
        stop_collector(process)
    left, drain_seconds, drain_cpu = drain(data)
    acked = {message_id for index in load.acked for message_id in load.ids[index]}
    events = len(load.acked) * args.batch
    return {
        "mode": "throughput",
        "loader_in_collector": args.loader,
        "loader_interval_seconds": args.interval,
        "clients": args.clients,
        "batch": args.batch,
        "seconds": round(seconds, 2),
        "requests_acked": len(load.acked),
        "requests_failed": load.failed,
        "events_per_second": round(events / seconds),
        "latency_p50_ms": round(percentile(load.latencies, 0.50) * 1000, 2),
        "latency_p99_ms": round(percentile(load.latencies, 0.99) * 1000, 2),
        "collector_cpu_seconds": round(server_cpu, 2),
        "collector_waited_for_cpu_seconds": round(server_wait, 2),
        "events_per_collector_cpu_second": round(events / server_cpu),
        "client_cpu_seconds": round(client_cpu, 2),
        "load_average_1min": load_avg,
        "left_for_final_drain": left,
        "drain_events_per_second": round(left / drain_seconds) if left else None,
        "drain_events_per_cpu_second": round(left / drain_cpu) if left else None,
        **verify(data, acked),
    }


def crash(args: argparse.Namespace, data: Path) -> dict[str, object]:
    load = prepare(requests=int(args.seconds * 200) + 200, batch=args.batch, duplicate_share=0.01)
    port = free_port()
    process = start_collector(data=data, port=port, loader=True, interval=0.2)

    async def scenario() -> int:
        nonlocal process
        stop = asyncio.Event()
        clients = asyncio.ensure_future(
            run_clients(load, port=port, clients=args.clients, stop=stop)
        )
        # Kill halfway through the time, or once a third of the bodies are acknowledged
        # (a fast machine would otherwise send them all before the kill).
        await acknowledged(load, len(load.bodies) // 3, timeout=args.seconds / 2)
        process.kill()  # SIGKILL: no shutdown, no final flush
        process.wait()
        killed_after = len(load.acked)
        process = await asyncio.to_thread(
            start_collector, data=data, port=port, loader=True, interval=0.2
        )
        if not await acknowledged(load, killed_after + 1, timeout=60):
            raise RuntimeError("no request was acknowledged within 60 s of the restart")
        await asyncio.sleep(args.seconds / 2)
        stop.set()
        await clients
        return killed_after

    try:
        acked_before_kill = uvloop.run(scenario())
    finally:
        stop_collector(process)
    drain(data)
    acked = {message_id for index in load.acked for message_id in load.ids[index]}
    (data / "acked.txt").write_text("\n".join(sorted(acked)) + "\n")
    return {
        "mode": "crash",
        "requests_acked": len(load.acked),
        "requests_acked_before_the_kill": acked_before_kill,
        "failed_attempts_retried": load.failed,
        **verify(data, acked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["throughput", "crash"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--no-loader", dest="loader", action="store_false")
    parser.add_argument("--interval", type=float, default=2.0, help="loader interval, s")
    parser.add_argument("--data", type=Path, help="data folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as temp:
        data = args.data or Path(temp)
        data.mkdir(parents=True, exist_ok=True)
        result = throughput(args, data) if args.mode == "throughput" else crash(args, data)
    print(json.dumps(result, indent=2))
    ok = result["acked_missing"] == 0 and result["duplicated_rows"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
