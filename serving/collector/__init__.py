"""The event collector: Segment's HTTP tracking API, a durable log, and its loader.

`create_app` gives the ASGI app (`cip collect` runs it with `serve`; `cip serve` mounts it);
`load_pending` moves one micro-batch of logged events into the warehouse's `raw_events`,
`load_all` all of them (the app does it in the background when given the warehouse path;
`cip collect flush` does it on demand). Names are imported on first use, so reading the
settings (`serving.collector.settings`) does not import the web and database stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.collector.app import create_app, serve
    from serving.collector.loader import BatchReport, load_all, load_pending
    from serving.collector.settings import CollectorSettings

__all__ = ["BatchReport", "CollectorSettings", "create_app", "load_all", "load_pending", "serve"]

_HOMES = {
    "BatchReport": "loader",
    "CollectorSettings": "settings",
    "create_app": "app",
    "load_all": "loader",
    "load_pending": "loader",
    "serve": "app",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
