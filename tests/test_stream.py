"""The stream worker on the resolved, scored small universe: events posted to the real
collector reach the realtime segment exactly as batch evaluation (collect, resolve,
segments) puts them there; provisional customers keep their ids through resolution; a
replay after a crash changes nothing; bad input is counted, never fatal."""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from starlette.testclient import TestClient

from pipelines import flows
from pipelines.config import Settings
from pipelines.flows.stream import StreamWorker
from pipelines.relocate import relocate
from serving.collector import CollectorSettings, create_app
from serving.collector.loader import OFFSETS_TABLE

SEGMENT = "cart_abandoners_3d"
WRITE_KEY = "wk-test"


@pytest.fixture(scope="module")
def base(built, small_universe: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built universe after a batch refresh of every segment (the baseline both ways)."""
    root = tmp_path_factory.mktemp("stream-base") / "data"
    shutil.copytree(built.data_dir, root)
    settings = small_universe.model_copy(update={"data_dir": root})
    relocate(settings)
    flows.segments.run(settings)
    return root


def _copy(base: Path, small_universe: Settings, folder: Path) -> Settings:
    root = folder / "data"
    shutil.copytree(base, root)
    settings = small_universe.model_copy(update={"data_dir": root})
    relocate(settings)
    return settings


def _query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _members(settings: Settings) -> set[str]:
    rows = _query(
        settings,
        "SELECT customer_id FROM segment_membership WHERE segment = ? AND exited_at IS NULL",
        [SEGMENT],
    )
    return {c for (c,) in rows}


def _post(settings: Settings, batch: list[dict]) -> None:
    """Send `batch` through the real collector (its log only: no loader of its own)."""
    collector = CollectorSettings(write_keys={"web": WRITE_KEY})
    app = create_app(settings=collector, log_dir=settings.paths.collector)
    with TestClient(app) as client:
        response = client.post("/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""))
    assert response.status_code == 200, response.text


def _event(at: datetime, *, event: str | None = None, kind: str = "track", **ids) -> dict:
    message = {
        "type": kind,
        "messageId": f"rt-{uuid.uuid4().hex}",
        "timestamp": at.isoformat() + "Z",
        **ids,
    }
    if event is not None:
        message["event"] = event
    if event == "Order Completed":
        message["properties"] = {"order_id": f"rt-order-{uuid.uuid4().hex[:8]}"}
    return message


def _scenario(settings: Settings) -> tuple[list[dict], dict[str, object]]:
    """Events a few seconds after the data's clock: cart adds by known customers (by user id
    and by cookie), cart adds then a purchase, purchases by current members, a new cookie,
    and a new cookie tied to a known user by an alias; what each case should do."""
    [(clock,)] = _query(
        settings,
        "SELECT max(t) FROM (SELECT max(timestamp) AS t FROM raw_events "
        "UNION ALL SELECT max(ordered_at) FROM raw_orders)",
    )
    ids = _query(
        settings,
        "SELECT u.customer_id, u.id_value, a.id_value FROM customer_identifiers u "
        "JOIN customer_identifiers a USING (customer_id) "
        "WHERE u.id_type = 'user_id' AND a.id_type = 'anonymous_id' "
        "AND customer_id NOT IN (SELECT customer_id FROM segment_membership "
        "WHERE segment = ? AND exited_at IS NULL) "
        "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY a.id_value) = 1 "
        "ORDER BY customer_id LIMIT 9",
        [SEGMENT],
    )
    member_cookies = dict(
        _query(
            settings,
            "SELECT customer_id, min(id_value) FROM customer_identifiers "
            "WHERE id_type = 'anonymous_id' AND customer_id IN (SELECT customer_id "
            "FROM segment_membership WHERE segment = ? AND exited_at IS NULL) "
            "GROUP BY 1 ORDER BY 1 LIMIT 2",
            [SEGMENT],
        )
    )
    assert len(ids) == 9 and member_cookies, "the universe lacks the cases"
    t = iter(clock + timedelta(seconds=s) for s in range(1, 100))
    events = []
    by_user, by_cookie, buyers, aliased = ids[:3], ids[3:5], ids[5:8], ids[8]
    for _, user, _ in by_user:
        events.append(_event(next(t), event="Product Added", userId=user))
    for _, _, cookie in by_cookie:
        events.append(_event(next(t), event="Product Added", anonymousId=cookie))
    for _, user, cookie in buyers:
        events.append(_event(next(t), event="Product Added", anonymousId=cookie))
        events.append(_event(next(t), event="Order Completed", userId=user))
    for cookie in member_cookies.values():
        events.append(_event(next(t), event="Order Completed", anonymousId=cookie))
    new_cookie, alias_cookie = (
        f"rt-cookie-{uuid.uuid4().hex[:8]}",
        f"rt-cookie-{uuid.uuid4().hex[:8]}",
    )
    events.append(_event(next(t), event="Product Added", anonymousId=new_cookie))
    events.append(_event(next(t), kind="page", anonymousId=alias_cookie))
    events.append(_event(next(t), kind="identify", anonymousId=alias_cookie, userId=aliased[1]))
    events.append(_event(next(t), event="Product Added", anonymousId=alias_cookie))
    expected = {
        "enter": {c for c, *_ in by_user + by_cookie} | {aliased[0]},
        "stay_out": {c for c, *_ in buyers},
        "exit": set(member_cookies),
        "new_cookie_event": events[-4]["messageId"],
    }
    return events, expected


def _drain(worker: StreamWorker) -> None:
    while True:
        report = worker.step()
        assert not report.busy
        if not report.more and not report.events:
            return


def test_stream_and_batch_agree(base: Path, small_universe: Settings, tmp_path: Path) -> None:
    streamed = _copy(base, small_universe, tmp_path / "stream")
    batched = _copy(base, small_universe, tmp_path / "batch")
    before = _members(streamed)
    events, expected = _scenario(streamed)
    _post(streamed, events)
    _post(batched, events)

    worker = StreamWorker(streamed, journeys=False)
    _drain(worker)
    live = _members(streamed)
    assert worker.figures.events == len(events) and worker.figures.untied == 0
    assert worker.figures.provisional == 2  # the new cookie, and the alias's cookie at first
    assert expected["enter"] <= live - before
    assert not (expected["stay_out"] & live)
    assert expected["exit"] <= before - live
    provisional = _query(
        streamed,
        "SELECT customer_id FROM stream_records WHERE record_key = ? AND provisional",
        [expected["new_cookie_event"]],
    )
    assert len(provisional) == 1 and provisional[0][0] in live
    # The alias's cookie was provisional until the identify named a known user: its page
    # view moved to that customer with it; only the new cookie is still provisional.
    assert (
        _query(streamed, "SELECT DISTINCT customer_id FROM stream_records WHERE provisional")
        == provisional
    )

    # The same events the batch way: loaded, resolved, every segment refreshed.
    flows.collect.run(batched)
    flows.resolve.run(batched, incremental=True)
    flows.segments.run(batched)
    assert _members(batched) == live

    # Then the batch way after the stream: nothing to change, ids kept (provisional too).
    flows.resolve.run(streamed, incremental=True)
    runs = flows.segments.run(streamed).runs
    assert _members(streamed) == live
    [run] = [r for r in runs if r.segment == SEGMENT]
    assert run.entered == run.exited == 0
    assert _query(streamed, "SELECT count(*) FROM stream_records") == [(0,)]
    assert _query(
        streamed, "SELECT count(*) FROM profiles WHERE customer_id = ?", [provisional[0][0]]
    ) == [(1,)]


def test_a_replay_after_a_crash_changes_nothing(
    base: Path, small_universe: Settings, tmp_path: Path
) -> None:
    """The worker died after a batch's evaluation committed but before its log offsets did:
    the next start reads the batch again and neither enters nor exits anyone twice."""
    settings = _copy(base, small_universe, tmp_path / "replay")
    events, _ = _scenario(settings)
    _post(settings, events)
    log = settings.paths.collector
    shutil.copytree(log, tmp_path / "log")
    first = StreamWorker(settings, journeys=False)
    _drain(first)
    assert first.figures.entered > 0 and first.figures.exited > 0
    history = _query(settings, "SELECT * FROM segment_membership ORDER BY ALL")
    # As if the worker died before the offsets committed (and so before the finished log
    # segment was deleted): the log as it was, no offsets.
    shutil.rmtree(log)
    shutil.copytree(tmp_path / "log", log)
    with duckdb.connect(str(settings.paths.warehouse)) as con:
        con.execute(f"DELETE FROM {OFFSETS_TABLE}")
    again = StreamWorker(settings, journeys=False)
    _drain(again)
    assert again.figures.events == len(events) and again.figures.tied == 0
    assert _query(settings, "SELECT * FROM segment_membership ORDER BY ALL") == history


def test_bad_input_is_counted_not_fatal(
    base: Path, small_universe: Settings, tmp_path: Path, caplog
) -> None:
    """A realtime segment that does not check is left out (logged), the others run; a
    message the collector refuses goes to quarantine; the worker carries on."""
    settings = _copy(base, small_universe, tmp_path / "bad")
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "broken.yaml").write_text(
        "name: broken\ndescription: x\nrealtime: true\n"
        "rule: {field: profile.no_such_field, op: '>', value: 1}\n"
    )
    (folder / "rt_lookalike.yaml").write_text(
        "name: rt_top\ndescription: x\nrealtime: true\n"
        "rule: {field: scores.churn_probability, op: top_percent, value: 10}\n"
    )
    segments = settings.segments.model_copy(update={"definition_dirs": [folder]})
    settings = settings.model_copy(update={"segments": segments})
    events, expected = _scenario(settings)
    events.insert(0, {"type": "track", "messageId": "rt-bad", "event": "Product Added"})
    _post(settings, events)
    worker = StreamWorker(settings, journeys=False)
    _drain(worker)
    assert worker.figures.skipped_segments == 2
    assert "unknown field 'profile.no_such_field'" in caplog.text
    assert "top_percent/bottom_percent depend on everyone" in caplog.text
    assert expected["enter"] <= _members(settings)
    assert _query(settings, "SELECT count(*) FROM quarantine WHERE file = 'collector'") == [(1,)]


def test_stays_that_time_ends_end_at_the_sweep_as_batch_ends_them(
    base: Path, small_universe: Settings, tmp_path: Path
) -> None:
    """Cart adds put three customers in the segment; four days of the world's events later
    (another customer's page view moves the data's clock) their stays have ended though they
    did nothing: the worker's sweep ends them, and batch evaluation agrees."""
    streamed = _copy(base, small_universe, tmp_path / "stream")
    batched = _copy(base, small_universe, tmp_path / "batch")
    before = _members(streamed)
    events, _ = _scenario(streamed)
    adds = events[:3]  # cart adds by three known users (not members)
    [(clock,)] = _query(streamed, "SELECT max(timestamp) FROM raw_events")
    later = [_event(clock + timedelta(days=4), kind="page", anonymousId="rt-someone-else")]

    def worker(settings: Settings, sweep_seconds: float) -> StreamWorker:
        stream = settings.serving.stream.model_copy(update={"sweep_seconds": sweep_seconds})
        serving = settings.serving.model_copy(update={"stream": stream})
        return StreamWorker(settings.model_copy(update={"serving": serving}), journeys=False)

    _post(streamed, adds)
    _drain(worker(streamed, 3600))
    entered = _members(streamed) - before
    assert len(entered) == 3
    _post(streamed, later)
    _drain(worker(streamed, 3600))  # no sweep due: the clock moved, nobody left yet
    assert entered <= _members(streamed)

    sweeper = worker(streamed, 0.01)
    time.sleep(0.05)
    _drain(sweeper)
    sweeper.release()
    live = _members(streamed)
    assert sweeper.figures.sweeps == 1 and sweeper.figures.expired >= 3
    assert not entered & live
    ended = _query(
        streamed,
        "SELECT count(*) FROM segment_membership WHERE segment = ? AND exited_at IS NOT NULL "
        "AND list_contains(?, customer_id)",
        [SEGMENT, sorted(entered)],
    )
    [(run, exited)] = _query(
        streamed,
        "SELECT run_id, exited FROM segment_runs WHERE segment = ? ORDER BY evaluated_at DESC "
        "LIMIT 1",
        [SEGMENT],
    )
    assert ended == [(3,)] and run.startswith("stream-") and exited >= 3

    _post(batched, adds + later)
    flows.collect.run(batched)
    flows.resolve.run(batched, incremental=True)
    flows.segments.run(batched)
    assert _members(batched) == live
