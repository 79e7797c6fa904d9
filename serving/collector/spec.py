"""The Segment tracking spec: validate one message and normalize it for the log.

A message is what one `track`, `identify`, `page`, `screen`, `group` or `alias` call sends
(https://segment.com/docs/connections/spec/common/). Validation follows the spec's rules: a
`userId` or an `anonymousId`, an `event` on track, a `groupId` on group, a `previousId` and a
`userId` on alias, objects for `properties`, `traits`, `context` and `integrations`, ISO-8601
timestamps, and at most `max_bytes` per message. Normalization adds what the server owes every
message: a `messageId` when the client sent none, the server's `receivedAt`, the batch's shared
`context`, and a `timestamp` corrected for the client's clock skew:
`timestamp = receivedAt - (sentAt - originalTimestamp)`. Reasons never quote the values sent,
so personal data stays out of responses and logs.

Hostile or broken clients are answered per message, never with a failure of the batch:
- times: the spec's `timestamp` is when the event happened, on the server's clock, so a
  corrected time after `receivedAt` (a device clock in the future, year 9999) is clamped to
  `receivedAt`, and one before `EARLIEST` (1970, the Unix epoch: year 0001 is no clock
  skew but a broken value) or beyond what a date can hold is rejected; the device's own
  time stays in `originalTimestamp`;
- nesting: JSON deeper than the log can store (`MAX_DEPTH` levels: the log's JSON writer
  stops at 255, the log's record wraps each message in three) is found when the record
  cannot be written, which costs nothing for the events that can; `too_deep` says which
  message it is, the collector refuses it alone, and `storable` cuts it for the quarantine.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Required

import orjson
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, with_config
from pydantic import ValidationError as PydanticValidationError
from typing_extensions import TypedDict

__all__ = [
    "EARLIEST",
    "MAX_DEPTH",
    "MESSAGE_TYPES",
    "SpecError",
    "batch_values",
    "message_schemas",
    "normalize",
    "storable",
    "too_deep",
]

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_DEPTH = 252
"""How deeply objects and arrays may nest in one message: what the log can store."""
_QUARANTINE_DEPTH = 128  # a refused message is kept this deep (the rest is cut)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest event time accepted (after clock-skew correction)."""


class SpecError(ValueError):
    """A message breaks the tracking spec; the text says which field and why."""


def _text_only(value: Any) -> Any:
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO-8601 time in a string")
    return value


Object = dict[str, Any]
Timestamp = Annotated[datetime, BeforeValidator(_text_only)]  # ISO text, as the spec says
# Ids may come as numbers (the spec allows it; analytics-python turns them into text): as text.
_CONFIG = ConfigDict(extra="allow", coerce_numbers_to_str=True)


@with_config(_CONFIG)
class _Shared(TypedDict, total=False):
    """What a batch may set for all its messages."""

    sentAt: Timestamp | None
    context: Object | None
    integrations: Object | None


@with_config(_CONFIG)
class _Common(_Shared, total=False):
    messageId: str | None
    userId: str | None
    anonymousId: str | None
    timestamp: Timestamp | None


@with_config(_CONFIG)
class _Track(_Common, total=False):
    type: Required[Literal["track"]]
    event: Required[Annotated[str, Field(min_length=1)]]
    properties: Object | None


@with_config(_CONFIG)
class _Identify(_Common, total=False):
    type: Required[Literal["identify"]]
    traits: Object | None


@with_config(_CONFIG)
class _Page(_Common, total=False):
    type: Required[Literal["page", "screen"]]
    name: str | None
    category: str | None
    properties: Object | None


@with_config(_CONFIG)
class _Group(_Common, total=False):
    type: Required[Literal["group"]]
    groupId: Required[str]
    traits: Object | None


@with_config(_CONFIG)
class _Alias(_Common, total=False):
    type: Required[Literal["alias"]]
    previousId: Required[str]
    userId: Required[str]


_SHARED = TypeAdapter(_Shared)
_MESSAGE = TypeAdapter(
    Annotated[_Track | _Identify | _Page | _Group | _Alias, Field(discriminator="type")]
)


