"""kill -9 of a real `cip stream` in the middle of a load: no event lost, none applied
twice, the same members as batch evaluation, no push sent twice.

Events go through the real collector (its log only) while `cip stream` runs as its own
process; once it has loaded part of them it gets SIGKILL, a second worker starts on the
same log and warehouse, and the rest of the load follows. Then: every acknowledged event
is in `raw_events` once and tied once; no customer has two open stays; the realtime
segment's members are those `cip collect flush`, `cip resolve --incremental` and
`cip segments` give for the same events; every push went out under one key per customer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient
from test_journeys_channels import Receiver
from test_stream import SEGMENT, WRITE_KEY, _copy, _event, _members, _post, _query, base  # noqa: F401

from pipelines import flows
from pipelines.config import Settings
from serving.collector import CollectorSettings, create_app

POST_SIZE = 25


def _load(settings: Settings) -> list[dict]:
    """About 1,200 events after the data's clock: cart adds by 200 known users out of the
    segment (a third of them buy a few seconds later), purchases by members (by cookie),
    cart adds by 60 new cookies, page views between them."""
    [(clock,)] = _query(
        settings,
        "SELECT max(t) FROM (SELECT max(timestamp) AS t FROM raw_events "
        "UNION ALL SELECT max(ordered_at) FROM raw_orders)",
    )
    out = f"SELECT customer_id FROM segment_membership WHERE segment = '{SEGMENT}' "
    users = _query(
        settings,
        "SELECT min(id_value) FROM customer_identifiers WHERE id_type = 'user_id' "
        f"AND customer_id NOT IN ({out} AND exited_at IS NULL) GROUP BY customer_id "
        "ORDER BY 1 LIMIT 200",
    )
    cookies = _query(
        settings,
        "SELECT min(id_value) FROM customer_identifiers WHERE id_type = 'anonymous_id' "
        f"AND customer_id IN ({out} AND exited_at IS NULL) GROUP BY customer_id ORDER BY 1",
    )
    assert len(users) == 200 and cookies, "the universe lacks the cases"
    t = iter(clock + timedelta(milliseconds=10 * i) for i in range(1, 100_000))
    events = []
    for i, (user,) in enumerate(users):
        events.append(_event(next(t), kind="page", userId=user))
        events.append(_event(next(t), kind="page", userId=user))
        events.append(_event(next(t), event="Product Added", userId=user))
        events.append(_event(next(t), kind="page", userId=user))
        events.append(_event(next(t), kind="page", userId=user))
        if i % 3 == 0:
            events.append(_event(next(t), event="Order Completed", userId=user))
    for (cookie,) in cookies:
        events.append(_event(next(t), event="Order Completed", anonymousId=cookie))
    for _ in range(60):
        cookie = f"rt-cookie-{uuid.uuid4().hex[:8]}"
        events.append(_event(next(t), kind="page", anonymousId=cookie))
        events.append(_event(next(t), event="Product Added", anonymousId=cookie))
    return events


class Worker:
    """`cip stream` as its own process, counting the events it reports loaded."""

    def __init__(self, settings: Settings, receiver: Receiver, journeys: Path) -> None:
        env = os.environ | {
            "CIP_DATA_DIR": str(settings.data_dir),
            "CIP_SERVING__STREAM__INTERVAL_SECONDS": "0.05",
            "CIP_SERVING__COLLECTOR__LOAD_BATCH_BYTES": "20000",  # many small micro-batches
            "CIP_SEGMENTS__JOURNEYS__INCLUDE_EXAMPLES": "false",
            "CIP_SEGMENTS__JOURNEYS__DEFINITION_DIRS": json.dumps([str(journeys)]),
            "CIP_SEGMENTS__JOURNEYS__CHANNELS": json.dumps(
                {"push": {"type": "push", "url": receiver.url}}
            ),
            "CIP_SEGMENTS__JOURNEYS__TICK_SECONDS": "0.5",
        }
        cip = Path(sys.executable).with_name("cip")
        self.process = subprocess.Popen(
            [cip, "stream"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.loaded, self.started, self.output = 0, threading.Event(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("stream worker:"):
                self.started.set()
            elif "events loaded" in line:
                self.loaded += int(line.split()[0].replace(",", ""))


def _member_keys(settings: Settings) -> set[str]:
    """The segment's members, each by its smallest identifier: a new cookie's customer gets
    one id from the stream (from its first event) and another from a resolution that never
    saw the stream's ties (from its cluster), so ids cannot be compared, people can."""
    tables = {t for (t,) in _query(settings, "SELECT table_name FROM information_schema.tables")}
    streamed = (
        " UNION ALL SELECT customer_id, id_type, id_value FROM stream_identifiers"
        if "stream_identifiers" in tables
        else ""
    )
    rows = _query(
        settings,
        "SELECT min(i.id_type || ':' || i.id_value) FROM segment_membership m JOIN "
        f"(SELECT customer_id, id_type, id_value FROM customer_identifiers{streamed}) i "
        "USING (customer_id) WHERE m.segment = ? AND m.exited_at IS NULL GROUP BY m.customer_id",
        [SEGMENT],
    )
    return {key for (key,) in rows}


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_kill_9_mid_load_loses_no_event_applies_none_twice_and_agrees_with_batch(
    base: Path,  # noqa: F811
    small_universe: Settings,
    tmp_path: Path,
) -> None:
    streamed = _copy(base, small_universe, tmp_path / "stream")
    batched = _copy(base, small_universe, tmp_path / "batch")
    events = _load(streamed)
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    (journeys / "ping.yaml").write_text(
        f"name: ping\ndescription: one push\ntrigger: {{segment: {SEGMENT}}}\nholdout: 0\n"
        "steps:\n  - {id: push, send: {channel: push, template: cart_push}}\n"
    )
    receiver = Receiver()
    collector = CollectorSettings(write_keys={"web": WRITE_KEY})
    app = create_app(settings=collector, log_dir=streamed.paths.collector)
    first = Worker(streamed, receiver, journeys)
    second, posted = None, []

    def post() -> None:  # the load: POST_SIZE events every 50 ms, about 500 events/s
        with TestClient(app) as client:
            for start in range(0, len(events), POST_SIZE):
                batch = {"batch": events[start : start + POST_SIZE]}
                answer = client.post("/v1/batch", json=batch, auth=(WRITE_KEY, ""))
                assert answer.status_code == 200, answer.text
                posted.append(len(batch["batch"]))
                time.sleep(0.05)

    try:
        _wait(first.started.is_set, 300, "the first worker")
        poster = threading.Thread(target=post)
        poster.start()
        _wait(lambda: first.loaded >= len(events) // 4, 300, "a quarter of the load")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
        assert first.loaded < len(events)  # killed in the middle of the load
        second = Worker(streamed, receiver, journeys)
        poster.join()
        assert sum(posted) == len(events)
        _wait(lambda: not list(streamed.paths.collector.glob("*.log")), 300, "the log drained")
        time.sleep(1.0)  # a last journeys tick
        second.process.send_signal(signal.SIGTERM)
        assert second.process.wait(60) == 0, "".join(second.output)
    finally:
        for worker in (first, second):
            if worker is not None and worker.process.poll() is None:
                worker.process.kill()
        receiver.shutdown()

    ids = [e["messageId"] for e in events]
    [(missing, twice)] = _query(
        streamed,
        "SELECT count(*) FILTER (WHERE n IS NULL), count(*) FILTER (WHERE n > 1) "
        "FROM unnest(?) AS a(message_id) LEFT JOIN (SELECT message_id, count(*) AS n "
        "FROM raw_events GROUP BY 1) USING (message_id)",
        [ids],
    )
    assert (missing, twice) == (0, 0)
    assert _query(
        streamed,
        "SELECT count(*) - count(DISTINCT record_key), count(*) FILTER (WHERE record_key IN "
        "(SELECT unnest(?))) FROM stream_records",
        [ids],
    ) == [(0, len(ids))]  # every event tied, once
    assert _query(
        streamed,
        "SELECT count(*) FROM (SELECT customer_id FROM segment_membership WHERE exited_at "
        "IS NULL GROUP BY segment, customer_id HAVING count(*) > 1)",
    ) == [(0,)]
    live = _member_keys(streamed)
    assert len(live) == len(_members(streamed))

    for start in range(0, len(events), 500):
        _post(batched, events[start : start + 500])
    flows.collect.run(batched)
    flows.resolve.run(batched, incremental=True)
    flows.segments.run(batched)
    assert _member_keys(batched) == live

    keys = [key for key, _ in receiver.requests]
    tokens = {key: body["message"]["token"] for key, body in receiver.requests}
    delivered = _query(
        streamed,
        "SELECT idempotency_key, customer_id FROM journey_sends WHERE status = 'delivered'",
    )
    assert set(keys) == {k for k, _ in delivered} and len(delivered) > 0
    assert len(set(tokens.values())) == len(tokens)  # one key per customer
    assert len(keys) - len(set(keys)) <= 200  # at most one batch caught in flight re-sent
