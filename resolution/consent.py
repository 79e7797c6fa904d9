"""Consent as a fact: each customer's latest decision per purpose, with its time and source.

Every record may carry a decision per purpose (`consent_<purpose>`, see
`warehouse.schemas.CONSENT_PURPOSES`): a CRM flag, an unsubscribe or complaint in the
e-mail events, an `identify` trait, a row of the consent table. `build_consents` keeps,
for each customer and purpose, the newest decision by its time (`consent_at`); at equal
times a withdrawal wins over a grant. The golden record's `consent_<purpose>` columns
are read from this table, and activation reads them from the golden record.

`record_decision` takes one decision made now (an unsubscribe link followed): it is kept
as a row of the consent table (`raw_consents`, naming the person by their identifiers, so
that the next resolution keeps it) and applied at once to `customer_consents` and the
profile, so that the next message is already refused.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from resolution.records import RECORDS
from warehouse.database import transaction
from warehouse.loader import append_rows
from warehouse.schemas import CONSENT_PURPOSES
from warehouse.tables import (
    CUSTOMER_CONSENTS,
    CUSTOMER_ID_CHANGES,
    CUSTOMER_IDENTIFIERS,
    PROFILES,
    table_names,
)

__all__ = ["build_consents", "consent_columns", "record_decision"]

_NAMED_BY = ("email", "phone", "user_id")
"""The identifiers a row of the consent table names a person by."""


def build_consents(con: duckdb.DuckDBPyConnection) -> int:
    """Replace `customer_consents` (customer_id, purpose, granted, source, record_key,
    decided_at) from `res_records` and `res_assignment`; returns its row count."""
    columns = ", ".join(f"consent_{p}" for p in CONSENT_PURPOSES)
    con.execute(f"""
        CREATE OR REPLACE TABLE {CUSTOMER_CONSENTS} AS
        SELECT customer_id, replace(purpose, 'consent_', '') AS purpose, granted, source,
               record_key, decided_at
        FROM (
            UNPIVOT (
                SELECT a.customer_id, r.source, r.record_key,
                       coalesce(r.consent_at, r.seen_at) AS decided_at, {columns}
                FROM {RECORDS} r JOIN res_assignment a USING (uid)
            ) ON {columns} INTO NAME purpose VALUE granted
        )
        QUALIFY row_number() OVER (
            PARTITION BY customer_id, purpose
            ORDER BY decided_at DESC NULLS LAST, granted, source, record_key) = 1
        ORDER BY customer_id, purpose
    """)
    return con.execute(f"SELECT count(*) FROM {CUSTOMER_CONSENTS}").fetchall()[0][0]


def consent_columns(alias: str) -> str:
    """SELECT items giving `consent_<purpose>` per customer from `customer_consents`
    aliased `alias`, for a query grouped by customer."""
    return ", ".join(
        f"bool_or({alias}.granted) FILTER (WHERE {alias}.purpose = '{p}') AS consent_{p}"
        for p in CONSENT_PURPOSES
    )


def record_decision(
    con: duckdb.DuckDBPyConnection,
    *,
    customer_id: str,
    purpose: str,
    granted: bool,
    decided_at: datetime,
    key: str,
    origin: str,
) -> str | None:
    """Record that `customer_id` (or the customer it was merged into since) granted or
    withdrew `purpose` at `decided_at`: a row `key` of the consent table (from `origin`),
    then `customer_consents` and the profile; returns the customer it was recorded for,
    None when no profile has that id. Recording the same `key` again changes nothing."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}; known: {CONSENT_PURPOSES}")
    tables = table_names(con)
    customer = _current_id(con, customer_id, tables=tables)
    if customer is None:
        return None
    named = {id_type: None for id_type in _NAMED_BY}
    if CUSTOMER_IDENTIFIERS in tables:
        rows = con.execute(
            f"SELECT id_type, min(id_value) FROM {CUSTOMER_IDENTIFIERS} "
            "WHERE customer_id = ? AND id_type IN ('email', 'phone', 'user_id') GROUP BY ALL",
            [customer],
        ).fetchall()
        named |= dict(rows)
    profile = con.execute(
        f"SELECT email, phone FROM {PROFILES} WHERE customer_id = ?", [customer]
    ).fetchone()
    named["email"] = profile[0] or named["email"]
    named["phone"] = profile[1] or named["phone"]
    if any(named.values()):  # one that nothing names is applied now, not kept
        row = {"consent_id": key, **named, "purpose": purpose, "granted": granted}
        append_rows(con, source="consents", rows=[row | {"decided_at": decided_at}], origin=origin)
    with transaction(con):
        if CUSTOMER_CONSENTS in tables:
            con.execute(
                f"DELETE FROM {CUSTOMER_CONSENTS} WHERE customer_id = ? AND purpose = ? "
                "AND decided_at <= ?",
                [customer, purpose, decided_at],
            )
            con.execute(
                f"INSERT INTO {CUSTOMER_CONSENTS} SELECT ?, ?, ?, 'consents', ?, ? WHERE NOT "
                f"EXISTS (SELECT 1 FROM {CUSTOMER_CONSENTS} WHERE customer_id = ? AND purpose = ?)",
                [customer, purpose, granted, key, decided_at, customer, purpose],
            )
        con.execute(f"ALTER TABLE {PROFILES} ADD COLUMN IF NOT EXISTS consent_{purpose} BOOLEAN")
        con.execute(
            f"UPDATE {PROFILES} SET consent_{purpose} = ? WHERE customer_id = ?",
            [granted, customer],
        )
    return customer


def _current_id(
    con: duckdb.DuckDBPyConnection, customer_id: str, *, tables: set[str]
) -> str | None:
    """`customer_id`, or the customer resolution merged it into since; None if neither has
    a profile."""
    seen = set()
    while customer_id not in seen:
        seen.add(customer_id)
        if con.execute(f"SELECT 1 FROM {PROFILES} WHERE customer_id = ?", [customer_id]).fetchone():
            return customer_id
        if CUSTOMER_ID_CHANGES not in tables:
            return None
        found = con.execute(
            f"SELECT customer_id FROM {CUSTOMER_ID_CHANGES} WHERE change_type = 'merged' "
            "AND other_customer_id = ? ORDER BY changed_at DESC LIMIT 1",
            [customer_id],
        ).fetchone()
        if found is None:
            return None
        customer_id = found[0]
    return None
