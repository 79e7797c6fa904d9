"""kill -9 of a real `cip journeys run` while it sends: after a restart every customer has
had their message (0 lost) and none has had two (0 twice).

The runner pushes one message to each of 600 customers through a local HTTP receiver that
records every request with its `Idempotency-Key`. The process is killed with SIGKILL
after about a quarter of the messages went, restarted on the same warehouse, and stopped
once the outbox is empty. A message caught in flight by the kill (marked `sending`,
perhaps received, not yet marked delivered) is sent again with the same key: that is
the protocol's promise (at-least-once on the wire, at most `batch_size` re-sent, each
recognisable by its key), and the receiver keeps one message per key.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
from test_journeys_channels import Receiver

import warehouse
from segments.membership import record_run

CUSTOMERS = 600
BATCH = 20


def _world(data: Path) -> list[str]:
    ids = [f"k{i:04d}" for i in range(CUSTOMERS)]
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "first_name": "Kim",
            "email": "k@example.com",
            "phone": None,
            "consent_email": True,
            "consent_push": True,
            "consent_ads": True,
        }
    )
    with warehouse.connect(data / "warehouse.duckdb") as con:
        con.register("_p", profiles)
        con.execute("CREATE TABLE profiles AS SELECT * FROM _p")
        record_run(
            con,
            run_id="r",
            evaluated_at=pd.Timestamp("2026-01-01").to_pydatetime(),
            as_of=pd.Timestamp("2026-01-01").to_pydatetime(),
            members={"cart_abandoners_3d": pd.Index(ids)},
        )
    journeys = data.parent / "journeys"
    journeys.mkdir()
    (journeys / "blast.yaml").write_text(
        "name: blast\ndescription: one push each\ntrigger: {segment: cart_abandoners_3d}\n"
        "holdout: 0\nsteps:\n  - {id: push, send: {channel: push, template: cart_push}}\n"
    )
    return ids


def _runner(data: Path, receiver: Receiver) -> subprocess.Popen:
    env = os.environ | {
        "CIP_DATA_DIR": str(data),
        "CIP_SEGMENTS__JOURNEYS__INCLUDE_EXAMPLES": "false",
        "CIP_SEGMENTS__JOURNEYS__DEFINITION_DIRS": json.dumps([str(data.parent / "journeys")]),
        "CIP_SEGMENTS__JOURNEYS__CHANNELS": json.dumps(
            {"push": {"type": "push", "url": receiver.url}}
        ),
        "CIP_SEGMENTS__JOURNEYS__TICK_SECONDS": "0.2",
        "CIP_SEGMENTS__JOURNEYS__BATCH_SIZE": str(BATCH),
    }
    cip = Path(sys.executable).with_name("cip")
    return subprocess.Popen(
        [cip, "journeys", "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _wait(condition, seconds: float, *, every: float = 0.02) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def test_kill_9_mid_send_loses_no_message_and_sends_none_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ids = _world(data)
    receiver = Receiver(delay=0.005)
    try:
        first = _runner(data, receiver)
        _wait(lambda: len(receiver.requests) >= CUSTOMERS // 4, 120)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        at_kill = len(receiver.requests)
        assert at_kill < CUSTOMERS  # killed mid-way

        second = _runner(data, receiver)

        def drained() -> bool:
            try:
                with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
                    return (
                        con.execute(
                            "SELECT count(*) FROM journey_sends WHERE status = 'delivered'"
                        ).fetchone()[0]
                        == CUSTOMERS
                    )
            except duckdb.IOException:  # the runner holds the file during a tick
                return False

        _wait(drained, 120, every=0.5)
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, second.stderr.read().decode()
    finally:
        receiver.shutdown()

    keys = [key for key, _ in receiver.requests]
    by_key = {key: body["message"]["token"] for key, body in receiver.requests}
    customers = list(by_key.values())
    assert sorted(set(customers)) == ids  # 0 lost
    assert len(customers) == len(set(customers)) == CUSTOMERS  # 0 twice: one key each
    resent = len(keys) - len(set(keys))
    assert resent <= BATCH  # only what was in flight at the kill went again, same key
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT count(*), count(DISTINCT customer_id) FROM journey_sends"
        ).fetchone() == (CUSTOMERS, CUSTOMERS)
        assert con.execute(
            "SELECT count(*) FROM journey_enrollments WHERE status = 'done'"
        ).fetchone() == (CUSTOMERS,)
