"""Activation: deliver each segment's latest run to each destination, and log what happened.

A delivery sends one segment's latest refresh to one destination: every
consented member (`full`) or who entered and exited since the last successful
delivery (`changes`), shaped and sent by the destination's kind
(`segments.destinations`: files, webhooks, ad audiences, any registered kind). It is
skipped when that run was already delivered, so a failed delivery (an unreachable
webhook, a rejected batch) is simply tried again by the next activation, and a failing
destination never stops the others.

Logs, free of personal data: `activation_log` (one row per delivery: rows sent,
rows withheld per reason: `withheld_no_consent`, `withheld_profiling_objection`,
`withheld_no_contact`; status, error, target) and
`activation_batches` (one row per HTTP batch: idempotency key, attempts, HTTP
status, error).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import httpx

from segments.audience import WITHHELD_REASONS, audience
from segments.delivery import BatchResult
from segments.destinations import Destination, Parcel, RetryPolicy
from segments.membership import ensure_tables, utc_now
from warehouse.tables import ACTIVATION_BATCHES, ACTIVATION_LOG, SEGMENT_RUNS

__all__ = [
    "Delivery",
    "activate",
    "deliver",
    "ensure_log_tables",
    "latest_exports",
    "pending_deliveries",
]


@dataclass
class Delivery:
    """The outcome of sending one segment to one destination."""

    destination: str
    segment: str
    run_id: str
    since_run_id: str | None
    status: Literal["sent", "failed", "up_to_date"]
    activation_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    rows: int = 0
    withheld_by: dict[str, int] = field(default_factory=dict)
    target: str | None = None
    error: str | None = None
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def withheld(self) -> int:
        """Segment rows not delivered, whatever the reason."""
        return sum(self.withheld_by.values())


def ensure_log_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the activation sync logs."""
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {ACTIVATION_LOG} (
            activation_id VARCHAR PRIMARY KEY, destination VARCHAR NOT NULL,
            destination_type VARCHAR NOT NULL, segment VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
            since_run_id VARCHAR, mode VARCHAR NOT NULL, consent VARCHAR NOT NULL,
            row_count BIGINT NOT NULL, withheld_no_consent BIGINT NOT NULL,
            status VARCHAR NOT NULL, error VARCHAR, target VARCHAR,
            started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL);
        ALTER TABLE {ACTIVATION_LOG}
            ADD COLUMN IF NOT EXISTS withheld_profiling_objection BIGINT DEFAULT 0;
        ALTER TABLE {ACTIVATION_LOG} ADD COLUMN IF NOT EXISTS withheld_no_contact BIGINT DEFAULT 0;
        CREATE TABLE IF NOT EXISTS {ACTIVATION_BATCHES} (
            activation_id VARCHAR NOT NULL, batch INTEGER NOT NULL,
            idempotency_key VARCHAR NOT NULL, row_count BIGINT NOT NULL, attempts INTEGER NOT NULL,
            status VARCHAR NOT NULL, http_status INTEGER, error VARCHAR);
    """)


def pending_deliveries(
    con: duckdb.DuckDBPyConnection,
    *,
    destinations: Sequence[Destination],
    segments: Sequence[str] | None = None,
) -> list[tuple[Destination, str]]:
    """(destination, segment) pairs to consider: every refreshed segment each destination takes."""
    ensure_tables(con)
    refreshed = [
        s
        for (s,) in con.execute(
            f"SELECT DISTINCT segment FROM {SEGMENT_RUNS} ORDER BY 1"
        ).fetchall()
    ]
    return [
        (destination, segment)
        for destination in destinations
        for segment in refreshed
        if (destination.segments is None or segment in destination.segments)
        and (segments is None or segment in segments)
    ]


def deliver(
    con: duckdb.DuckDBPyConnection,
    *,
    destination: Destination,
    segment: str,
    exports: Path,
    retry: RetryPolicy,
    phone_region: str,
    client: httpx.Client,
) -> Delivery:
    """Send `segment`'s latest run to `destination` unless it already went; log the outcome."""
    ensure_log_tables(con)
    run_id, until = con.execute(
        f"SELECT run_id, evaluated_at FROM {SEGMENT_RUNS} WHERE segment = ? "
        "ORDER BY evaluated_at DESC LIMIT 1",
        [segment],
    ).fetchone()
    last = con.execute(
        f"""SELECT l.run_id, r.evaluated_at FROM {ACTIVATION_LOG} l
           JOIN {SEGMENT_RUNS} r ON r.run_id = l.run_id AND r.segment = l.segment
           WHERE l.destination = ? AND l.segment = ? AND l.status = 'sent'
           ORDER BY r.evaluated_at DESC LIMIT 1""",
        [destination.name, segment],
    ).fetchone()
    since_run_id, since = last if last else (None, None)
    if since_run_id == run_id:
        return Delivery(destination.name, segment, run_id, since_run_id, "up_to_date")
    started = utc_now()
    delivery = Delivery(destination.name, segment, run_id, since_run_id, "sent")
    try:
        found = audience(
            con, segment=segment, until=until, since=since, mode=destination.mode,
            consent=destination.consent,
        )  # fmt: skip
        delivery.withheld_by = found.withheld_by
        rows = destination.rows(found.rows, phone_region=phone_region)
        delivery.rows = len(rows)
        parcel = Parcel(segment, run_id, since_run_id, exports, retry, client)
        sent = destination.send(rows, parcel=parcel)
        delivery.target, delivery.batches = sent.target, sent.batches
        failed = [b for b in sent.batches if b.status == "failed"]
        if failed:
            done = sum(b.status == "sent" for b in sent.batches)
            delivery.status = "failed"
            delivery.error = (
                f"batch {failed[0].batch} failed ({done} sent before it): {failed[0].error}"
            )
    except Exception as error:  # a failing destination must not stop the others
        delivery.status, delivery.error = "failed", f"{type(error).__name__}: {error}"
    _log(con, delivery, destination, started)
    return delivery


