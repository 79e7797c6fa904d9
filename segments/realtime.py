"""The real-time path: new events tied to customers, and the realtime segments re-evaluated
for just the customers they concern.

`apply_events` takes the message ids of events just loaded into `raw_events` and, in one
transaction:

1. ties each event record that neither `identity_map` nor `stream_records` holds yet to a
   customer: through the identifiers resolution resolved (`customer_identifiers`: user id,
   email, phone, cookie id, an alias's previous id), else through the provisional customer
   an earlier event of the same user or cookie id got (`stream_identifiers`), else to a new
   provisional customer whose id is the one resolution gives a new cluster
   (`resolution.clusters.new_customer_id` of the record's uid). Resolution's next run reads
   these ties as history, so a provisional customer keeps its id or is logged `merged`
   into the customer it turned out to be (`resolution.clusters`);
2. evaluates the `realtime: true` segments for the customers concerned only (who had an
   event of a kind the rules count, or was merged), over the evaluation tables batch
   evaluation builds (`segments.fields.prepare`, scoped to them and to the fields and
   event kinds the rules name), and records entries and exits in the membership history
   (`segments.membership.record_changes`).

A batch is tied and evaluated, or not at all; the ties are also what makes a replay of the
same events (after a crash) change nothing.

Stays that end only because time passes (a cart add falling out of its 3-day window, with
no event of the customer's own) end at `expire_stays`, which re-evaluates the realtime
segments for their current members as of the data's clock, the clock batch evaluation
reads, so that stream and batch still agree.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from resolution import normalize
from resolution.clusters import new_customer_id
from segments.definition import SegmentDefinition, event_kinds_named, field_groups_named
from segments.evaluate import evaluate_prepared
from segments.fields import data_clock, prepare
from segments.membership import ensure_tables as ensure_membership_tables
from segments.membership import record_changes, utc_now
from warehouse.database import index_lookups, transaction
from warehouse.sources import SOURCES
from warehouse.tables import (
    CUSTOMER_IDENTIFIERS,
    IDENTITY_MAP,
    PROFILES,
    SEGMENT_MEMBERSHIP,
    STREAM_IDENTIFIERS,
    STREAM_RECORDS,
    raw_table,
    table_names,
)

__all__ = ["RealtimeBatch", "apply_events", "ensure_tables", "expire_stays"]

logger = logging.getLogger(__name__)

_EVENTS = raw_table("events")
_BATCH, _CUSTOMERS, _IDS = "_stream_batch", "_stream_customers", "_stream_ids"
# The identifiers an event may carry, most telling first: the first one resolution knows
# decides the customer. Only user and cookie ids are remembered for provisional customers
# (never an email or a phone).
_PREFERENCE = ("user_id", "email", "phone", "anonymous_id", "previous_user", "previous_cookie")
_REMEMBERED = {
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
    "previous_cookie": "anonymous_id",
}
# A filter on the batch's event rows (`r`): those no tie names yet (it reads both tables).
_UNTIED = f"""
    WHERE NOT EXISTS (SELECT 1 FROM {IDENTITY_MAP} m
                      WHERE m.source = 'events' AND m.record_key = r.message_id)
      AND NOT EXISTS (SELECT 1 FROM {STREAM_RECORDS} s
                      WHERE s.source = 'events' AND s.record_key = r.message_id)"""


@dataclass
class RealtimeBatch:
    """What one batch of events did on the real-time path."""

    events: int = 0
    tied: int = 0
    """Event records tied to a customer (not already tied, or resolved)."""
    provisional: int = 0
    """New provisional customers (identifiers resolution has not seen yet)."""
    untied: int = 0
    """Events with no user id or cookie id to tie them by (logged, never an error)."""
    customers: int = 0
    entered: int = 0
    exited: int = 0


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the stream's tables: `stream_records(source, record_key, customer_id,
    provisional, tied_at)` and `stream_identifiers(id_type, id_value, customer_id,
    updated_at)`, one row per record and per identifier (`_tie` keeps them so; no index: an
    index is written whole at every checkpoint, and these grow until resolution runs)."""
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {STREAM_RECORDS} (
            source VARCHAR NOT NULL, record_key VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
            provisional BOOLEAN NOT NULL, tied_at TIMESTAMP NOT NULL);
        CREATE TABLE IF NOT EXISTS {STREAM_IDENTIFIERS} (
            id_type VARCHAR NOT NULL, id_value VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL);
    """)
    ensure_membership_tables(con)


def apply_events(
    con: duckdb.DuckDBPyConnection,
    *,
    message_ids: Sequence[str],
    new: bool = False,
    definitions: Sequence[SegmentDefinition],
    phone_region: str,
) -> RealtimeBatch:
    """Tie the events `message_ids` (already in `raw_events`, in arrival order) to
    customers and re-evaluate the realtime `definitions` (already checked) for them.

    `new`: the caller inserted every one of these events into `raw_events` just now, so
    no tie (`identity_map`, `stream_records`) can name them yet and none is looked for:
    the cost is the batch's, not the tables'. Otherwise (a replay, a client's retry) the
    events already tied are left out."""
    batch = RealtimeBatch(events=len(message_ids))
    tables = table_names(con)
    if not message_ids or not {PROFILES, IDENTITY_MAP} <= tables:
        return batch
    now = utc_now()
    counted = _counted_sql(event_kinds_named(definitions), tables=tables)
    con.register(_BATCH, pa.table({"n": range(len(message_ids)), "message_id": message_ids}))
    try:
        with transaction(con):
            customers = _tie(
                con, batch, counted=counted, new=new, phone_region=phone_region, now=now
            )
            if customers and definitions:
                _evaluate(con, batch, customers=customers, definitions=definitions, now=now)
    finally:
        con.unregister(_BATCH)
    return batch


def expire_stays(
    con: duckdb.DuckDBPyConnection, *, definitions: Sequence[SegmentDefinition]
) -> RealtimeBatch:
    """Re-evaluate the realtime `definitions` (already checked) for their current members
    as of the data's clock, and record who left because time passed; one transaction."""
    batch = RealtimeBatch()
    if not definitions or not {PROFILES, SEGMENT_MEMBERSHIP} <= table_names(con):
        return batch
    rows = con.execute(
        f"SELECT DISTINCT customer_id FROM {SEGMENT_MEMBERSHIP} WHERE exited_at IS NULL "
        "AND list_contains(?, segment) ORDER BY customer_id",
        [[d.name for d in definitions]],
    ).fetchall()
    if rows:
        with transaction(con):
            _evaluate(
                con, batch, customers=[c for (c,) in rows], definitions=definitions, now=utc_now()
            )
    return batch


def _counted_sql(kinds: set[str], *, tables: set[str]) -> str:
    """SQL true for an event row (`r`) of a kind the realtime rules count."""
    declared = SOURCES["events"].events
    parts = [
        f"({declared[kind].where})"
        for kind in sorted(kinds & set(declared))
        if {raw_table(name) for name in declared[kind].requires} <= tables
    ]
    return " OR ".join(parts) or "FALSE"


def _tie(
    con: duckdb.DuckDBPyConnection,
    batch: RealtimeBatch,
    *,
    counted: str,
    new: bool,
    phone_region: str,
    now: datetime,
) -> list[str]:
    """Tie the batch's event records not tied yet (all of them when `new`); the customers
    whose memberships may change: who had an event of a kind the rules count (`counted`),
    and who was merged into another."""
    untied = "" if new else _UNTIED
    with index_lookups(con):  # the batch's rows of raw_events, by its indexed key
        rows = con.execute(f"""
            SELECT r.message_id, nullif(trim(r.user_id), '') AS user_id,
                   nullif(trim(r.anonymous_id), '') AS anonymous_id,
                   nullif(trim(r.previous_id), '') AS previous_id,
                   r.traits->>'email' AS email, r.traits->>'phone' AS phone,
                   coalesce({counted}, FALSE) AS counted
            FROM {_BATCH} b JOIN {_EVENTS} r USING (message_id) {untied}
            ORDER BY b.n
        """).fetchall()
    events = [_identifiers(row[:-1], phone_region=phone_region) for row in rows]
    known, remembered, provisional = _lookup(con, events)
    ties, merged, concerned = [], {}, set()
    for (message_id, ids), row in zip(events, rows, strict=True):
        if not ids:
            batch.untied += 1
            logger.warning("stream: event %s has no user or cookie id; not tied", message_id)
            continue
        pairs = [(id_type, value) for _, id_type, value in ids]
        customer = next((known[p] for p in pairs if p in known), None)
        if customer is None:
            customer = next((remembered[p] for p in pairs if p in remembered), None)
        if customer is None:
            customer = new_customer_id(f"events|{message_id}", set())
            provisional.add(customer)
            batch.provisional += 1
        # A provisional customer this event links to another customer is that customer
        # (as resolution would merge them): its identifiers and records follow.
        for pair in pairs:
            other = remembered.get(pair)
            if other is not None and other != customer and other in provisional:
                merged[other] = customer
                for key, value in remembered.items():
                    if value == other:
                        remembered[key] = customer
        for role, _, value in ids:
            pair = (_REMEMBERED.get(role, ""), value)
            if pair[0] and pair not in known:
                remembered[pair] = customer
        ties.append((message_id, customer))
        if row[-1]:
            concerned.add(customer)
    batch.tied = len(ties)
    if not ties:
        return []

    def survivor(customer: str) -> str:
        while customer in merged:
            customer = merged[customer]
        return customer

    ties = [(message_id, survivor(customer)) for message_id, customer in ties]
    merged = {other: survivor(other) for other in merged}
    _write_ties(con, ties=ties, remembered=remembered, merged=merged, now=now)
    return sorted({survivor(c) for c in concerned} | set(merged) | set(merged.values()))


def _write_ties(
    con: duckdb.DuckDBPyConnection,
    *,
    ties: list[tuple[str, str]],
    remembered: dict[tuple[str, str], str],
    merged: dict[str, str],
    now: datetime,
) -> None:
    """Record the batch's ties, the identifiers remembered, and the provisional customers
    merged into others (their earlier records and identifiers move with them)."""
    frames = {
        "_stream_ties": pd.DataFrame(ties, columns=["record_key", "customer_id"]),
        "_stream_ids": pd.DataFrame(
            [(*pair, customer) for pair, customer in remembered.items()],
            columns=["id_type", "id_value", "customer_id"],
        ),
        "_stream_merged": pd.DataFrame(
            list(merged.items()), columns=["customer_id", "survivor"], dtype=object
        ),
    }
    # Registered views are left alone on failure: the caller rolls back, and the next
    # batch's `register` replaces them (unregistering inside an aborted transaction fails).
    for name, frame in frames.items():
        con.register(name, frame)
    con.execute(
        f"UPDATE {STREAM_RECORDS} s SET customer_id = m.survivor "
        "FROM _stream_merged m WHERE s.customer_id = m.customer_id"
    )
    con.execute(
        f"INSERT INTO {STREAM_RECORDS} SELECT 'events', record_key, customer_id, FALSE, ? "
        "FROM _stream_ties",
        [now],
    )
    con.execute(
        f"UPDATE {STREAM_RECORDS} SET provisional = customer_id NOT IN "
        f"(SELECT customer_id FROM {PROFILES}) "
        "WHERE tied_at = ? OR customer_id IN (SELECT survivor FROM _stream_merged)",
        [now],
    )
    con.execute(
        f"DELETE FROM {STREAM_IDENTIFIERS} s USING _stream_ids i "
        "WHERE s.id_type = i.id_type AND s.id_value = i.id_value"
    )
    con.execute(
        f"INSERT INTO {STREAM_IDENTIFIERS} SELECT id_type, id_value, customer_id, ? "
        "FROM _stream_ids",
        [now],
    )
    for name in frames:
        con.unregister(name)


def _identifiers(row: tuple, *, phone_region: str) -> tuple[str, list[tuple[str, str, str]]]:
    """An event's message id and its identifiers as `(role, id_type, value)`, most telling
    first, normalized as resolution normalizes them (an alias's previous id may be a user
    id or a cookie id: both are looked up)."""
    message_id, user_id, anonymous_id, previous_id, email, phone = row
    values = {
        "user_id": ("user_id", user_id),
        "email": ("email", normalize.email(email) if email else None),
        "phone": ("phone", normalize.phone(phone, phone_region) if phone else None),
        "anonymous_id": ("anonymous_id", anonymous_id),
        "previous_user": ("user_id", previous_id),
        "previous_cookie": ("anonymous_id", previous_id),
    }
    return message_id, [(role, *values[role]) for role in _PREFERENCE if values[role][1]]


def _lookup(
    con: duckdb.DuckDBPyConnection, events: list[tuple[str, list[tuple[str, str, str]]]]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], str], set[str]]:
    """Who resolution, and who the stream, already tied the events' identifiers to
    (`{(id_type, value): customer_id}` each), and which of the latter are provisional."""
    pairs = {(id_type, value) for _, ids in events for _, id_type, value in ids}
    frame = pd.DataFrame(sorted(pairs), columns=["id_type", "id_value"], dtype=object)
    con.register(_IDS, frame)
    resolved = {}
    if CUSTOMER_IDENTIFIERS in table_names(con):
        rows = con.execute(
            f"SELECT i.id_type, i.id_value, min(c.customer_id) FROM {_IDS} i "
            f"JOIN {CUSTOMER_IDENTIFIERS} c USING (id_type, id_value) GROUP BY ALL"
        ).fetchall()
        resolved = {(t, v): c for t, v, c in rows}
    streamed = con.execute(
        f"SELECT i.id_type, i.id_value, s.customer_id, "
        f"s.customer_id NOT IN (SELECT customer_id FROM {PROFILES}) FROM {_IDS} i "
        f"JOIN {STREAM_IDENTIFIERS} s USING (id_type, id_value)"
    ).fetchall()
    con.unregister(_IDS)
    remembered = {(t, v): c for t, v, c, _ in streamed}
    return resolved, remembered, {c for *_, c, provisional in streamed if provisional}


def _evaluate(
    con: duckdb.DuckDBPyConnection,
    batch: RealtimeBatch,
    *,
    customers: list[str],
    definitions: Sequence[SegmentDefinition],
    now: datetime,
) -> None:
    """The realtime segments for `customers`, recorded as batch evaluation records them."""
    batch.customers = len(customers)
    scope = pd.Index(customers, name="customer_id")
    con.register(_CUSTOMERS, pd.DataFrame({"customer_id": pd.Series(customers, dtype=object)}))
    as_of = data_clock(con) or now
    catalog = prepare(
        con,
        as_of=as_of,
        customers=_CUSTOMERS,
        kinds=event_kinds_named(definitions),
        groups=field_groups_named(definitions),
    )
    members = evaluate_prepared(con, definitions=definitions, catalog=catalog)
    con.unregister(_CUSTOMERS)
    runs = record_changes(
        con,
        run_id=f"stream-{uuid.uuid4().hex[:8]}",
        evaluated_at=utc_now(),  # as a refresh: when the evaluation was done
        as_of=as_of,
        members=members,
        scope=scope,
    )
    batch.entered += sum(run.entered for run in runs)
    batch.exited += sum(run.exited for run in runs)
