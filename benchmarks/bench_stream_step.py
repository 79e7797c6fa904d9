"""CPU of the stream worker's step, per phase, in one process (no other process competing).

    .venv/bin/python benchmarks/bench_stream_step.py --data data [--steps 8] [--events 1000]

On a copy of a built data folder's warehouse prepared as `bench_realtime.py` prepares it
(the realtime segments refreshed, the push journey on `cart_abandoners_3d`, its push
channel pointed at a receiver on loopback): before each step, `--events` background events
(page and product views by known cookies, a fifth by new cookies; requests of 50) and one
cart add by a probe customer go through the real collector app into its log; then one
`StreamWorker.step` loads, ties, evaluates and ticks. A first step (the definitions
checked) is not counted. The table gives the median and total CPU seconds (user + system,
this process: DuckDB's threads included) per step and per phase, phases timed by wrapping
the functions that do them. Where the cost of a step grows with the warehouse rather than
with the batch, it shows here.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_realtime import JOURNEY, Receiver, prepare  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import segments.journeys  # noqa: E402
import segments.realtime  # noqa: E402
import serving.collector.loader  # noqa: E402
import warehouse.loader  # noqa: E402
import warehouse.validation  # noqa: E402
from pipelines.config import Settings  # noqa: E402
from pipelines.flows import stream  # noqa: E402
from serving.collector import CollectorSettings, create_app  # noqa: E402

WRITE_KEY = "wk-bench"
# (label, module, attribute): each call's CPU seconds go to the label; nested phases are
# also counted in the phase around them.
PHASES = (
    ("parse the log lines", serving.collector.loader, "_events"),
    ("route (validate + insert)", warehouse.loader, "route"),
    ("  checks (casts, reasons)", warehouse.validation, "_check"),
    ("    timestamp readings", warehouse.validation, "_readings"),
    ("tie", segments.realtime, "_tie"),
    ("evaluate", segments.realtime, "_evaluate"),
    ("sweep", stream, "expire_stays"),
    ("journeys tick", segments.journeys, "tick"),
)


def cpu() -> float:
    return time.process_time()


def instrument(spent: dict[str, float]) -> None:
    """Wrap each phase's function so that its CPU seconds add up in `spent`."""
    for label, module, name in PHASES:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _label=label, **kwargs):
            started = cpu()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += cpu() - started

        setattr(module, name, timed)


def _event(kind: str, **fields: object) -> dict:
    return {"type": kind, "messageId": str(uuid.uuid4()), **fields}


def post(client: TestClient, *, events: int, cookies: list[str], probe: str, rng) -> None:
    """`events` background events in requests of 50, then the probe's cart add."""
    for start in range(0, events, 50):
        batch = []
        for _ in range(min(50, events - start)):
            cookie = rng.choice(cookies) if rng.random() < 0.8 else f"bench-{uuid.uuid4().hex}"
            if rng.random() < 0.5:
                batch.append(_event("page", anonymousId=cookie, name="home"))
            else:
                batch.append(_event("track", anonymousId=cookie, event="Product Viewed"))
        assert client.post("/v1/batch", json={"batch": batch}).status_code == 200
    cart = _event("track", userId=probe, event="Product Added", properties={"sku": "b1"})
    assert client.post("/v1/batch", json={"batch": [cart]}).status_code == 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a built data folder")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--events", type=int, default=1000, help="background events per step")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-stream-step-") as folder:
        work = Path(folder)
        _, probes, cookies = prepare(args.data, work, probes=args.steps + 1)
        journeys = work / "journeys"
        journeys.mkdir()
        (journeys / "bench_cart_push.yaml").write_text(JOURNEY)
        receiver = Receiver()
        os.environ.update(
            {
                "CIP_SEGMENTS__JOURNEYS__INCLUDE_EXAMPLES": "false",
                "CIP_SEGMENTS__JOURNEYS__DEFINITION_DIRS": f'["{journeys}"]',
                "CIP_SEGMENTS__JOURNEYS__CHANNELS": (
                    f'{{"push": {{"type": "push", "url": "{receiver.url}"}}}}'
                ),
            }
        )
        settings = Settings(data_dir=work / "data")
        worker = stream.StreamWorker(settings)
        collector = CollectorSettings(write_keys={"web": WRITE_KEY})
        app = create_app(settings=collector, log_dir=settings.paths.collector)
        rng = random.Random(13)
        spent: dict[str, float] = defaultdict(float)
        per_step: dict[str, list[float]] = defaultdict(list)
        instrument(spent)
        with TestClient(app) as client:
            client.auth = (WRITE_KEY, "")
            for step in range(args.steps + 1):
                post(client, events=args.events, cookies=cookies, probe=probes[step][1], rng=rng)
                spent.clear()
                started, wall = cpu(), time.perf_counter()
                while (report := worker.step()).more or report.busy:  # the whole backlog
                    if report.busy:  # the worker's pause after holding the warehouse
                        time.sleep(0.1)
                if step:  # the first one checks the definitions
                    per_step["step (all)"].append(cpu() - started)
                    per_step["step wall"].append(time.perf_counter() - wall)
                    for label, *_ in PHASES:
                        per_step[label].append(spent[label])
        worker.release()
        figures = worker.figures
    print(f"{args.steps} steps of {args.events:,} background events + 1 cart add; load average "
          f"{os.getloadavg()[0]:.2f} at the end; {os.cpu_count()} CPUs")  # fmt: skip
    print(f"worker: {figures.batches} batches, {figures.events:,} events, {figures.tied:,} tied, "
          f"{figures.entered} entered, {figures.ticks} ticks, {figures.delivered} delivered; "
          f"pushes received {len(receiver.first)}")  # fmt: skip
    print(f"{'phase (CPU s)':<28} {'median':>7} {'total':>7}")
    for label, values in per_step.items():
        print(f"{label:<28} {statistics.median(values):7.3f} {sum(values):7.2f}")


if __name__ == "__main__":
    main()
