"""The golden record: one `profiles` row per customer, chosen by survivorship rules.

Every attribute value of every record is laid out long (customer, attribute,
value, source, time) and ranked per attribute by its rule from the settings:

- `source_priority`: the most trusted source (`source_priority` order), newest first;
- `most_recent`: the newest value;
- `most_frequent`: the most common value, newest first on ties;
- `first_non_null`: the first value ever seen.

Attributes that should have one value but have several (two dates of birth,
two surnames) are listed in the `conflicts` JSON, so a reviewer sees them. Consent is
not an attribute chosen so: it is each purpose's newest decision (`resolution.consent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb

from resolution.consent import build_consents, consent_columns
from resolution.graph import IDENTIFIERS
from resolution.records import RECORDS
from resolution.settings import GOLDEN_ATTRIBUTES, SurvivorshipRule
from warehouse.schemas import CONSENT_PURPOSES
from warehouse.tables import CUSTOMER_CONSENTS

__all__ = ["PROFILES", "CONFLICT_ATTRIBUTES", "build_profiles"]

PROFILES = "profiles"
CONFLICT_ATTRIBUTES = ("first_name", "last_name", "date_of_birth", "address", "postcode")
_TITLE_CASE = ("first_name", "last_name", "address", "city")

_ORDER: dict[SurvivorshipRule, str] = {
    "source_priority": "source_rank, seen_at DESC, value",
    "most_recent": "seen_at DESC, value",
    "most_frequent": "frequency DESC, seen_at DESC, value",
    "first_non_null": "seen_at, value",
}


def _title(column: str) -> str:
    words = f"string_split({column}, ' ')"
    return f"array_to_string(list_transform({words}, lambda w: upper(w[1]) || w[2:]), ' ')"


def build_profiles(
    con: duckdb.DuckDBPyConnection,
    *,
    rules: dict[str, SurvivorshipRule],
    source_priority: Sequence[str],
    now: datetime,
) -> int:
    """Replace `customer_consents` and `profiles` from `res_assignment`; returns the number
    of profiles."""
    unknown = set(rules) - set(GOLDEN_ATTRIBUTES)
    if unknown:
        raise ValueError(
            f"survivorship rules name unknown attributes {sorted(unknown)}; "
            f"attributes are {', '.join(GOLDEN_ATTRIBUTES)}"
        )
    build_consents(con)
    ranks = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(source_priority))
    columns = ", ".join(f"CAST({a} AS VARCHAR) AS {a}" for a in GOLDEN_ATTRIBUTES)
    order = " ".join(
        f"WHEN '{a}' THEN row_number() OVER (PARTITION BY customer_id, attribute "
        f"ORDER BY {_ORDER[rules.get(a, 'source_priority')]})"
        for a in GOLDEN_ATTRIBUTES
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_attribute_values AS
        WITH long AS (
            UNPIVOT (
                SELECT a.customer_id, r.source, r.seen_at,
                       CASE r.source {ranks} ELSE {len(source_priority)} END AS source_rank,
                       {columns}
                FROM {RECORDS} r JOIN res_assignment a USING (uid)
                WHERE NOT ({" AND ".join(f"r.{a} IS NULL" for a in GOLDEN_ATTRIBUTES)})
            ) ON {", ".join(GOLDEN_ATTRIBUTES)} INTO NAME attribute VALUE value
        ),
        counted AS (
            SELECT *, count(*) OVER (PARTITION BY customer_id, attribute, value) AS frequency
            FROM long
        )
        SELECT customer_id, attribute, value, CASE attribute {order} END AS rank
        FROM counted
    """)
    chosen = ", ".join(
        f"max(value) FILTER (WHERE attribute = '{a}' AND rank = 1) AS {a}"
        for a in GOLDEN_ATTRIBUTES
    )
    out = {a: f"g.{a}" for a in GOLDEN_ATTRIBUTES}
    out.update({a: f"{_title('g.' + a)} AS {a}" for a in _TITLE_CASE})
    out["date_of_birth"] = "CAST(g.date_of_birth AS DATE) AS date_of_birth"
    in_conflict = ", ".join(f"'{a}'" for a in CONFLICT_ATTRIBUTES)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {PROFILES} AS
        WITH golden AS (
            SELECT customer_id, {chosen} FROM res_attribute_values GROUP BY customer_id
        ),
        conflicts AS (
            SELECT customer_id, json_group_object(attribute, vals) AS conflicts
            FROM (
                SELECT customer_id, attribute, list(DISTINCT value ORDER BY value) AS vals
                FROM res_attribute_values WHERE attribute IN ({in_conflict})
                GROUP BY ALL HAVING count(DISTINCT value) > 1
            )
            GROUP BY customer_id
        ),
        ids AS (
            SELECT a.customer_id,
                   list(DISTINCT i.id_value ORDER BY i.id_value)
                       FILTER (WHERE i.id_type = 'email') AS emails,
                   list(DISTINCT i.id_value ORDER BY i.id_value)
                       FILTER (WHERE i.id_type = 'phone') AS phones,
                   count(DISTINCT (i.id_type, i.id_value)) AS n_identifiers,
                   bool_or(i.id_type <> 'anonymous_id') AS has_strong_id
            FROM res_assignment a JOIN {IDENTIFIERS} i USING (uid)
            GROUP BY a.customer_id
        ),
        records AS (
            SELECT a.customer_id, min(r.seen_at) AS first_seen, max(r.seen_at) AS last_seen,
                   list(DISTINCT r.source ORDER BY r.source) AS sources, count(*) AS n_records,
                   bool_or(r.is_person) AS has_person_record
            FROM res_assignment a JOIN {RECORDS} r USING (uid)
            GROUP BY a.customer_id
        )
        SELECT c.customer_id, {out["first_name"]}, {out["last_name"]},
               coalesce(ids.emails, []) AS emails, coalesce(ids.phones, []) AS phones,
               {out["email"]}, {out["phone"]}, {out["address"]}, {out["city"]},
               {out["postcode"]}, {out["date_of_birth"]},
               c.first_seen, c.last_seen, c.sources, c.n_records,
               coalesce(ids.n_identifiers, 0) AS n_identifiers,
               {", ".join(f"consent.consent_{p}" for p in CONSENT_PURPOSES)},
               coalesce(ids.has_strong_id, FALSE) OR c.has_person_record AS is_known,
               coalesce(k.conflicts, '{{}}')::JSON AS conflicts,
               ?::TIMESTAMP AS updated_at
        FROM records c
        LEFT JOIN golden g USING (customer_id)
        LEFT JOIN ids USING (customer_id)
        LEFT JOIN conflicts k USING (customer_id)
        LEFT JOIN (
            SELECT customer_id, {consent_columns("x")} FROM {CUSTOMER_CONSENTS} x
            GROUP BY customer_id
        ) consent USING (customer_id)
        ORDER BY c.customer_id
    """,
        [now],
    )
    return con.execute(f"SELECT count(*) FROM {PROFILES}").fetchall()[0][0]
