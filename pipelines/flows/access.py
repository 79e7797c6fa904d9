"""The access flow: everything held about a person, as one JSON document (GDPR art. 15).

`export` finds the customers an identifier names (as `privacy.forget` does) and gathers,
per customer: the golden record, the identifiers resolution links, the consent decisions
(newest per purpose, with time and source), every raw record by source, the scores with
their reasons (current and past), segment memberships, and the sends: the e-mails of the
e-mail events, and the segment deliveries made while they were a member (activation logs
counts, not people, so a delivery may have withheld them for lack of consent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import duckdb

import warehouse
from pipelines.config import Settings
from pipelines.flows.privacy import Identifier, customers_named
from warehouse.schemas import LINEAGE_COLUMNS
from warehouse.sources import SOURCES
from warehouse.tables import (
    ACTIVATION_LOG,
    CUSTOMER_CONSENTS,
    CUSTOMER_IDENTIFIERS,
    IDENTITY_MAP,
    PROFILES,
    SCORES,
    SEGMENT_MEMBERSHIP,
    SEGMENT_RUNS,
    table_names,
)

__all__ = ["export", "to_json"]

_LINEAGE = {c.name for c in LINEAGE_COLUMNS}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _customer(con: duckdb.DuckDBPyConnection, customer_id: str, present: set[str]) -> dict:
    def rows(table: str, sql: str) -> list[dict[str, Any]]:
        return _rows(con, sql, [customer_id]) if table in present else []

    profile = rows(PROFILES, f"SELECT * FROM {PROFILES} WHERE customer_id = ?")
    records: dict[str, list[dict[str, Any]]] = {}
    for source in SOURCES.values():
        if source.table in present and IDENTITY_MAP in present:
            found = rows(
                source.table,
                f"SELECT * EXCLUDE ({', '.join(sorted(_LINEAGE))}) FROM {source.table} "
                f'WHERE CAST("{source.key}" AS VARCHAR) IN (SELECT record_key FROM '
                f"{IDENTITY_MAP} WHERE customer_id = ? AND source = '{source.name}')",
            )
            if found:
                records[source.name] = found
    segments = rows(
        SEGMENT_MEMBERSHIP,
        f"SELECT segment, entered_at, exited_at FROM {SEGMENT_MEMBERSHIP} "
        "WHERE customer_id = ? ORDER BY entered_at, segment",
    )
    deliveries = []
    if {SEGMENT_MEMBERSHIP, SEGMENT_RUNS, ACTIVATION_LOG} <= present:
        deliveries = rows(
            ACTIVATION_LOG,
            f"""SELECT l.destination, l.destination_type, l.segment, l.consent, l.finished_at
               FROM {ACTIVATION_LOG} l JOIN {SEGMENT_RUNS} r USING (run_id, segment)
               JOIN {SEGMENT_MEMBERSHIP} m ON m.segment = l.segment
               WHERE m.customer_id = ? AND l.status = 'sent' AND r.evaluated_at >= m.entered_at
                 AND (m.exited_at IS NULL OR r.evaluated_at < m.exited_at)
               ORDER BY l.finished_at""",
        )
    emails = [
        {k: r[k] for k in ("campaign_id", "event_type", "occurred_at")}
        for r in records.get("email_events", [])
        if r.get("event_type") == "send"
    ]
    return {
        "customer_id": customer_id,
        "profile": profile[0] if profile else None,
        "identifiers": rows(
            CUSTOMER_IDENTIFIERS,
            f"SELECT id_type, id_value FROM {CUSTOMER_IDENTIFIERS} WHERE customer_id = ? "
            "ORDER BY ALL",
        ),
        "consents": rows(
            CUSTOMER_CONSENTS,
            f"SELECT purpose, granted, source, decided_at FROM {CUSTOMER_CONSENTS} "
            "WHERE customer_id = ? ORDER BY purpose",
        ),
        "records": records,
        "scores": rows(
            SCORES,
            f"SELECT * EXCLUDE (customer_id) FROM {SCORES} WHERE customer_id = ? "
            "ORDER BY scored_at DESC",
        ),
        "segments": segments,
        "sends": {"emails": emails, "segment_deliveries": deliveries},
    }


def export(settings: Settings, *, identifiers: Sequence[Identifier]) -> dict[str, Any]:
    """Everything held about the people `identifiers` name, as one JSON-ready document."""
    with warehouse.connect(settings.paths.warehouse, read_only=True) as con:
        present = table_names(con)
        region = settings.resolution.default_phone_region
        found = customers_named(con, identifiers, region=region)
        customers = sorted(set().union(*found.values()))
        return {
            "generated_at": datetime.now(UTC).isoformat(),
            "requested": [{"kind": i.kind, "value": i.value} for i in identifiers],
            "matched": bool(customers),
            "customers": [_customer(con, c, present) for c in customers],
        }


def to_json(document: dict[str, Any]) -> str:
    """The document as JSON text (times in ISO 8601, JSON columns parsed)."""

    def value(v: object) -> object:
        if isinstance(v, str) and v[:1] in "[{":
            try:
                return json.loads(v)
            except ValueError:
                return v
        return v

    def walk(v: object) -> object:
        if isinstance(v, dict):
            return {k: walk(value(x)) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(value(x)) for x in v]
        return v

    return json.dumps(walk(document), indent=2, default=str, ensure_ascii=False)
