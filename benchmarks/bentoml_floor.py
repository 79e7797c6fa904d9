"""What BentoML itself costs on this machine: a service that answers `/score` without work.

    .venv/bin/python benchmarks/bentoml_floor.py [--duration 10]

The same `wrk` scenarios as `bench_serving.py` (concurrency 1 and 16, and 16 connections
paced to about 500 requests/s) against a no-op `/score` served by `bentoml serve` with
2 workers and access logs off. It bounds what any scoring service on BentoML can reach
here: the real one adds the Feast read, both Boosters and their reasons on top.
Not part of `make test`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import bentoml
import typer

from pipelines.console import console


@bentoml.service(workers=2, logging={"access": {"enabled": False}})
class Noop:
    @bentoml.api(route="/score")
    async def score(self, customer_id: str, reasons: bool = True) -> dict:
        return {"customer_id": customer_id, "reasons": reasons}


def start(*, port: int, home: Path) -> subprocess.Popen:
    """`bentoml serve` of the no-op service on `port` (BENTOML_HOME `home`), in its own
    process group: stop it with `os.killpg(server.pid, signal.SIGINT)`."""
    return subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "bentoml_floor:Noop", "--port", str(port)],
        cwd=Path(__file__).parent,
        env={**os.environ, "BENTOML_HOME": str(home), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


LUA = """
wrk.method = "POST"
wrk.path = "/score"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customer_id": "C0000001", "reasons": true}'
local pause = %(pause)f
if pause > 0 then
  -- random pauses around the mean, so that the connections do not march in step
  delay = function() return math.random() * 2 * pause end
end
"""


def main(duration: Annotated[int, typer.Option(help="Seconds per scenario.")] = 10) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_serving import SCENARIOS, _free_port, _wait_ready, measure, table

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        server = start(port=port, home=Path(scratch))
        try:
            _wait_ready(base, server)
            scenarios = [s for s in SCENARIOS if s.batch == 0 and s.reasons and s.concurrency < 64]
            rows = measure(base, scenarios, lambda s: LUA % {"pause": s.pause_ms}, duration)
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=60)
    console.print(table("no-op /score", rows))


if __name__ == "__main__":
    typer.run(main)
