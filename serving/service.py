"""The BentoML service behind `cip serve`: live scores, profiles, status, reload and report.

`build_service(config=...)` builds it from a typed `ServiceConfig` (the top layer's
`pipelines.api` does that for `bentoml serve`; tests call it directly). `POST /score`,
`/score_batch` and `/reload` are BentoML APIs; `GET`/`POST /profile`, `GET /status` and
`GET /report` are FastAPI routes beside them, with the report's login form, the journeys'
unsubscribe link (`serving.unsubscribe`) and `/metrics`; the event collector
(`serving.collector`) answers under `/v1`. OpenAPI with examples is at `/docs.json`. Every
route except health probes, metrics, docs, the login form, the unsubscribe link and the
collector needs the bearer API key (the report also takes a login session).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio.to_thread
import bentoml
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from serving.auth import ApiKeyAuth
from serving.collector import create_app
from serving.config import ServiceConfig
from serving.directory import Directory, InvalidIdentifier
from serving.guards import (
    BodyLimit,
    DocumentedMethods,
    ErrorShape,
    JsonBodiesOnly,
    problem_text,
)
from serving.heap import settle_heap
from serving.metrics import RouteMetrics, RouteTemplates, metrics_endpoint
from serving.openapi import complete_spec
from serving.privacy import PrivacyDesk, add_privacy_routes
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
from serving.session import COOKIE, Sessions
from serving.unsubscribe import UnsubscribeLinks
from serving.workspace import create_workspace

__all__ = ["build_service"]

log = logging.getLogger("cip.serving")

_SYSTEM_ROUTES = ("/", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json")
_FILE_FOLDERS = ("/exports", "/static_content", "/assets")


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


def build_service(*, config: ServiceConfig, privacy: PrivacyDesk | None = None) -> bentoml.Service:
    """The scoring, profile, report and collector service for `config`; with `privacy`,
    the privacy routes too (`serving.privacy`)."""
    serving = config.serving
    routes = FastAPI(title="cip", docs_url=None, redoc_url=None, openapi_url=None)
    routes.mount("/exports", StaticFiles(directory=config.exports, check_dir=False), name="exports")
    loaded: dict[str, Runtime] = {}  # the worker's runtime, set when BentoML creates it

    def runtime() -> Runtime:
        if "runtime" not in loaded:
            raise ApiError(503, "the service is starting")
        return loaded["runtime"]

    @routes.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @routes.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @routes.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """400 naming each problem; submitted values are never echoed (they may be personal)."""
        return JSONResponse({"error": "; ".join(map(problem_text, exc.errors()))}, 400)

    @routes.post("/profile", response_model=ProfileResponse, tags=["Service APIs"])
    async def profile(ref: CustomerRef) -> ProfileResponse:
        """The golden record and linked identities of a customer named by any identifier."""
        return _profile(runtime().directory(), ref)

    @routes.get("/profile", response_model=ProfileResponse, tags=["Service APIs"])
    async def get_profile(ref: Annotated[CustomerRef, Query()]) -> ProfileResponse:
        """The same lookup by query parameters, e.g. `GET /profile?email=...`."""
        return _profile(runtime().directory(), ref)

    @routes.get("/status", response_model=StatusResponse, tags=["Service APIs"])
    async def status() -> StatusResponse:
        """Model versions, feature freshness, customers loaded, and why anything is missing."""
        return runtime().status()

    @routes.get("/report", tags=["Service APIs"], response_class=RedirectResponse)
    async def report() -> Response:
        """The latest marketers' HTML report written by `cip activate`, under `/exports/`
        beside the segment files its download links point at."""
        exports = config.exports
        reports = sorted(exports.glob("report*.html"), key=lambda p: p.stat().st_mtime)
        if not reports:
            raise ApiError(404, f"no HTML report in {exports} yet: run `cip activate`")
        return RedirectResponse(f"/exports/{reports[-1].name}", status_code=307)

    if privacy is not None:

        def after_forget() -> None:
            if "runtime" in loaded:
                loaded["runtime"].refresh()

        add_privacy_routes(routes, desk=privacy, after_forget=after_forget)

    sessions = Sessions(key=config.api_key, hours=serving.session_hours)
    unsubscribe = UnsubscribeLinks(key=config.api_key, warehouse_path=config.warehouse)
    for route in [*sessions.routes(), *unsubscribe.routes()]:
        routes.router.routes.append(route)
    if serving.metrics:
        routes.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @bentoml.service(
        name="cip",
        workers=serving.workers,
        traffic={"timeout": 30},
        logging={"access": {"enabled": serving.access_log}},
        metrics={"enabled": False},  # replaced by serving.metrics: labels by route template
    )
    @bentoml.asgi_app(routes, path="/")
    class Scoring:
        """Customer scores and profiles by any identifier, from the champion models."""

        def __init__(self) -> None:
            self.runtime = Runtime(config=config)
            self._refresh()
            self._watcher: asyncio.Task[None] | None = None
            loaded["runtime"] = self.runtime

        def _refresh(self) -> None:
            """Reload what changed; after a load, settle the heap (see `serving.heap`)."""
            if self.runtime.refresh():
                settle_heap()

        def __is_ready__(self) -> bool:
            return self.runtime.ready

        @bentoml.on_startup
        async def _start_watching(self) -> None:
            if serving.reload_interval_seconds > 0:
                self._watcher = asyncio.create_task(self._watch())

        @bentoml.on_shutdown
        async def _stop_watching(self) -> None:
            if self._watcher is not None:
                self._watcher.cancel()

        async def _watch(self) -> None:
            while True:
                await asyncio.sleep(serving.reload_interval_seconds)
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
            limit = serving.batch_limit
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

        @bentoml.api(route="/reload", output_spec=StatusResponse)
        async def reload(self) -> StatusResponse:
            """Check now for a new champion and new lookup tables; answers what is loaded."""
            await anyio.to_thread.run_sync(self._refresh)
            return self.runtime.status()

    @functools.cache
    def openapi() -> dict[str, Any]:
        return complete_spec(Scoring.openapi_spec.asdict(), session_cookie=COOKIE)

    @routes.get("/docs.json", include_in_schema=False)
    async def docs() -> JSONResponse:
        return JSONResponse(openapi())

    collector = create_app(
        settings=serving.collector,
        log_dir=config.collector_log,
        warehouse=config.warehouse if serving.collector.background_load else None,
    )
    api_paths = frozenset(method.route for method in Scoring.apis.values())
    if serving.metrics:
        templates = RouteTemplates(
            routes=[
                *_SYSTEM_ROUTES,
                *api_paths,
                *(getattr(r, "path", "") for r in routes.routes),
                *(getattr(r, "path", "") for r in collector.routes),
            ],
            folders=_FILE_FOLDERS,
        )
        Scoring.add_asgi_middleware(RouteMetrics, templates=templates)
    Scoring.add_asgi_middleware(ApiKeyAuth, key=config.api_key, sessions=sessions)
    Scoring.add_asgi_middleware(
        DocumentedMethods, methods=functools.cache(lambda: _methods(openapi()))
    )
    Scoring.add_asgi_middleware(
        BodyLimit, limit=serving.max_request_bytes, exempt=("/v1/", "/login")
    )
    Scoring.add_asgi_middleware(JsonBodiesOnly, paths=api_paths | {"/profile"})
    Scoring.add_asgi_middleware(ErrorShape, paths=api_paths)
    if config.workspace is not None:
        secret = hmac.new(config.api_key.get_secret_value().encode(), b"cip workspace v1", "sha256")
        workspace = create_workspace(config=config.workspace, secret=SecretStr(secret.hexdigest()))
        Scoring.mount_asgi_app(workspace, path="/app", name="workspace")
    Scoring.mount_asgi_app(collector, path="/", name="collector")
    return Scoring


def _methods(spec: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Each documented path's methods (HEAD with GET), but the collector's (CORS)."""
    methods = {}
    for path, item in spec["paths"].items():
        if path.startswith("/v1/"):
            continue
        declared = {method.upper() for method in item if method != "parameters"}
        methods[path] = frozenset(declared | ({"HEAD"} if "GET" in declared else set()))
    return methods


def _resolve(directory: Directory, ref: CustomerRef) -> tuple[str, str]:
    """(customer_id, identifier type that found it); 400 for an invalid value, 404 if unknown."""
    tried = []
    for id_type, value in ref.identifiers():
        try:
            customer_id = directory.find(id_type, value)
        except InvalidIdentifier as exc:
            raise ApiError(400, str(exc)) from exc
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