def normalize(
    item: Any,
    *,
    received_at: datetime,
    max_bytes: int | None,
    kind: str | None = None,
    sent_at: datetime | None = None,
    context: Object | None = None,
    integrations: Object | None = None,
) -> dict[str, Any]:
    """Validate one message and return it ready for the log; raise `SpecError` if it is bad.

    `kind` is the call's type when the endpoint names it (`/v1/track`); batch items carry their
    own `type`. `sent_at`, `context` and `integrations` are a batch's shared values: the item's
    own values win. `max_bytes` is the size limit of a message (None: the caller knows the
    message is within it, its whole request being smaller).
    """
    if not isinstance(item, dict):
        raise SpecError(f"a message must be a JSON object, not {_json_type(item)}")
    if max_bytes is not None and (size := len(orjson.dumps(item))) > max_bytes:
        raise SpecError(f"message is {size:,} bytes, over the {max_bytes:,}-byte limit")
    if "writeKey" in item or kind is not None:  # the write key is a secret: never stored
        item = {key: value for key, value in item.items() if key != "writeKey"}
    if kind is not None:
        item["type"] = kind
    elif "type" not in item:
        raise SpecError(f"type: missing; one of {', '.join(MESSAGE_TYPES)}")
    try:
        message: dict[str, Any] = _MESSAGE.validate_python(item)
    except PydanticValidationError as error:
        raise SpecError(_reason(error)) from None
    if not (message.get("userId") or message.get("anonymousId")):
        raise SpecError("userId or anonymousId: one of them is required")
    if context or integrations:
        message["context"] = {**(context or {}), **(message.get("context") or {})}
        message["integrations"] = {**(integrations or {}), **(message.get("integrations") or {})}
    if not message.get("messageId"):
        message["messageId"] = str(uuid.uuid4())
    message["receivedAt"] = received_at
    _correct_skew(message, received_at=received_at, sent_at=message.get("sentAt") or sent_at)
    return message


def batch_values(body: dict[str, Any]) -> dict[str, Any]:
    """A batch request's shared `sent_at`, `context` and `integrations`, as `normalize` takes
    them; raise `SpecError` if one has the wrong type."""
    try:
        shared = _SHARED.validate_python(
            {key: body.get(key) for key in ("sentAt", "context", "integrations")}
        )
    except PydanticValidationError as error:
        raise SpecError(_reason(error, nested=False)) from None
    return {
        "sent_at": shared["sentAt"],
        "context": shared["context"],
        "integrations": shared["integrations"],
    }


