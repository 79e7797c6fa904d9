"""Segment spec messages as raw_events rows, in Python (collector) and SQL (JSONL files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import warehouse
from warehouse.segment import message_to_row

CONTEXT = {"ip": "203.0.113.7", "library": {"name": "analytics.js", "version": "2.11.1"}}
BASE = {
    "timestamp": "2024-03-01T12:00:00.000Z",
    "sentAt": "2024-03-01T12:00:01.000Z",
    "context": CONTEXT,
}

MESSAGES = [
    {
        **BASE,
        "type": "track",
        "messageId": "t1",
        "event": "Product Viewed",
        "anonymousId": "anon-1",
        "properties": {"sku": "SKU-1", "price": 19.5},
        "integrations": {"All": True},
    },
    {
        **BASE,
        "type": "identify",
        "messageId": "i1",
        "userId": "u-1",
        "anonymousId": "anon-1",
        "traits": {"email": "ann@example.com", "firstName": "Ann"},
    },
    {**BASE, "type": "alias", "messageId": "a1", "previousId": "anon-1", "userId": "u-1"},
    {
        **BASE,
        "type": "page",
        "messageId": "p1",
        "anonymousId": "anon-2",
        "name": "Home",
        "properties": {"path": "/"},
    },
    {**BASE, "type": "screen", "messageId": "s1", "userId": 7, "name": "Basket"},
    {
        **BASE,
        "type": "group",
        "messageId": "g1",
        "userId": "u-1",
        "groupId": "acme",
        "traits": {"name": "Acme Inc", "employees": 40},
    },
]


def test_track_maps_camel_case_to_columns_and_nested_objects_to_json() -> None:
    row = message_to_row(MESSAGES[0])
    assert set(row) == set(warehouse.SOURCES["events"].column_names)
    assert (row["message_id"], row["type"], row["event"], row["anonymous_id"]) == (
        "t1",
        "track",
        "Product Viewed",
        "anon-1",
    )
    assert row["user_id"] is None and row["received_at"] is None
    assert (row["timestamp"], row["sent_at"]) == (BASE["timestamp"], BASE["sentAt"])
    assert json.loads(row["properties"]) == {"sku": "SKU-1", "price": 19.5}
    assert json.loads(row["context"]) == CONTEXT
    assert json.loads(row["integrations"]) == {"All": True}


def test_identify_alias_page_screen_group() -> None:
    identify, alias, page, screen, group = (message_to_row(m) for m in MESSAGES[1:])
    assert (identify["user_id"], identify["anonymous_id"]) == ("u-1", "anon-1")
    assert json.loads(identify["traits"])["email"] == "ann@example.com"
    assert (alias["previous_id"], alias["user_id"], alias["event"]) == ("anon-1", "u-1", None)
    assert (page["event"], json.loads(page["properties"])) == ("Home", {"path": "/"})
    assert (screen["event"], screen["user_id"]) == ("Basket", "7")  # numbers become text
    assert (group["group_id"], json.loads(group["traits"])["employees"]) == ("acme", 40)
    # `name` stands in for `event` on page and screen calls only
    assert message_to_row({"type": "track", "name": "x"})["event"] is None


def test_message_must_be_an_object() -> None:
    with pytest.raises(TypeError, match="JSON object, got list"):
        message_to_row([1, 2])  # type: ignore[arg-type]


def test_file_connector_and_collector_path_fill_raw_events_identically(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps({**m, "writeKey": "k"}) for m in MESSAGES) + "\n")
    from_file = warehouse.connect(tmp_path / "a.duckdb")
    report = warehouse.load_file(con=from_file, path=path)
    assert (report.rows_loaded, report.ignored_columns) == (len(MESSAGES), ["writeKey"])
    from_rows = warehouse.connect(tmp_path / "b.duckdb")
    batch = [message_to_row(m) for m in MESSAGES]
    assert warehouse.append_rows(
        from_rows, source="events", rows=batch, origin="collector"
    ).rows_loaded == len(MESSAGES)
    columns = ", ".join(f'"{c}"' for c in warehouse.SOURCES["events"].column_names)
    query = f"SELECT {columns} FROM raw_events ORDER BY message_id"
    loaded = from_file.execute(query).fetchall()
    assert loaded == from_rows.execute(query).fetchall()
    assert len(loaded) == len(MESSAGES)
    for con in (from_file, from_rows):
        con.close()
