"""Segment spec messages (camelCase) as `raw_events` rows (snake_case).

One declaration, `FIELDS`, drives both renderings of the mapping: `message_to_row` for
one message in Python (the HTTP collector) and `select_list` for a whole JSONL file in
DuckDB SQL (the file connector), so the two paths always fill the table the same way.
Nested objects (`properties`, `traits`, `context`, `integrations`) become JSON text;
other values become text (numbers and booleans in their JSON spelling), to be cast and
validated against `warehouse.schemas.EVENTS` by the loader. For `page` and `screen`
calls the page or screen `name` fills `event` when the message has no `event`.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["FIELDS", "KEYS", "message_to_row", "select_list", "text_value"]

# Segment message key -> raw_events column, in table order.
FIELDS: dict[str, str] = {
    "messageId": "message_id",
    "type": "type",
    "event": "event",
    "anonymousId": "anonymous_id",
    "userId": "user_id",
    "previousId": "previous_id",
    "groupId": "group_id",
    "timestamp": "timestamp",
    "sentAt": "sent_at",
    "receivedAt": "received_at",
    "properties": "properties",
    "traits": "traits",
    "context": "context",
    "integrations": "integrations",
}

_NAMED_TYPES = ("page", "screen")  # calls whose `name` stands in for `event`
KEYS: tuple[str, ...] = (*FIELDS, "name")  # every message key the mapping reads


def text_value(value: Any) -> str | None:
    """A value as text: strings as they are, objects, arrays, numbers and booleans in their
    JSON spelling, and what JSON spells as a string (a datetime, a UUID) as that string."""
    if value is None or isinstance(value, str):
        return value
    spelled = orjson.dumps(value).decode()
    return orjson.loads(spelled) if spelled.startswith('"') else spelled


def message_to_row(message: dict[str, Any]) -> dict[str, str | None]:
    """One Segment message as a `raw_events` row (text values, not yet validated)."""
    if not isinstance(message, dict):
        raise TypeError(f"a Segment message is a JSON object, got {type(message).__name__}")
    row = {column: text_value(message.get(key)) for key, column in FIELDS.items()}
    if row["event"] is None and message.get("type") in _NAMED_TYPES:
        row["event"] = text_value(message.get("name"))
    return row


def select_list(values: str) -> str:
    """SQL select items for `raw_events` columns from `values`, the list of message values.

    `values` is `json_extract_string(line, paths)` over the keys `KEYS`, in that order: one
    JSON parse per line gives every value, as text in the same spelling as `message_to_row`.
    """
    position = {key: f"{values}[{i}]" for i, key in enumerate(KEYS, 1)}
    named = ", ".join(f"'{t}'" for t in _NAMED_TYPES)
    items = []
    for key, column in FIELDS.items():
        expr = position[key]
        if column == "event":
            fallback = f"CASE WHEN {position['type']} IN ({named}) THEN {position['name']} END"
            expr = f"coalesce({expr}, {fallback})"
        items.append(f'{expr} AS "{column}"')
    return ", ".join(items)
