"""The event collector over real HTTP: Segment client shapes, errors, log, loader, warehouse."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import orjson
import pytest
import uvicorn
from segment.analytics import Client
from segment.analytics.request import APIError, post
from typer.testing import CliRunner

from serving.collector import CollectorSettings, create_app, load_pending
from serving.collector.loader import OFFSETS_TABLE

KEYS = {"web": "wk-web", "backend": "wk-backend"}
SETTINGS = CollectorSettings(write_keys=KEYS, load_interval_seconds=0.05)
MB = 16 * 1024 * 1024


@contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def url(data: Path) -> Iterator[str]:
    """A collector without background loading: tests load with `load(data)`."""
    with running(create_app(settings=SETTINGS, log_dir=data / "collector")) as base:
        yield base


def load(data: Path):
    return load_pending(log_dir=data / "collector", warehouse=data / "w.duckdb", max_bytes=MB)


def query(data: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(data / "w.duckdb"))
    try:
        return con.execute(sql, parameters or []).fetchall()
    finally:
        con.close()


def events_loaded(data: Path) -> bool:
    """Whether the warehouse holds events yet; it may not exist or be half set up."""
    if not (data / "w.duckdb").exists():
        return False
    tables = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'raw_events'"
    events = "SELECT count(*) FROM raw_events"
    return query(data, tables) == [(1,)] and query(data, events) != [(0,)]


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def analytics_python_body(items: list[dict], sent_at: datetime) -> dict:
    """A `/v1/batch` body as analytics-python builds it (`request.post`)."""
    return {"batch": items, "sentAt": sent_at.isoformat(), "writeKey": KEYS["backend"]}


def item(**fields) -> dict:
    base = {
        "type": "track",
        "event": "Product Viewed",
        "userId": "u1",
        "messageId": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "integrations": {},
    }
    return {**base, **fields}


def test_every_call_of_the_real_analytics_python_client_lands_in_raw_events(url, data):
    client = Client(KEYS["backend"], host=url, gzip=True, sync_mode=True, max_retries=0)
    client.identify("u1", {"email": "ann@example.com", "plan": "pro"}, anonymous_id="cookie-1")
    client.track("u1", "Order Completed", {"revenue": 42.5})
    client.page("u1", "Docs", "Getting started", {"path": "/docs"})
    client.screen("u1", "App", "Settings")
    client.group("u1", "acme", {"name": "Acme"})
    client.alias("cookie-1", "u1")

    report = load(data)

    assert (report.events, report.loaded, report.quarantined) == (6, 6, 0)
    rows = query(
        data,
        "SELECT type, event, user_id, anonymous_id, previous_id, group_id, traits->>'email'"
        " FROM raw_events ORDER BY type",
    )
    assert rows == [
        ("alias", None, "u1", None, "cookie-1", None, None),
        ("group", None, "u1", None, None, "acme", None),
        ("identify", None, "u1", "cookie-1", None, None, "ann@example.com"),
        ("page", "Getting started", "u1", None, None, None, None),
        ("screen", "Settings", "u1", None, None, None, None),
        ("track", "Order Completed", "u1", None, None, None, None),
    ]
    lineage = "SELECT DISTINCT context->'library'->>'name', _source, _file FROM raw_events"
    assert query(data, lineage) == [("analytics-python", "backend", "collector")]


def test_analytics_python_reads_our_errors(url):
    with pytest.raises(APIError) as raised:
        post(KEYS["backend"], host=url, gzip=True, batch=[item(event=None)])
    assert raised.value.status == 400
    assert raised.value.code == "invalid_batch"
    with pytest.raises(APIError) as raised:
        post("not-a-key", host=url, batch=[item()])
    assert (raised.value.status, raised.value.code) == (401, "unauthorized")


def test_analytics_js_calls_with_text_plain_bodies_and_cors(url, data):
    sent_at = datetime.now(UTC)
    page = {
        "type": "page",
        "name": "Home",
        "properties": {"path": "/", "url": "https://shop.example/"},
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "page": {"path": "/"},
            "userAgent": "Mozilla/5.0",
        },
        "anonymousId": "ajs-anon-1",
        "userId": None,
        "messageId": "ajs-next-1",
        "timestamp": sent_at.isoformat(),
        "sentAt": sent_at.isoformat(),
        "writeKey": KEYS["web"],
        "integrations": {},
        "_metadata": {"bundled": ["Segment.io"], "unbundled": []},
    }
    headers = {"Content-Type": "text/plain", "Origin": "https://shop.example"}
    response = httpx.post(f"{url}/v1/p", content=orjson.dumps(page), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    track = {**page, "type": "track", "event": "Clicked", "messageId": "ajs-next-2"}
    batch = {"writeKey": KEYS["web"], "batch": [track], "sentAt": sent_at.isoformat()}
    response = httpx.post(f"{url}/v1/b", content=orjson.dumps(batch), headers=headers)
    assert response.json() == {"success": True, "accepted": 1, "rejected": []}

    load(data)

    rows = query(data, "SELECT message_id, type, event, _source FROM raw_events ORDER BY 1")
    assert rows == [
        ("ajs-next-1", "page", "Home", "web"),
        ("ajs-next-2", "track", "Clicked", "web"),
    ]
    assert "writeKey" not in (data / "collector").joinpath(_segment(data)).read_text()


def _segment(data: Path) -> str:
    [segment] = sorted((data / "collector").glob("*.log"))
    return segment.name


def test_timestamps_are_corrected_for_client_clock_skew(url, data):
    client_now = datetime.now(UTC) - timedelta(hours=3)  # the device's clock is 3 h slow
    body = analytics_python_body(
        [item(timestamp=(client_now - timedelta(seconds=5)).isoformat(), messageId="skewed")],
        sent_at=client_now,
    )
    response = httpx.post(f"{url}/v1/batch", json=body, headers=basic(KEYS["backend"]))
    assert response.status_code == 200

    load(data)

    [(timestamp, sent_at, received_at)] = query(
        data, "SELECT timestamp, sent_at, received_at FROM raw_events"
    )
    assert received_at - timestamp == timedelta(seconds=5)
    assert received_at - sent_at > timedelta(hours=2, minutes=59)


def test_a_batch_context_and_integrations_reach_each_message(url, data):
    body = analytics_python_body(
        [
            item(messageId="own", context={"ip": "10.0.0.9", "page": {"path": "/a"}}),
            item(messageId="bare", context=None, integrations=None),
        ],
        datetime.now(UTC),
    )
    body |= {"context": {"ip": "10.0.0.1", "locale": "nl-NL"}, "integrations": {"All": False}}
    assert httpx.post(f"{url}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success

    load(data)

    rows = query(data, "SELECT message_id, context, integrations FROM raw_events ORDER BY 1")
    assert [(m, orjson.loads(c), orjson.loads(i)) for m, c, i in rows] == [
        ("bare", {"ip": "10.0.0.1", "locale": "nl-NL"}, {"All": False}),
        ("own", {"ip": "10.0.0.9", "locale": "nl-NL", "page": {"path": "/a"}}, {"All": False}),
    ]


def test_message_ids_are_assigned_and_duplicates_stored_once(url, data):
    without_id = [item(), item()]
    for message in without_id:
        del message["messageId"]
    repeated = item(messageId="m-1")
    body = analytics_python_body([*without_id, repeated, repeated], datetime.now(UTC))
    assert httpx.post(f"{url}/v1/batch", json=body, headers=basic(KEYS["backend"])).is_success
    first = load(data)
    retry = analytics_python_body([repeated], datetime.now(UTC))  # the client resends
    assert httpx.post(f"{url}/v1/batch", json=retry, headers=basic(KEYS["backend"])).is_success
    second = load(data)

    assert (first.events, first.loaded, first.duplicates) == (4, 3, 1)
    assert (second.events, second.loaded, second.duplicates) == (1, 0, 1)
    ids = [message_id for (message_id,) in query(data, "SELECT message_id FROM raw_events")]
    assert sorted(ids).count("m-1") == 1 and len(ids) == 3
    assert all(uuid.UUID(message_id) for message_id in ids if message_id != "m-1")


def test_a_batch_keeps_its_good_items_and_quarantines_the_bad(url, data):
    items = [
        item(messageId="good-1"),
        item(messageId="no-event", event=None, traits={"email": "bob@example.com"}),
        item(messageId="good-2", type="identify", traits={"plan": "free"}),
        "not an object",
        item(messageId="huge", properties={"text": "a" * 33_000}),
    ]
    response = httpx.post(
        f"{url}/v1/batch",
        json=analytics_python_body(items, datetime.now(UTC)),
        headers=basic(KEYS["backend"]),
    )

    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 2
    assert [(r["index"], r["messageId"]) for r in result["rejected"]] == [
        (1, "no-event"),
        (3, None),
        (4, "huge"),
    ]
    assert "event" in result["rejected"][0]["reason"]
    assert "32,768-byte limit" in result["rejected"][2]["reason"]
    assert "bob@example.com" not in response.text  # reasons never echo what was sent
    report = load(data)
    assert (report.loaded, report.quarantined) == (2, 3)
    assert query(data, "SELECT message_id FROM raw_events ORDER BY 1") == [("good-1",), ("good-2",)]
    quarantined = query(
        data,
        "SELECT source, file, row_number, row->>'messageId', reason FROM quarantine ORDER BY 3",
    )
    assert quarantined == [
        ("backend", "collector", 2, "no-event", result["rejected"][0]["reason"]),
        ("backend", "collector", 4, None, result["rejected"][1]["reason"]),
        ("backend", "collector", 5, "huge", result["rejected"][2]["reason"]),
    ]


@pytest.fixture(scope="module")
def shared_url(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("collector") / "log"
    with running(create_app(settings=SETTINGS, log_dir=folder)) as base:
        yield base


def _message(**fields) -> bytes:
    return orjson.dumps(item(**fields))


WEB = basic("wk-web")
GZIP = {**WEB, "Content-Encoding": "gzip"}
OK = _message()
# (path, headers, body, status, error code, words in the reason), by case name
REFUSED = {
    "no write key": ("track", {}, OK, 401, "unauthorized", "write key missing"),
    "unknown key": ("track", basic("nope"), OK, 401, "unauthorized", "unknown write key"),
    "unknown body key": ("track", {}, _message(writeKey="x"), 401, "unauthorized", "unknown"),
    "not basic": ("track", {"Authorization": "Bearer k"}, OK, 401, "unauthorized", "Basic"),
    "invalid JSON": ("track", WEB, b'{"userId": ', 400, "invalid_json", "not valid JSON"),
    "not an object": ("track", WEB, b"[1, 2]", 400, "invalid_json", "JSON object"),
    "track without event": ("track", WEB, _message(event=None), 400, "invalid_message", "event"),
    "no user": ("identify", WEB, _message(userId=None), 400, "invalid_message", "anonymousId"),
    "properties not an object": (
        "track", WEB, _message(properties=[1]), 400, "invalid_message", "properties"
    ),
    "userId not text": ("track", WEB, _message(userId={"a": 1}), 400, "invalid_message", "userId"),
    "bad timestamp": (
        "page", WEB, _message(timestamp="yesterday"), 400, "invalid_message", "timestamp"
    ),
    "alias without previousId": ("alias", WEB, OK, 400, "invalid_message", "previousId"),
    "group without groupId": ("group", WEB, OK, 400, "invalid_message", "groupId"),
    "message over 32 KB": (
        "track", WEB, _message(properties={"x": "a" * 33_000}), 400, "invalid_message", "32,768"
    ),
    "request over 500 KB": (
        "batch", WEB, orjson.dumps({"batch": [item()] * 2500}), 400, "request_too_large", "512,000"
    ),
    "gzip over 500 KB": (
        "batch", GZIP, gzip.compress(b" " * 600_000), 400, "request_too_large", "512,000"
    ),
    "broken gzip": ("batch", GZIP, b"\x1f\x8bnope", 400, "invalid_gzip", "gzip"),
    "data after gzip": ("track", GZIP, gzip.compress(OK) + b"more", 400, "invalid_gzip", "after"),
    "batch not an array": (
        "batch", WEB, orjson.dumps({"batch": {}}), 400, "invalid_batch", "batch"
    ),
    "batch sentAt not a time": (
        "batch", WEB, orjson.dumps({"batch": [item()], "sentAt": 5}), 400, "invalid_batch", "sentAt"
    ),
    "every item bad": (
        "batch", WEB, orjson.dumps({"batch": [item(event=None)]}), 400, "invalid_batch", "every"
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "code", "words"), REFUSED.values(), ids=REFUSED.keys()
)
def test_bad_requests_are_refused_with_a_reason(
    shared_url, path, headers, body, status, code, words
):
    response = httpx.post(f"{shared_url}/v1/{path}", content=body, headers=headers)

    assert response.status_code == status
    answer = response.json()
    assert (answer["success"], answer["code"]) == (False, code)
    assert words in answer["message"]


def test_a_200_means_the_event_is_in_the_log_already(url, data):
    response = httpx.post(
        f"{url}/v1/track",
        content=gzip.compress(_message(messageId="durable-1")),
        headers={**basic(KEYS["web"]), "Content-Encoding": "gzip"},
    )

    assert response.json() == {"success": True}
    [segment] = (data / "collector").glob("*.log")
    [record] = [orjson.loads(line) for line in segment.read_bytes().splitlines()]
    assert record["source"] == "web"
    assert [event["messageId"] for event in record["events"]] == ["durable-1"]


def test_full_segments_are_rotated_and_deleted_once_loaded(data):
    small = SETTINGS.model_copy(update={"segment_bytes": 1024})
    with running(create_app(settings=small, log_dir=data / "collector")) as base:
        for _ in range(4):  # each request's record is over 1 KB: one segment each
            body = analytics_python_body([item() for _ in range(4)], datetime.now(UTC))
            assert httpx.post(f"{base}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success
        assert len(list((data / "collector").glob("*.log"))) == 4

        report = load(data)

        assert (report.loaded, report.segments_finished) == (16, 3)  # the open one stays
        [open_segment] = (data / "collector").glob("*.log")
    assert load(data).segments_finished == 1  # closed at shutdown
    assert not open_segment.exists()
    assert query(data, "SELECT count(*) FROM raw_events") == [(16,)]


def test_a_request_cut_by_a_crash_is_dropped_and_the_rest_loaded(data):
    with running(create_app(settings=SETTINGS, log_dir=data / "collector")) as base:
        body = analytics_python_body([item(), item()], datetime.now(UTC))
        assert httpx.post(f"{base}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success
    [segment] = (data / "collector").glob("*.log")
    with segment.open("ab") as file:  # what a crash in the middle of a write leaves
        file.write(b'{"source":"web","events":[{"messageId":"never-acknowledged"')

    report = load(data)

    assert (report.loaded, report.segments_finished, report.torn_bytes) == (2, 1, 59)
    assert not segment.exists()


def test_a_log_that_cannot_be_written_is_a_503_to_retry(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with running(create_app(settings=SETTINGS, log_dir=tmp_path / "file" / "log")) as base:
        response = httpx.post(f"{base}/v1/track", content=OK, headers=WEB)

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_a_replay_after_a_crash_before_the_offsets_commit_duplicates_nothing(url, data):
    items = [item(), item(), item(event=None)]
    body = analytics_python_body(items, datetime.now(UTC))
    assert httpx.post(f"{url}/v1/batch", json=body, headers=basic(KEYS["backend"])).is_success
    first = load(data)
    # What a crash right after the events committed leaves: no offsets, no quarantine rows.
    query(data, f"DELETE FROM {OFFSETS_TABLE}")
    query(data, "DELETE FROM quarantine")

    replay = load(data)

    assert (first.loaded, replay.loaded, replay.duplicates) == (2, 0, 2)
    assert query(data, "SELECT count(*), count(DISTINCT message_id) FROM raw_events") == [(2, 2)]
    assert query(data, "SELECT count(*) FROM quarantine") == [(1,)]


def test_the_loader_waits_while_another_process_holds_the_warehouse(url, data):
    body = analytics_python_body([item()], datetime.now(UTC))
    assert httpx.post(f"{url}/v1/batch", json=body, headers=basic(KEYS["backend"])).is_success
    load(data)  # creates the warehouse
    assert httpx.post(
        f"{url}/v1/batch", json=body | {"batch": [item()]}, headers=basic(KEYS["backend"])
    ).is_success
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
         " print('held', flush=True); time.sleep(60)", str(data / "w.duckdb")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = load(data)
    finally:
        holder.kill()
        holder.wait()

    assert busy.busy and busy.loaded == 0
    later = load(data)
    assert (later.busy, later.loaded) == (False, 1)


def test_background_loading_and_a_clean_shutdown_leave_nothing_in_the_log(data):
    app = create_app(settings=SETTINGS, log_dir=data / "collector", warehouse=data / "w.duckdb")
    with running(app) as base:
        for _ in range(3):
            body = analytics_python_body([item(), item()], datetime.now(UTC))
            assert httpx.post(f"{base}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success
        deadline = time.monotonic() + 20
        while not events_loaded(data):
            assert time.monotonic() < deadline, "the background loader loaded nothing"
            time.sleep(0.05)
        body = analytics_python_body([item(), item()], datetime.now(UTC))
        assert httpx.post(f"{base}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success

    assert query(data, "SELECT count(DISTINCT message_id), count(*) FROM raw_events") == [(8, 8)]
    assert list((data / "collector").glob("*.log")) == []  # the closed segment was finished
    assert query(data, f"SELECT count(*) FROM {OFFSETS_TABLE}") == [(0,)]


def test_cip_collect_flush_loads_the_log(settings, monkeypatch):
    from pipelines.cli import app

    log_dir = settings.paths.collector
    with running(create_app(settings=SETTINGS, log_dir=log_dir)) as base:
        body = analytics_python_body([item(), item()], datetime.now(UTC))
        assert httpx.post(f"{base}/v1/batch", json=body, headers=basic(KEYS["web"])).is_success
    monkeypatch.setenv("CIP_DATA_DIR", str(settings.data_dir))

    result = CliRunner().invoke(app, ["collect", "flush"])

    assert result.exit_code == 0, result.output
    assert "events loaded" in result.output
    con = duckdb.connect(str(settings.paths.warehouse))
    try:
        assert con.execute("SELECT count(*) FROM raw_events").fetchall() == [(2,)]
    finally:
        con.close()


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_hostile_messages_get_a_400_each_and_the_rest_of_the_batch_is_kept(url, data):
    """Year 0001 with a sentAt (an overflow once corrected for clock skew) and properties
    nested 260 levels deep (past what the log's JSON writer can store) are refused one by
    one: a real client would otherwise drop 48 good events with them. A message nested as
    deep as the log can store is kept."""
    now = datetime.now(UTC)
    items = [item(messageId=f"good-{i}") for i in range(48)]
    items.insert(10, item(messageId="year-1", timestamp="0001-01-01T00:00:00Z"))
    items.insert(20, item(messageId="deep", properties=_nested(260)))
    items.append(item(messageId="deep-but-storable", properties=_nested(251)))
    response = httpx.post(
        f"{url}/v1/batch",
        json=analytics_python_body(items, now),
        headers=basic(KEYS["backend"]),
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 49
    assert [(r["index"], r["messageId"]) for r in answer["rejected"]] == [
        (10, "year-1"),
        (20, "deep"),
    ]
    assert "timestamp: before 1970-01-01" in answer["rejected"][0]["reason"]
    assert "deeper than 252 levels" in answer["rejected"][1]["reason"]
    report = load(data)
    assert (report.loaded, report.quarantined) == (49, 2)
    [(reason, row)] = query(
        data, "SELECT reason, row FROM quarantine WHERE row->>'messageId' = 'deep'"
    )
    assert "deeper than 252" in reason and "cut" in row  # kept for the record, cut to fit


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"timestamp": "0001-01-01T00:00:00Z", "sentAt": "2026-01-01T00:00:00Z"}, "timestamp"),
        ({"timestamp": "1969-12-31T23:59:59Z"}, "timestamp"),
        ({"timestamp": "2026-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"}, "timestamp"),
        ({"properties": _nested(260)}, "deeper than 252 levels"),
        ({"context": _nested(253)}, "deeper than 252 levels"),
    ],
    ids=["year 1 with sentAt", "before 1970", "sentAt in year 9999", "260 deep", "253 deep"],
)
def test_a_single_hostile_message_is_a_400_not_a_500(shared_url, fields, words):
    message = {k: v for k, v in item(**fields).items() if v is not None}
    body = json.dumps(message).encode()  # orjson itself writes at most 255 levels
    response = httpx.post(f"{shared_url}/v1/track", content=body, headers=WEB)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_message"
    assert words in response.json()["message"]


def test_future_timestamps_are_clamped_to_the_time_received(url, data):
    before = datetime.now(UTC)
    items = [
        item(messageId="y9999", timestamp="9999-12-31T23:59:59Z"),
        item(messageId="y2300", timestamp="2300-06-01T00:00:00Z"),
        item(messageId="ahead", timestamp=(before + timedelta(days=2)).isoformat()),
    ]
    body = {"batch": items, "writeKey": KEYS["backend"]}  # no sentAt: times taken as sent
    response = httpx.post(f"{url}/v1/batch", json=body)
    assert response.json() == {"success": True, "accepted": 3, "rejected": []}

    load(data)

    rows = query(data, "SELECT message_id, timestamp, received_at FROM raw_events ORDER BY 1")
    assert [m for m, _, _ in rows] == ["ahead", "y2300", "y9999"]
    assert all(timestamp == received for _, timestamp, received in rows)
    assert all(timestamp <= datetime.now(UTC).replace(tzinfo=None) for _, timestamp, _ in rows)
