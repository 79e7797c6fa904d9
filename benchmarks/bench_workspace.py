"""Speed of the marketers' workspace on a built data folder (the `make demo` one by default).

    .venv/bin/python benchmarks/bench_workspace.py [--data-dir data] [--repeat 20]

Through the workspace's ASGI app (Starlette's test client, signed in as a temporary editor
whose accounts file lives in a temporary folder): the first preview (which builds the
in-memory evaluation tables from the warehouse), then the median and 90th percentile of
live previews of a three-condition segment (a cart add in the last 3 days, no purchase
since, churn decile 6 or more), of the segments list, and of a segment page with its first
100 members. The machine's load average is printed beside: on a shared 2-core machine
it says how much of the wall time was other people's work. The warehouse is only read.
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

THREE_CONDITIONS = {
    "name": "bench_preview",
    "combine": "all",
    "kind_0": "event", "event_0": "cart_add", "within_0": "3",
    "kind_1": "event", "event_1": "purchase", "count_1": "none", "after_1": "cart_add",
    "kind_2": "field", "field_2": "scores.churn_decile", "op_2": ">=", "value_2": "6",
}  # fmt: skip


def timed(call, *, repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = call()
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text[:500]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--segment", default="likely_to_churn")
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
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

        first = timed(preview, repeat=1)[0]
        size = re.search(r'id="preview-size">([\d,]+)<', preview().text).group(1)
        previews = timed(preview, repeat=args.repeat)
        listing = timed(lambda: client.get("/app/segments"), repeat=args.repeat)
        page = timed(lambda: client.get(f"/app/segments/{args.segment}"), repeat=args.repeat)
        warehouse = config.warehouse
    load = os.getloadavg()
    print(f"data folder: {args.data_dir} ({warehouse}); load average {load[0]:.1f} / {load[1]:.1f}")
    print(f"three-condition preview: {size} people")
    print("| what | median | p90 |\n|---|---:|---:|")
    print(f"| first preview (builds the evaluation tables) | {first * 1000:.0f} ms | |")
    for name, seconds in [
        ("live preview, three conditions", previews),
        ("segments list", listing),
        (f"segment page ({args.segment}, first 100 members)", page),
    ]:
        p90 = statistics.quantiles(seconds, n=10)[-1]
        print(f"| {name} | {statistics.median(seconds) * 1000:.0f} ms | {p90 * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
