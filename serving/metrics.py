"""Prometheus request metrics labelled by route template, never by the raw path.

BentoML's own HTTP metrics label every request with its path, so anyone can grow
`/metrics` without bound by asking for random paths (16 MB after 4,000 of them). The
service turns those off and counts requests here instead: the label is the route a request
matched (`/score`, `/v1/track`, `/exports/{path}`) or `unmatched`, so the number of series
is fixed by the code. The metrics live in BentoML's Prometheus client, which adds up every
worker's figures (multiprocess mode); `/metrics` serves them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RouteMetrics", "RouteTemplates", "metrics_endpoint"]

UNMATCHED = "unmatched"


class RouteTemplates:
    """Maps a request path to the route it belongs to: an exact route, a folder of files
    (`/exports/{path}`), or `unmatched`."""

    def __init__(self, *, routes: Iterable[str], folders: Iterable[str]) -> None:
        self.routes = frozenset(routes)
        self.folders = tuple(sorted((f.rstrip("/") + "/" for f in folders), key=len, reverse=True))

    def __call__(self, path: str) -> str:
        if path in self.routes:
            return path
        for folder in self.folders:
            if path.startswith(folder):
                return folder + "{path}"
        return UNMATCHED


@cache
def _instruments() -> tuple[Any, Any]:
    """The counter and histogram, created once per process (Prometheus allows one each)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    labels = ["route", "method", "status"]
    total = client.Counter(
        name="cip_http_requests_total", documentation="HTTP requests", labelnames=labels
    )
    seconds = client.Histogram(
        name="cip_http_request_duration_seconds",
        documentation="HTTP request duration in seconds",
        labelnames=labels,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    )
    return total, seconds


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteMetrics:
    """ASGI middleware counting requests and their duration by route template."""

    def __init__(self, app: ASGIApp, *, templates: RouteTemplates) -> None:
        self.app, self.templates = app, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        total, seconds = _instruments()
        route = self.templates(scope["path"])
        method = scope["method"] if scope["method"] in _METHODS else "other"
        status = 500  # what the client gets if the application fails before answering
        start = time.perf_counter()

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            labels = {"route": route, "method": method, "status": str(status)}
            total.labels(**labels).inc()
            seconds.labels(**labels).observe(time.perf_counter() - start)


async def metrics_endpoint(_: Request) -> Response:
    """The Prometheus text of every worker's metrics."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    return Response(client.generate_latest(), media_type=client.CONTENT_TYPE_LATEST)
