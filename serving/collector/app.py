"""The collector's HTTP API: Segment's tracking endpoints as a Starlette ASGI app.

`POST /v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias` take one
message; `/v1/batch` (also `/v1/import`) takes `{"batch": [...], "context": ..., "sentAt": ...}`.
analytics.js's short paths (`/v1/t`, `/v1/i`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a`, `/v1/b`)
work too, with its `text/plain` bodies and CORS. The write key comes as HTTP Basic user name
(empty password) or as `writeKey` in the body; it names the source recorded on every event.
Bodies may be gzip-compressed (`Content-Encoding: gzip`, as analytics-python sends them).

Every accepted request is one record in the append log, on disk before the response: 200
means durable. A batch keeps its good messages and reports the bad ones, which are logged too
and end in the warehouse's quarantine. Errors follow the shape Segment's libraries read:
`{"success": false, "code": ..., "message": ...}` with 400 or 401 (503 if the log cannot be
written: nothing was acknowledged, the client retries).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from serving.collector.loader import BackgroundLoader
from serving.collector.log import AppendLog
from serving.collector.settings import CollectorSettings
from serving.collector.spec import (
    MESSAGE_TYPES,
    SpecError,
    batch_values,
    normalize,
    storable,
    too_deep,
)
from serving.heap import settle_heap
from serving.logs import escape_control_characters

__all__ = ["create_app", "serve"]

logger = logging.getLogger(__name__)

_SHORT_PATHS = {
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}


class RequestError(Exception):
    """A request the collector refuses as a whole: HTTP status, error code and reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Collector:
    """The request handling behind the routes: decode, authenticate, validate, log."""

    def __init__(self, settings: CollectorSettings, log: AppendLog) -> None:
        self.settings = settings
        self.log = log
        self.sources = {
            key.get_secret_value(): source for source, key in settings.write_keys.items()
        }
        if len(self.sources) != len(settings.write_keys):
            raise ValueError("collector write_keys: two sources share one write key")

    async def message(self, request: Request, *, kind: str) -> Response:
        try:
            source, body, size = await self._read(request)
            received_at = datetime.now(UTC)
            try:
                event = normalize(
                    body, kind=kind, received_at=received_at, max_bytes=self._size_check(size)
                )
            except SpecError as error:
                await self._log(source, [], [_rejected(body, 0, str(error))])
                raise RequestError(400, "invalid_message", str(error)) from None
            _, rejected = await self._log(source, [(0, event)], [])
            if rejected:
                raise RequestError(400, "invalid_message", rejected[0]["reason"])
        except RequestError as error:
            return _error(error)
        return _json(200, {"success": True})

    async def batch(self, request: Request) -> Response:
        try:
            source, body, size = await self._read(request)
            items = body.get("batch")
            if not isinstance(items, list) or not items:
                raise RequestError(400, "invalid_batch", "batch: a non-empty array is required")
            try:
                shared = batch_values(body)
            except SpecError as error:
                raise RequestError(400, "invalid_batch", str(error)) from None
            received_at, max_bytes = datetime.now(UTC), self._size_check(size)
            events, rejected = [], []
            for index, item in enumerate(items):
                try:
                    event = normalize(item, received_at=received_at, max_bytes=max_bytes, **shared)
                    events.append((index, event))
                except SpecError as error:
                    rejected.append(_rejected(item, index, str(error)))
            events, rejected = await self._log(source, events, rejected)
        except RequestError as error:
            return _error(error)
        reported = [{key: r[key] for key in ("index", "messageId", "reason")} for r in rejected]
        if not events:
            return _json(
                400,
                {
                    "success": False,
                    "code": "invalid_batch",
                    "message": "every message in the batch was rejected",
                    "rejected": reported,
                },
            )
        return _json(200, {"success": True, "accepted": len(events), "rejected": reported})

    def _size_check(self, request_bytes: int) -> int | None:
        """The message size limit, or None when the whole request is within it."""
        limit = self.settings.max_message_bytes
        return limit if request_bytes > limit else None

    async def _read(self, request: Request) -> tuple[str, dict[str, Any], int]:
        """The source (from the write key), the JSON object in the body and its size."""
        header_key = _basic_user(request.headers.get("authorization"))
        if header_key is not None and header_key not in self.sources:
            raise RequestError(401, "unauthorized", "unknown write key")
        raw = await self._body(request)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise RequestError(400, "invalid_json", f"body is not valid JSON: {error}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "invalid_json", "body must be a JSON object")
        key = header_key if header_key is not None else body.get("writeKey")
        if not isinstance(key, str) or not key:
            raise RequestError(
                401, "unauthorized", "write key missing: send it as the HTTP Basic user name"
            )
        if key not in self.sources:
            raise RequestError(401, "unauthorized", "unknown write key")
        return self.sources[key], body, len(raw)

    async def _body(self, request: Request) -> bytes:
        """The body, gunzipped if needed, refusing anything over the request limit."""
        limit = self.settings.max_request_bytes
        too_large = RequestError(
            400, "request_too_large", f"request body is over the {limit:,}-byte limit"
        )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        raw = b"".join(chunks)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            return _gunzip(raw, limit=limit, too_large=too_large)
        if encoding != "identity":
            raise RequestError(400, "unsupported_encoding", f"Content-Encoding {encoding!r}")
        return raw

    async def _log(
        self, source: str, events: list[tuple[int, dict]], rejected: list[dict]
    ) -> tuple[list[tuple[int, dict]], list[dict]]:
        """Append one record; the (index, event)s and rejections it holds. A message nested
        deeper than the log can store is moved to the rejections (looked for only when the
        record cannot be written, so that it costs the others nothing)."""
        try:
            line = _record(source, events, rejected)
        except orjson.JSONEncodeError:
            kept = []
            for index, event in events:
                if (error := too_deep(event)) is None:
                    kept.append((index, event))
                else:
                    rejected.append(_rejected(event, index, str(error)))
            events = kept
            rejected.sort(key=lambda r: r["index"])
            line = _record(source, events, rejected)
        try:
            await self.log.append(line)
        except OSError as error:  # disk full, folder gone: nothing was acknowledged
            logger.error("collector: cannot write the log in %s: %s", self.log.folder, error)
            raise RequestError(
                503, "unavailable", "the collector cannot write its log; retry later"
            ) from None
        return events, rejected


def create_app(
    *, settings: CollectorSettings, log_dir: Path, warehouse: Path | None = None
) -> Starlette:
    """The collector as an ASGI app writing its log to `log_dir`.

    With `warehouse`, a background thread loads the log into its `raw_events` every
    `settings.load_interval_seconds`; without it, `serving.collector.load_pending` (or
    `cip collect flush`) does. Nothing happens until the app starts (ASGI lifespan).
    """
    log = AppendLog(log_dir, segment_bytes=settings.segment_bytes)
    collector = Collector(settings, log)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loader = None
        if warehouse is not None:
            loader = BackgroundLoader(
                log_dir=log_dir,
                warehouse=warehouse,
                max_bytes=settings.load_batch_bytes,
                interval_seconds=settings.load_interval_seconds,
            )
            loader.start()
        try:
            yield
        finally:
            await log.close()
            if loader is not None:
                await asyncio.to_thread(loader.stop)  # joins, then loads what is left

    routes = []
    for kind in MESSAGE_TYPES:
        for path in (kind, _SHORT_PATHS[kind]):
            routes.append(
                Route(f"/v1/{path}", partial(collector.message, kind=kind), methods=["POST"])
            )
    for path in ("batch", "import", "b"):
        routes.append(Route(f"/v1/{path}", collector.batch, methods=["POST"]))
    cors = Middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["POST"], allow_headers=["*"]
    )
    return Starlette(routes=routes, middleware=[cors], lifespan=lifespan)


