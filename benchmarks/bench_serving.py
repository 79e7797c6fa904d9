"""Benchmark of the scoring API: a real `cip serve` driven by `wrk` on loopback.

    .venv/bin/python benchmarks/bench_serving.py [--data-dir data] [--duration 10] [--workers 2]

Needs a data folder where the pipeline has trained and scored (`make demo`) and the `wrk`
load generator (`apt-get install -y wrk`). Starts the service with access logs off on a free
port, warms it up, then measures `/score` (with reasons) at concurrency 1, 16 and 64,
`/score` paced to about 500 requests/s over 16 connections (each pauses between requests),
`/score` without reasons, and `/score_batch` of 100 customers with and without reasons.
Every request names a random scored customer. Prints requests/s, p50, p99 and errors.
Not part of `make test`.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import duckdb
import httpx
import typer
from rich.table import Table

from pipelines.config import load_settings
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


def main(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (default: settings).")] = None,
    duration: Annotated[int, typer.Option(help="Seconds per scenario.")] = 10,
    workers: Annotated[int, typer.Option(help="BentoML worker processes.")] = 2,
) -> None:
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk not found: apt-get install -y wrk")
    settings = load_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    ids = _scored_customers(settings.paths.warehouse)
    key = secrets.token_urlsafe(16)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(settings.data_dir, port=port, workers=workers, key=key)
    try:
        _wait_ready(base, server)
        _wrk(base, _lua(ids, key=key, scenario=WARM_UP), WARM_UP.concurrency, 3)
        rows = measure(base, SCENARIOS, lambda s: _lua(ids, key=key, scenario=s), duration)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=60)
    console.print(table("scenario", rows))
    console.print(f"{len(ids):,} scored customers, {workers} worker(s), {duration} s each")


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


def _start(data_dir: Path, *, port: int, workers: int, key: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(data_dir.resolve()),
        "CIP_SERVING__API_KEY": key,
        "CIP_SERVING__ACCESS_LOG": "false",
        "CIP_SERVING__RELOAD_INTERVAL_SECONDS": "0",
    }
    cip = Path(sys.executable).with_name("cip")
    return subprocess.Popen(
        [str(cip), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


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
