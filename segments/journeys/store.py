"""The journeys' durable state in the warehouse, and the queries the runner asks of it.

- `journey_enrollments`: one row per customer per entry into a journey: `grp` (treated or
  holdout), the step it is at and since when, when it is next due, its `status`
  (`active`, `holdout`, `done`, `exited`) and `exit_reason`;
- `journey_steps`: every step an enrollment entered, when (the funnel's "entered");
- `journey_sends`: the outbox and send log: one row per message, keyed by its idempotency
  key, written in the same transaction as the step that decided it; its `status` goes
  `pending` -> `sending` (committed before the message leaves) -> `delivered`, or
  `retrying` and finally `dead`; `capped` (frequency cap) and `suppressed` (no consent at
  send time) never leave;
- `journey_dead_letters`: every message given up on, with the reason.

`consent_condition` is the one place that says which profile column allows a channel.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from segments.fields import event_kinds, identities_sql, warehouse_tables
from segments.journeys.channels import CHANNELS
from warehouse.database import transaction
from warehouse.tables import (
    JOURNEY_DEAD_LETTERS,
    JOURNEY_ENROLLMENTS,
    JOURNEY_SENDS,
    JOURNEY_STEPS,
    PROFILES,
)

__all__ = [
    "CURSORS",
    "consent_condition",
    "ensure_tables",
    "erase_customers",
    "events_sql",
]

CURSORS = "journey_cursors"
"""Per event-triggered journey, the event time up to which entries were taken."""


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the journey tables (customer ids typed as in `profiles`)."""
    columns = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
            [PROFILES],
        ).fetchall()
    )
    id_type = columns.get("customer_id", "VARCHAR")
    if columns:  # profiles resolved before a channel's purpose existed allow nothing on it
        for purpose in sorted(
            set(CHANNELS.values()) - {c.removeprefix("consent_") for c in columns}
        ):
            con.execute(f"ALTER TABLE {PROFILES} ADD COLUMN consent_{purpose} BOOLEAN")
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {JOURNEY_ENROLLMENTS} (
            enrollment_id VARCHAR NOT NULL, journey VARCHAR NOT NULL,
            customer_id {id_type} NOT NULL, grp VARCHAR NOT NULL, trigger_at TIMESTAMP NOT NULL,
            entered_at TIMESTAMP NOT NULL, step VARCHAR, step_started_at TIMESTAMP,
            due_at TIMESTAMP, status VARCHAR NOT NULL, exit_reason VARCHAR,
            updated_at TIMESTAMP NOT NULL);
        CREATE TABLE IF NOT EXISTS {JOURNEY_STEPS} (
            enrollment_id VARCHAR NOT NULL, journey VARCHAR NOT NULL, step VARCHAR NOT NULL,
            entered_at TIMESTAMP NOT NULL);
        CREATE TABLE IF NOT EXISTS {JOURNEY_SENDS} (
            idempotency_key VARCHAR PRIMARY KEY, enrollment_id VARCHAR NOT NULL,
            journey VARCHAR NOT NULL, step VARCHAR NOT NULL, customer_id {id_type} NOT NULL,
            channel VARCHAR NOT NULL, template VARCHAR NOT NULL, params JSON,
            created_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMP,
            delivered_at TIMESTAMP, target VARCHAR, last_error VARCHAR);
        CREATE TABLE IF NOT EXISTS {JOURNEY_DEAD_LETTERS} (
            idempotency_key VARCHAR NOT NULL, journey VARCHAR NOT NULL, step VARCHAR NOT NULL,
            customer_id {id_type} NOT NULL, channel VARCHAR NOT NULL, attempts INTEGER NOT NULL,
            reason VARCHAR NOT NULL, failed_at TIMESTAMP NOT NULL);
        CREATE TABLE IF NOT EXISTS {CURSORS} (
            journey VARCHAR PRIMARY KEY, events_until TIMESTAMP NOT NULL);
    """)


def consent_condition(channel: str, *, alias: str = "p") -> str:
    """SQL that is true when the profile `alias` allows messages on `channel`: its
    `consent_<email|push>` flag is true (null or false: no message)."""
    return f"{alias}.consent_{CHANNELS[channel]} IS TRUE"


def events_sql(con: duckdb.DuckDBPyConnection, kind: str) -> str | None:
    """`(customer_id, occurred_at)` of every event of `kind` the warehouse holds (the
    source catalog's event kinds, keyed to customers through `identity_map` and the stream
    worker's ties since resolution last ran); None when no source of it is loaded."""
    tables = warehouse_tables(con)
    kinds = event_kinds(identities=identities_sql(tables))
    parts = [part.sql for part in kinds.get(kind, []) if set(part.tables) <= tables]
    if "identity_map" not in tables or not parts:
        return None
    return " UNION ALL ".join(f"SELECT customer_id, occurred_at FROM ({sql})" for sql in parts)


def erase_customers(con: duckdb.DuckDBPyConnection, *, customer_ids: list[object]) -> int:
    """Forget customers' journeys, messages and dead letters (right to be forgotten);
    returns the rows deleted."""
    ensure_tables(con)
    frame = pd.DataFrame({"customer_id": pd.Series(customer_ids, dtype=object)})
    con.register("_journey_erase", frame)
    erased = "customer_id IN (SELECT customer_id FROM _journey_erase)"
    try:
        with transaction(con):
            deleted = con.execute(
                f"DELETE FROM {JOURNEY_STEPS} WHERE enrollment_id IN (SELECT enrollment_id "
                f"FROM {JOURNEY_ENROLLMENTS} WHERE {erased})"
            ).fetchone()[0]
            for table in (JOURNEY_ENROLLMENTS, JOURNEY_SENDS, JOURNEY_DEAD_LETTERS):
                deleted += con.execute(f"DELETE FROM {table} WHERE {erased}").fetchone()[0]
    finally:
        con.unregister("_journey_erase")
    return deleted
