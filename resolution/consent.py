"""Consent as a fact: each customer's latest decision per purpose, with its time and source.

Every record may carry a decision per purpose (`consent_<purpose>`, see
`warehouse.schemas.CONSENT_PURPOSES`): a CRM flag, an unsubscribe or complaint in the
e-mail events, an `identify` trait, a row of the consent table. `build_consents` keeps,
for each customer and purpose, the newest decision by its time (`consent_at`); at equal
times a withdrawal wins over a grant. The golden record's `consent_<purpose>` columns
are read from this table, and activation reads them from the golden record.
"""

from __future__ import annotations

import duckdb

from resolution.records import RECORDS
from warehouse.schemas import CONSENT_PURPOSES
from warehouse.tables import CUSTOMER_CONSENTS

__all__ = ["build_consents", "consent_columns"]


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
