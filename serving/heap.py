"""Garbage-collector tuning for the long-running HTTP processes (scoring API, collector).

A serving process loads millions of long-lived objects (models, lookup tables, Feast,
MLflow, DuckDB) and then allocates many short-lived ones per request. With CPython's
defaults every full collection walks the whole loaded heap, a pause of a tenth of a second
in the middle of some request, and young collections run every 700 allocations (a third
of the collector's CPU, measured with 300 batches in flight). BentoML makes it worse: it
keeps each request's timeout timer, and with it the request's objects, alive for the
whole timeout.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """After a load: free what the previous load left, freeze what is loaded now out of
    every collection, and let young collections run every 50,000 allocations."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