def activate(
    con: duckdb.DuckDBPyConnection,
    *,
    destinations: Sequence[Destination],
    exports: Path,
    retry: RetryPolicy,
    phone_region: str,
    segments: Sequence[str] | None = None,
    on_delivery: Callable[[Delivery], None] | None = None,
) -> list[Delivery]:
    """Deliver every pending (destination, segment) pair; `on_delivery` hears of each outcome."""
    deliveries = []
    with httpx.Client() as client:
        for destination, segment in pending_deliveries(
            con, destinations=destinations, segments=segments
        ):
            deliveries.append(
                deliver(
                    con,
                    destination=destination,
                    segment=segment,
                    exports=exports,
                    retry=retry,
                    phone_region=phone_region,
                    client=client,
                )  # fmt: skip
            )
            if on_delivery is not None:
                on_delivery(deliveries[-1])
    return deliveries


def latest_exports(con: duckdb.DuckDBPyConnection) -> dict[str, Path]:
    """Each segment's newest full file export (for download links), by segment."""
    ensure_log_tables(con)
    rows = con.execute(
        f"""SELECT segment, target FROM {ACTIVATION_LOG}
           WHERE destination_type = 'file' AND mode = 'full' AND status = 'sent'
           QUALIFY row_number() OVER (PARTITION BY segment ORDER BY finished_at DESC) = 1"""
    ).fetchall()
    return {segment: Path(target) for segment, target in rows if Path(target).is_file()}


def _log(
    con: duckdb.DuckDBPyConnection, delivery: Delivery, destination: Destination, started: datetime
) -> None:
    withheld = [f"withheld_{reason}" for reason in WITHHELD_REASONS]
    columns = [
        "activation_id", "destination", "destination_type", "segment", "run_id",
        "since_run_id", "mode", "consent", "row_count", *withheld, "status", "error", "target",
        "started_at", "finished_at",
    ]  # fmt: skip
    con.execute(
        f"INSERT INTO {ACTIVATION_LOG} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})",
        [
            delivery.activation_id, destination.name, destination.type, delivery.segment,
            delivery.run_id, delivery.since_run_id, destination.mode, destination.consent,
            delivery.rows, *(delivery.withheld_by.get(r, 0) for r in WITHHELD_REASONS),
            delivery.status, delivery.error, delivery.target, started, utc_now(),
        ],
    )  # fmt: skip
    for b in delivery.batches:
        con.execute(
            f"INSERT INTO {ACTIVATION_BATCHES} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [delivery.activation_id, b.batch, b.idempotency_key, b.rows, b.attempts, b.status,
             b.http_status, b.error],
        )  # fmt: skip
