"""The BentoML service behind `cip serve`: live scores, profiles, status, reload and report.

`POST /score`, `/score_batch` and `/reload` are BentoML APIs; `GET`/`POST /profile`,
`GET /status` and `GET /report` are FastAPI routes mounted beside them; the event collector
(`serving.collector`) answers under `/v1`. OpenAPI with examples is at `/docs.json`. Every
route except health probes, docs and the collector needs the bearer API key. Settings are
read once at import, like the CLI reads them (`cip.yaml`, `CIP_CONFIG`, `CIP_*` variables).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio.to_thread
import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from pipelines.config import load_settings
from pipelines.tracking import tracking_uri
from serving.auth import ApiKeyAuth, api_key
from serving.collector import create_app
from serving.directory import Directory
from serving.heap import settle_heap
from serving.runtime import ApiError, Runtime
from serving.schemas import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    CustomerRef,
    ProfileResponse,
    ScoreRequest,
    ScoreResponse,
    StatusResponse,
)

__all__ = ["Scoring"]

log = logging.getLogger("cip.serving")

settings = load_settings()
routes = FastAPI(title="cip", docs_url=None, redoc_url=None, openapi_url=None)
routes.mount(
    "/exports", StaticFiles(directory=settings.paths.exports, check_dir=False), name="exports"
)


@routes.exception_handler(ApiError)
async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return exc.response()


@routes.exception_handler(RequestValidationError)
async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """400 naming each problem; submitted values are never echoed (they may be personal)."""
    return JSONResponse({"error": "; ".join(map(_problem, exc.errors()))}, status_code=400)


def _problem(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return "malformed JSON body"
    where = ".".join(map(str, error["loc"][1:]))
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class _JsonBodiesOnly:
    """ASGI middleware: 415 for a form or multipart body sent to a BentoML API, which BentoML
    would parse as a file upload (and answer 500 when it is not one)."""

    _FORMS = (b"multipart/form-data", b"application/x-www-form-urlencoded")

    def __init__(self, app: ASGIApp, *, paths: frozenset[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
            if kind.lower() in self._FORMS:
                body = {"error": "send a JSON body (Content-Type: application/json)"}
                await JSONResponse(body, status_code=415)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _answers_errors(
    func: Callable[..., Awaitable[Any]],
) -> Callable[..., Awaitable[Any]]:
    """Turn an ApiError raised by an API method into its 4xx/503 JSON answer."""

    @functools.wraps(func)
    async def wrapper(*args: Any) -> Any:
        try:
            return await func(*args)
        except ApiError as exc:
            return exc.response()

    return wrapper


@bentoml.service(
    name="cip",
    workers=settings.serving.workers,
    traffic={"timeout": 30},
    logging={"access": {"enabled": settings.serving.access_log}},
    metrics={"enabled": settings.serving.metrics},
)
@bentoml.asgi_app(routes, path="/")
class Scoring:
    """Customer scores and profiles by any identifier, from the champion models."""

    def __init__(self) -> None:
        self.settings = settings
        self.runtime = Runtime(settings=settings, tracking_uri=tracking_uri(settings))
        self._refresh()
        self._watcher: asyncio.Task[None] | None = None

    def _refresh(self) -> None:
        """Reload what changed; after a load, settle the heap (see `serving.heap`)."""
        if self.runtime.refresh():
            settle_heap()

    def __is_ready__(self) -> bool:
        return self.runtime.ready

    @bentoml.on_startup
    async def _start_watching(self) -> None:
        if self.settings.serving.reload_interval_seconds > 0:
            self._watcher = asyncio.create_task(self._watch())

    @bentoml.on_shutdown
    async def _stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.serving.reload_interval_seconds)
            try:
                await anyio.to_thread.run_sync(self._refresh)
            except Exception:
                log.exception("periodic reload failed; keeping what is loaded")

    @bentoml.api(route="/score", output_spec=ScoreResponse)
    @_answers_errors
    async def score(self, request: ScoreRequest, /) -> ScoreResponse:
        """Live churn and LTV scores of one customer named by any identifier."""
        directory = self.runtime.directory()
        found = _resolve(directory, request)
        (score,) = self._scores(directory, [found], reasons=request.reasons)
        return score

    @bentoml.api(route="/score_batch", output_spec=BatchResponse)
    @_answers_errors
    async def score_batch(self, request: BatchRequest, /) -> BatchResponse:
        """Scores of up to `batch_limit` customers; unknown ones get a per-item error."""
        limit = self.settings.serving.batch_limit
        if len(request.customers) > limit:
            raise ApiError(
                413, f"{len(request.customers)} customers in one batch: the limit is {limit}"
            )
        directory = self.runtime.directory()
        items: list[BatchItem] = []
        found: dict[int, tuple[str, str]] = {}
        for index, ref in enumerate(request.customers):
            try:
                found[index] = _resolve(directory, ref)
            except ApiError as exc:
                items.append(BatchItem(index=index, status=exc.status, error=exc.message))
        scores = self._scores(directory, list(found.values()), reasons=request.reasons)
        items += [BatchItem(index=i, score=s) for i, s in zip(found, scores, strict=True)]
        items.sort(key=lambda item: item.index)
        return BatchResponse(results=items, scored=len(found), failed=len(items) - len(found))

    def _scores(
        self, directory: Directory, found: list[tuple[str, str]], *, reasons: bool
    ) -> list[ScoreResponse]:
        """Scores of resolved (customer_id, matched_by) pairs, with their segments."""
        rows = self.runtime.score([customer_id for customer_id, _ in found], reasons=reasons)
        return [
            ScoreResponse(
                customer_id=customer_id,
                matched_by=matched_by,
                segments=directory.segments(customer_id),
                **row,
            )
            for (customer_id, matched_by), row in zip(found, rows, strict=True)
        ]

    @routes.post("/profile", response_model=ProfileResponse, tags=["Service APIs"])
    async def profile(self, ref: CustomerRef) -> ProfileResponse:
        """The golden record and linked identities of a customer named by any identifier."""
        return _profile(self.runtime.directory(), ref)

    @routes.get("/profile", response_model=ProfileResponse, tags=["Service APIs"])
    async def get_profile(self, ref: Annotated[CustomerRef, Query()]) -> ProfileResponse:
        """The same lookup by query parameters, e.g. `GET /profile?email=...`."""
        return _profile(self.runtime.directory(), ref)

    @bentoml.api(route="/reload", output_spec=StatusResponse)
    async def reload(self) -> StatusResponse:
        """Check now for a new champion and new lookup tables; answers what is loaded."""
        await anyio.to_thread.run_sync(self._refresh)
        return self.runtime.status()

    @routes.get("/status", response_model=StatusResponse, tags=["Service APIs"])
    async def status(self) -> StatusResponse:
        """Model versions, feature freshness, customers loaded, and why anything is missing."""
        return self.runtime.status()

    @routes.get("/report", tags=["Service APIs"], response_class=RedirectResponse)
    async def report(self) -> Response:
        """The latest marketers' HTML report written by `cip activate`, under `/exports/`
        beside the segment files its download links point at."""
        exports = self.settings.paths.exports
        reports = sorted(exports.glob("report*.html"), key=lambda p: p.stat().st_mtime)
        if not reports:
            raise ApiError(404, f"no HTML report in {exports} yet: run `cip activate`")
        return RedirectResponse(f"/exports/{reports[-1].name}", status_code=307)


def _resolve(directory: Directory, ref: CustomerRef) -> tuple[str, str]:
    """(customer_id, identifier type that found it); 400 for an invalid value, 404 if unknown."""
    tried = []
    for id_type, value in ref.identifiers():
        if directory.normalized(id_type, value) is None:
            raise ApiError(400, f"{id_type} is not a valid {id_type.replace('_', ' ')}")
        customer_id = directory.find(id_type, value)
        if customer_id is not None:
            return customer_id, id_type
        tried.append(id_type)
    raise ApiError(404, f"no customer with this {' or '.join(tried)}")


def _profile(directory: Directory, ref: CustomerRef) -> ProfileResponse:
    customer_id, matched_by = _resolve(directory, ref)
    record = directory.profile(customer_id)
    identifiers = record.pop("identifiers")
    segments = record.pop("segments")
    return ProfileResponse(
        customer_id=customer_id,
        matched_by=matched_by,
        profile=record,
        identifiers=identifiers,
        segments=segments,
    )


Scoring.add_asgi_middleware(ApiKeyAuth, key=api_key(settings))
Scoring.add_asgi_middleware(
    _JsonBodiesOnly, paths=frozenset(m.route for m in Scoring.apis.values())
)
Scoring.mount_asgi_app(
    create_app(
        settings=settings.serving.collector,
        log_dir=settings.paths.collector,
        warehouse=settings.paths.warehouse,
    ),
    path="/",
    name="collector",
)