def serve(
    *,
    settings: CollectorSettings,
    log_dir: Path,
    warehouse: Path | None,
    host: str,
    port: int,
    access_log: bool = True,
) -> None:
    """Run the collector with uvicorn (uvloop, httptools) until interrupted.

    The process is the collector's own, so its garbage collector is tuned for it
    (`serving.heap`): requests allocate many short-lived, acyclic JSON objects; and its log
    lines are one line each, whatever a client puts in a path (`serving.logs`).
    """
    app = create_app(settings=settings, log_dir=log_dir, warehouse=warehouse)
    settle_heap()
    escape_control_characters()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=10,
    )


def _record(source: str, events: list[tuple[int, dict]], rejected: list[dict]) -> bytes:
    record = {"source": source, "events": [event for _, event in events], "rejected": rejected}
    return orjson.dumps(record)


def _rejected(item: Any, index: int, reason: str) -> dict[str, Any]:
    """A refused message as the log keeps it for the quarantine (cut where it nests too
    deeply to be written), with the reason the client was given."""
    if isinstance(item, dict):
        item = {key: value for key, value in item.items() if key != "writeKey"}
        message_id = item.get("messageId")
    else:
        message_id = None
    if not isinstance(message_id, str):
        message_id = None if message_id is None else str(message_id)
    return {"index": index, "messageId": message_id, "reason": reason, "item": storable(item)}


def _basic_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic `Authorization` header (Segment's write key)."""
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        raise RequestError(401, "unauthorized", "Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RequestError(401, "unauthorized", "Authorization header is not valid Basic") from None
    return decoded.partition(":")[0]


def _gunzip(raw: bytes, *, limit: int, too_large: RequestError) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise RequestError(400, "invalid_gzip", f"body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise too_large
    if not inflater.eof:
        raise RequestError(400, "invalid_gzip", "body is truncated gzip")
    if inflater.unused_data:
        raise RequestError(400, "invalid_gzip", "body has data after its gzip stream")
    return data


def _json(status: int, content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def _error(error: RequestError) -> Response:
    return _json(error.status, {"success": False, "code": error.code, "message": error.message})
