"""ASGI middleware guarding the API's requests and the shape of its errors.

- `BodyLimit`: 413 for a body over the limit, before the application reads it (by
  `Content-Length`, or by counting a streamed body); the collector under `/v1/` keeps the
  Segment spec's own limits and answers.
- `JsonBodiesOnly`: 415 for a form or multipart body sent to a BentoML API, which BentoML
  would parse as a file upload (and answer 500 when it is not one).
- `ErrorShape`: BentoML answers its own 4xx as `{"error": ..., "detail": [...]}` or as a
  JSON array; these become the API's one error shape, `{"error": "<what is wrong>"}`,
  naming each field without echoing the values sent.
- `DocumentedMethods`: 405 with an `Allow` header listing exactly the documented methods of
  a path for any other method (the routers would list only one route's methods).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "DocumentedMethods", "ErrorShape", "JsonBodiesOnly", "problem_text"]

_FORMS = (b"multipart/form-data", b"application/x-www-form-urlencoded")


async def _answer(
    send: Send,
    status: int,
    content: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = orjson.dumps(content)
    kept = [
        (k, v) for k, v in headers or [] if k.lower() not in (b"content-type", b"content-length")
    ]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *kept,
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over `limit` bytes, on every path but `exempt` prefixes."""

    def __init__(self, app: ASGIApp, *, limit: int, exempt: tuple[str, ...] = ()) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        too_large = {"error": f"request body is over the {self.limit:,}-byte limit"}
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await _answer(send, 413, too_large)
            return
        # Read the (small) body first, so that a streamed body over the limit is refused
        # before the application sees any of it; then hand it over in one message.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _answer(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class JsonBodiesOnly:
    """415 for a form or multipart body sent to one of `paths`."""

    def __init__(self, app: ASGIApp, *, paths: frozenset[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
            if kind.lower() in _FORMS:
                error = {"error": "send a JSON body (Content-Type: application/json)"}
                await _answer(send, 415, error)
                return
        await self.app(scope, receive, send)


class ErrorShape:
    """Rewrite BentoML's 4xx bodies on `paths` into `{"error": "..."}`."""

    def __init__(self, app: ASGIApp, *, paths: frozenset[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if 400 <= message["status"] < 500:
                    start = message  # hold it until the body is complete
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    content = _reshaped(b"".join(chunks))
                    await _answer(send, start["status"], content, start.get("headers"))
            else:
                await send(message)

        await self.app(scope, receive, capture)


class DocumentedMethods:
    """405 and the right `Allow` header for a method a documented path does not take
    (`methods()` maps each path to its methods; HEAD goes with GET)."""

    def __init__(
        self, app: ASGIApp, *, methods: Callable[[], Mapping[str, frozenset[str]]]
    ) -> None:
        self.app, self.methods = app, methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self.methods().get(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                allow = ", ".join(sorted(allowed)).encode()
                error = {"error": f"{scope['method']} is not allowed here: use {allow.decode()}"}
                await _answer(send, 405, error, [(b"allow", allow)])
                return
        await self.app(scope, receive, send)


def _reshaped(body: bytes) -> dict[str, Any]:
    try:
        content = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"error": body.decode("utf-8", errors="replace").strip() or "bad request"}
    if isinstance(content, list) and content and isinstance(content[0], dict):
        content = content[0]  # BentoML answers some errors as a one-element array
    if not isinstance(content, dict):
        return {"error": "bad request"}
    details = content.get("detail")
    if isinstance(details, list) and details:
        return {"error": "; ".join(problem_text(d) for d in details if isinstance(d, dict))}
    return {"error": str(content.get("error") or content.get("detail") or "bad request")}


def problem_text(error: dict[str, Any]) -> str:
    """One validation problem as `field: message` (pydantic's error, without the input)."""
    if error.get("type") == "json_invalid":
        return "malformed JSON body"
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{'.'.join(loc)}: {message}" if loc else message
