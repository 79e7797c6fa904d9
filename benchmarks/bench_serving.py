"""Benchmark of the scoring API: a real `cip serve` driven by `wrk` on loopback.

    .venv/bin/python benchmarks/bench_serving.py [--data-dir data] [--duration 10] [--workers 2]

Needs a data folder where the pipeline has trained and scored (`make demo`) and the `wrk`
load generator (`apt-get install -y wrk`). Starts the service with access logs off on a free
port, warms it up, then measures `/score` (with reasons) at concurrency 1, 16 and 64,
`/score` paced to about 500 requests/s over 16 connections (each pauses between requests),
`/score` without reasons, and `/score_batch` of 100 customers with and without reasons.
Every request names a random scored customer. Prints requests/s, p50, p99 and errors.
Not part of `make test`.

    .venv/bin/python benchmarks/bench_serving.py --targets [--rounds 5] [--batches 200]

measures the two serving targets of issue 15 instead, with the load average beside each
figure (the machine is shared): `/score_batch` of 100 customers without reasons in
process (the service's ASGI app, no HTTP; median wall and CPU ms of `--batches` calls;
`/score` with reasons beside it), and `/score` with reasons paced to about 500
requests/s over 16 connections against the service and the no-op BentoML service of
`bentoml_floor.py`, both running, measured in turns (`--rounds` of each): medians of p99
and their ratio. Both are measured cold (the service's feature cache off: every request
reads the online store) and warm (the cache on and filled with every customer first).
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import duckdb
import httpx
import typer
from rich.table import Table

from pipelines.config import Settings, load_settings
from pipelines.console import console

PROJECT_DIR = Path(__file__).resolve().parents[1]

LUA = """
local ids = {%(ids)s}
local reasons = "%(reasons)s"
local batch = %(batch)d
local pause = %(pause)f
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local function one()
  return '{"customer_id":"' .. ids[math.random(#ids)] .. '"}'
end
request = function()
  if batch == 0 then
    local id = ids[math.random(#ids)]
    return wrk.format(nil, "/score", nil,
      '{"customer_id":"' .. id .. '","reasons":' .. reasons .. '}')
  end
  local items = {}
  for i = 1, batch do items[i] = one() end
  return wrk.format(nil, "/score_batch", nil,
    '{"customers":[' .. table.concat(items, ",") .. '],"reasons":' .. reasons .. '}')
end
if pause > 0 then
  -- random pauses around the mean, so that the connections do not march in step
  delay = function() return math.random() * 2 * pause end
end
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int
    reasons: bool
    batch: int = 0
    rate: int = 0  # requests per second to offer (each connection pauses between requests)

    @property
    def pause_ms(self) -> float:
        return self.concurrency * 1000 / self.rate if self.rate else 0.0


WARM_UP = Scenario("warm-up", 4, True)
SCENARIOS = [
    Scenario("/score with reasons", 1, True),
    Scenario("/score with reasons", 16, True),
    Scenario("/score with reasons", 64, True),
    Scenario("/score with reasons, paced to ~500/s", 16, True, rate=600),
    Scenario("/score without reasons", 16, False),
    Scenario("/score_batch of 100, no reasons", 1, False, 100),
    Scenario("/score_batch of 100, with reasons", 1, True, 100),
]


PACED = SCENARIOS[3]
CACHE_FILL = Scenario("/score_batch of 100, no reasons", 2, False, 100)


def main(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (default: settings).")] = None,
    duration: Annotated[int, typer.Option(help="Seconds per scenario.")] = 10,
    workers: Annotated[int, typer.Option(help="BentoML worker processes.")] = 2,
    targets: Annotated[
        bool, typer.Option(help="Measure issue 15's two targets only (see the docstring).")
    ] = False,
    rounds: Annotated[int, typer.Option(help="With --targets: paced runs of each.")] = 5,
    batches: Annotated[int, typer.Option(help="With --targets: in-process calls of each.")] = 200,
) -> None:
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk not found: apt-get install -y wrk")
    settings = load_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    ids = _scored_customers(settings.paths.warehouse)
    if not targets:
        with _serving(settings.data_dir, workers=workers) as (base, key):
            _wrk(base, _lua(ids, key=key, scenario=WARM_UP), WARM_UP.concurrency, 3)
            rows = measure(base, SCENARIOS, lambda s: _lua(ids, key=key, scenario=s), duration)
        console.print(table("scenario", rows))
        console.print(f"{len(ids):,} scored customers, {workers} worker(s), {duration} s each")
        return
    console.print(in_process(settings, ids, batches=batches))
    for cache in (False, True):
        rows_cached = settings.serving.feature_cache_rows if cache else 0
        with _serving(settings.data_dir, workers=workers, cache_rows=rows_cached) as (base, key):
            _wrk(base, _lua(ids, key=key, scenario=WARM_UP), WARM_UP.concurrency, 3)
            if cache:  # every customer asked for, several times over: both workers' caches fill
                _wrk(base, _lua(ids, key=key, scenario=CACHE_FILL), CACHE_FILL.concurrency, 10)
            lua = _lua(ids, key=key, scenario=PACED)
            title = "warm (feature cache filled)" if cache else "cold (no feature cache)"
            console.print(against_floor(base, lua, rounds=rounds, duration=duration, title=title))


def in_process(settings: Settings, ids: list[str], *, batches: int) -> Table:
    """Through the service's ASGI app in this process (no HTTP), `batches` calls each of
    `/score_batch` of 100 random customers without reasons and of `/score` of one with
    reasons: median and p90 wall ms, median CPU ms (this process: the client's share
    too), load average. Cold: no feature cache, every call reads the online store; warm:
    the cache filled with every customer first. LightGBM gets one OpenMP thread, as in
    `cip serve`'s workers."""
    os.environ["OMP_NUM_THREADS"] = "1"  # before LightGBM loads
    from pydantic import SecretStr
    from starlette.testclient import TestClient

    from pipelines.services import service_config
    from serving.service import build_service

    out = Table("in process", "calls", "p50 ms", "p90 ms", "CPU p50 ms", "load average")
    auth = {"Authorization": "Bearer bench"}
    calls = {
        "/score_batch of 100, no reasons": lambda rng: (
            "/score_batch",
            {"customers": [{"customer_id": c} for c in rng.sample(ids, 100)], "reasons": False},
        ),
        "/score with reasons": lambda rng: (
            "/score",
            {"customer_id": rng.choice(ids), "reasons": True},
        ),
    }
    for cache in (False, True):
        serving = settings.serving.model_copy(
            update={
                "api_key": SecretStr("bench"),
                "reload_interval_seconds": 0,
                "feature_cache_rows": settings.serving.feature_cache_rows if cache else 0,
            }
        )
        config = service_config(settings.model_copy(update={"serving": serving}))
        with TestClient(build_service(config=config).to_asgi()) as client:
            for i in range(0, len(ids) if cache else 0, 100):  # fill the cache
                body = {"customers": [{"customer_id": c} for c in ids[i : i + 100]]}
                client.post("/score_batch", json=body, headers=auth)
            for name, call in calls.items():
                rng = random.Random(11)
                wall: list[float] = []
                cpu: list[float] = []
                for i in range(batches + 10):  # the first 10 warm up
                    path, body = call(rng)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    answer = client.post(path, json=body, headers=auth)
                    if i >= 10:
                        wall.append((time.perf_counter() - start) * 1000)
                        cpu.append((time.process_time() - start_cpu) * 1000)
                    if answer.status_code != 200 or answer.json().get("failed"):
                        raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text}")
                state = "warm (feature cache filled)" if cache else "cold (no feature cache)"
                p50, p90 = statistics.median(wall), statistics.quantiles(wall, n=10)[-1]
                load, cpu50 = os.getloadavg()[0], statistics.median(cpu)
                out.add_row(f"{name}, {state}", str(batches), f"{p50:.1f}", f"{p90:.1f}",
                            f"{cpu50:.1f}", f"{load:.1f}")  # fmt: skip
    return out


def against_floor(base: str, lua: str, *, rounds: int, duration: int, title: str) -> Table:
    """The paced `/score` scenario against `base` and against the no-op BentoML service
    (started here, same workers), in turns: each run's p99 with the load average, then
    the medians and their ratio."""
    from bentoml_floor import LUA as FLOOR_LUA
    from bentoml_floor import start as start_floor

    port = _free_port()
    floor_base = f"http://127.0.0.1:{port}"
    runs: dict[str, list[float]] = {"service": [], "no-op": []}
    out = Table("round", "service", "req/s", "p50 ms", "p99 ms", "errors", "load average",
                title=f"{PACED.name}, {PACED.concurrency} connections, {title}")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        floor = start_floor(port=port, home=Path(scratch))
        try:
            _wait_ready(floor_base, floor)
            floor_lua = FLOOR_LUA % {"pause": PACED.pause_ms}
            _wrk(floor_base, floor_lua, PACED.concurrency, 3)
            for round_ in range(1, rounds + 1):
                turns = [("service", base, lua), ("no-op", floor_base, floor_lua)]
                for name, url, script in turns if round_ % 2 else turns[::-1]:
                    r = _wrk(url, script, PACED.concurrency, duration)
                    runs[name].append(r["p99"])
                    out.add_row(str(round_), name, f"{r['rps']:.0f}", f"{r['p50']:.1f}",
                                f"{r['p99']:.1f}", str(r["errors"]),
                                f"{os.getloadavg()[0]:.1f}")  # fmt: skip
        finally:
            os.killpg(floor.pid, signal.SIGINT)
            floor.wait(timeout=60)
    service, noop = (statistics.median(runs[k]) for k in ("service", "no-op"))
    out.add_row("median", "service / no-op", "", "", f"{service:.1f} / {noop:.1f}", "",
                f"ratio {service / noop:.2f}")  # fmt: skip
    return out


def measure(
    base: str, scenarios: list[Scenario], lua: Callable[[Scenario], str], duration: int
) -> list[tuple[Scenario, dict[str, float]]]:
    """Run `wrk` with each scenario's Lua script for `duration` seconds against `base`."""
    rows = []
    for scenario in scenarios:
        with console.status(f"{scenario.name} at concurrency {scenario.concurrency}"):
            rows.append((scenario, _wrk(base, lua(scenario), scenario.concurrency, duration)))
    return rows


def table(title: str, rows: list[tuple[Scenario, dict[str, float]]]) -> Table:
    """The figures of `measure` as a table, one row per scenario."""
    out = Table(title, "concurrency", "req/s", "p50 ms", "p99 ms", "errors")
    for scenario, r in rows:
        out.add_row(scenario.name, str(scenario.concurrency), f"{r['rps']:.0f}",
                    f"{r['p50']:.1f}", f"{r['p99']:.1f}", str(r["errors"]))  # fmt: skip
    return out


def _scored_customers(warehouse: Path, limit: int = 5000) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT customer_id FROM current_scores").fetchall()]
    finally:
        con.close()
    if not ids:
        raise typer.BadParameter(f"no scores in {warehouse}: run `cip run` (make demo) first")
    random.Random(7).shuffle(ids)
    return ids[:limit]


def _lua(ids: list[str], *, key: str, scenario: Scenario) -> str:
    return LUA % {
        "ids": ",".join(f'"{i}"' for i in ids),
        "reasons": "true" if scenario.reasons else "false",
        "batch": scenario.batch,
        "pause": scenario.pause_ms,
        "key": key,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serving(
    data_dir: Path, *, workers: int, cache_rows: int | None = None
) -> Iterator[tuple[str, str]]:
    """A `cip serve` on a free port, ready (its base URL and API key), stopped on exit;
    `cache_rows`: its `feature_cache_rows` (default: the settings')."""
    key = secrets.token_urlsafe(16)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(data_dir.resolve()),
        "CIP_SERVING__API_KEY": key,
        "CIP_SERVING__ACCESS_LOG": "false",
        "CIP_SERVING__RELOAD_INTERVAL_SECONDS": "0",
    }
    if cache_rows is not None:
        env["CIP_SERVING__FEATURE_CACHE_ROWS"] = str(cache_rows)
    cip = Path(sys.executable).with_name("cip")
    server = subprocess.Popen(
        [str(cip), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_ready(base, server)
        yield base, key
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)


def _wait_ready(base: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    with console.status("starting cip serve"):
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"cip serve exited with {server.returncode}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"cip serve not ready after {timeout} s")


def _wrk(base: str, lua: str, concurrency: int, seconds: int) -> dict[str, float]:
    """One `wrk` run of the Lua script `lua`: requests/s, p50 and p99 ms, errors."""
    threads = min(concurrency, 2)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua)
        script.flush()
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
            + ["-s", script.name, "--timeout", "10s", base],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
        "errors": errors,
    }


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


if __name__ == "__main__":
    typer.run(main)
