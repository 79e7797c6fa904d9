"""Transports: segment files written atomically, and batched HTTP POSTs with retries.

Each POST carries one batch and an idempotency key (in the `Idempotency-Key`
header and the body) derived from the destination, the segment, the runs the
delivery spans, the batch number and its content: a retry of the same batch,
in this run or the next, carries the same key so that the receiver can drop
duplicates. Connection errors, timeouts, HTTP 429 and 5xx are retried with
exponential backoff (honouring `Retry-After`); another 4xx is a rejection and
is not retried. A batch that still fails stops the delivery.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import orjson
import pandas as pd

from segments.destinations.base import RetryPolicy

__all__ = ["BatchResult", "post_batches", "write_file"]


@dataclass(frozen=True)
class BatchResult:
    """What happened to one batch: for the sync log (no personal data)."""

    batch: int
    idempotency_key: str
    rows: int
    attempts: int
    status: Literal["sent", "failed"]
    http_status: int | None
    error: str | None


def write_file(frame: pd.DataFrame, *, path: Path, format: Literal["csv", "parquet"]) -> Path:
    """Write `frame` to `path` through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    if format == "csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    partial.replace(path)
    return path


def post_batches(
    frame: pd.DataFrame,
    *,
    client: httpx.Client,
    url: str,
    envelope: dict[str, object],
    batch_size: int,
    retry: RetryPolicy,
    headers: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[BatchResult]:
    """POST `frame` in batches as `{**envelope, batch, batches, idempotency_key, members}`."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    batches = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]
    results = []
    for number, members in enumerate(batches, start=1):
        key = _idempotency_key(envelope, number, members)
        body = {
            **envelope,
            "batch": number,
            "batches": len(batches),
            "idempotency_key": key,
            "members": members,
        }
        result = _post(
            client,
            url,
            orjson.dumps(body, option=orjson.OPT_NAIVE_UTC),
            {**(headers or {}), "Content-Type": "application/json", "Idempotency-Key": key},
            retry,
            sleep,
        )
        results.append(BatchResult(number, key, len(members), *result))
        if result[1] == "failed":
            break
    return results


def _idempotency_key(envelope: dict[str, object], number: int, members: list[dict]) -> str:
    content = orjson.dumps(
        {"envelope": envelope, "batch": number, "members": members},
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC,
    )
    return hashlib.sha256(content).hexdigest()


def _post(
    client: httpx.Client,
    url: str,
    content: bytes,
    headers: dict[str, str],
    retry: RetryPolicy,
    sleep: Callable[[float], None],
) -> tuple[int, Literal["sent", "failed"], int | None, str | None]:
    """(attempts, status, last HTTP status, error) of sending one batch."""
    status_code, error = None, None
    for attempt in range(1, retry.attempts + 1):
        wait = min(retry.backoff_seconds * 2 ** (attempt - 1), retry.max_backoff_seconds)
        try:
            response = client.post(
                url, content=content, headers=headers, timeout=retry.timeout_seconds
            )
        except httpx.TransportError as exc:
            status_code, error = None, f"{type(exc).__name__}: {exc}"
        else:
            status_code = response.status_code
            if response.is_success:
                return attempt, "sent", status_code, None
            error = f"HTTP {status_code}: {response.text[:200]}"
            if status_code != 429 and status_code < 500:
                return attempt, "failed", status_code, error
            wait = _retry_after(response, default=wait, ceiling=retry.max_backoff_seconds)
        if attempt < retry.attempts:
            sleep(wait)
    return (
        retry.attempts,
        "failed",
        status_code,
        f"gave up after {retry.attempts} attempts: {error}",
    )


def _retry_after(response: httpx.Response, *, default: float, ceiling: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", default)), ceiling)
    except ValueError:
        return default