def _correct_skew(
    message: dict[str, Any], *, received_at: datetime, sent_at: datetime | None
) -> None:
    """Set `timestamp` on the server's clock; keep the client's as `originalTimestamp`.
    Times without a UTC offset are taken as UTC. A time after `received_at` becomes
    `received_at`; one before `EARLIEST` or out of a date's range is a `SpecError`."""
    if sent_at is not None:
        sent_at = _utc(sent_at)
        message["sentAt"] = sent_at
    original = message.get("timestamp")
    if original is None:
        message["timestamp"] = received_at
        return
    original = _utc(original)
    message["originalTimestamp"] = original
    try:
        timestamp = original if sent_at is None else received_at - (sent_at - original)
    except OverflowError:  # beyond year 1 or 9999 once corrected
        timestamp = received_at if original > sent_at else None  # type: ignore[operator]
    if timestamp is None or timestamp < EARLIEST:
        raise SpecError(
            f"timestamp: before {EARLIEST:%Y-%m-%d} once corrected for the device's clock "
            "(timestamp and sentAt are both device times)"
        )
    message["timestamp"] = min(timestamp, received_at)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def too_deep(message: Any) -> SpecError | None:
    """Why `message` cannot be stored in the log (it nests deeper than `MAX_DEPTH`, or
    holds what JSON cannot), or None."""
    if _deeper_than(message, MAX_DEPTH):
        return SpecError(f"message nests objects or arrays deeper than {MAX_DEPTH} levels")
    try:
        orjson.dumps(message)
    except orjson.JSONEncodeError as error:
        return SpecError(f"message cannot be stored as JSON: {error}")
    return None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests dicts and lists more than `limit` levels deep."""
    if not isinstance(value, dict | list):
        return False
    if limit == 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_deeper_than(child, limit - 1) for child in children)


def storable(item: Any, *, depth: int = _QUARANTINE_DEPTH) -> Any:
    """`item` with whatever nests deeper than `depth` levels replaced by a note, so that a
    refused message can always be written to the log and the quarantine."""
    if not isinstance(item, dict | list):
        return item
    if depth <= 0:
        return "<nested too deeply: cut>"
    if isinstance(item, dict):
        return {key: storable(value, depth=depth - 1) for key, value in item.items()}
    return [storable(value, depth=depth - 1) for value in item]


def message_schemas() -> dict[str, dict[str, Any]]:
    """OpenAPI (3.0) schemas of each call's body (`TrackMessage`, ...) and of `Batch`."""
    # Ids and names may be numbers: the spec allows it, and they are stored as text.
    text = {"anyOf": [{"type": "string"}, {"type": "number"}]}
    nullable_text = {**text, "nullable": True}
    time = {"type": "string", "format": "date-time", "nullable": True}
    obj = {"type": "object", "nullable": True, "additionalProperties": True}
    common = {
        "userId": nullable_text,
        "anonymousId": nullable_text,
        "messageId": nullable_text,
        "timestamp": time,
        "sentAt": time,
        "context": obj,
        "integrations": obj,
        "writeKey": {
            "description": "The write key, when no Authorization header names it; never stored."
        },
    }
    event = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]}
    own = {
        "track": ({"event": event, "properties": obj}, ["event"]),
        "identify": ({"traits": obj}, []),
        "page": ({"name": nullable_text, "category": nullable_text, "properties": obj}, []),
        "screen": ({"name": nullable_text, "category": nullable_text, "properties": obj}, []),
        "group": ({"groupId": text, "traits": obj}, ["groupId"]),
        "alias": ({"previousId": text}, ["previousId", "userId"]),
    }
    someone = [
        {
            "required": [key],
            "properties": {
                key: {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]}
            },
        }
        for key in ("userId", "anonymousId")
    ]
    schemas: dict[str, dict[str, Any]] = {}
    for kind, (fields, required) in own.items():
        schema: dict[str, Any] = {
            "type": "object",
            "description": f"A `{kind}` call of the Segment spec (the path says the call: "
            "a `type` sent is ignored); other keys are kept.",
            "properties": {**common, **fields},
            "additionalProperties": True,
            "anyOf": someone,
        }
        if required:
            schema["required"] = required
        schemas[f"{kind.capitalize()}Message"] = schema
    schemas["Batch"] = {
        "type": "object",
        "description": "Messages, each a call as documented above with its `type` "
        "(`track`, `identify`, ...); `context`, `integrations` and `sentAt` apply to every "
        "message that does not set its own. Each message is checked on its own: the good "
        "ones are accepted, the others listed in `rejected` with the reason.",
        "properties": {
            "batch": {"type": "array", "minItems": 1, "items": {}},
            "sentAt": time,
            "context": obj,
            "integrations": obj,
            "writeKey": common["writeKey"],
        },
        "required": ["batch"],
        "additionalProperties": True,
    }
    return schemas


def _reason(error: PydanticValidationError, *, nested: bool = True) -> str:
    """One line per bad field, e.g. `event: Field required` (never the value sent)."""
    reasons: dict[str, str] = {}
    for detail in error.errors(include_url=False, include_input=False):
        if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return f"type: must be one of {', '.join(MESSAGE_TYPES)}"
        loc = detail["loc"][1:] if nested else detail["loc"]  # messages: loc[0] is the type
        field = str(loc[0]) if loc else "message"
        reasons.setdefault(field, f"{field}: {detail['msg']}")
    return "; ".join(reasons.values())


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
