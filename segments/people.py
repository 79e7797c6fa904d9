"""Members as a marketer sees them: a name, a masked contact, the scores and top reasons.

`people_frame(con)` reads every profile (or only `customer_ids`) with its current scores,
contact details already masked, so that a page or a report never holds a raw e-mail
address or phone number; `people_of(frame, ids)` turns rows of it into `Person`s in the
order asked. The workspace keeps the whole frame in memory; the report reads the few
people it lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import orjson
import pandas as pd

from warehouse.tables import CURRENT_SCORES, PROFILES, table_names

__all__ = [
    "PEOPLE_COLUMNS",
    "Person",
    "masked_email_sql",
    "masked_phone_sql",
    "people_frame",
    "people_of",
    "people_sql",
]

PEOPLE_COLUMNS = ("name", "contact", "churn_probability", "predicted_value", "reasons")
"""The columns of `people_frame` (indexed by `customer_id`)."""


@dataclass(frozen=True)
class Person:
    """A member as a marketer sees one: no raw contact details."""

    customer_id: str
    name: str
    contact: str
    churn_probability: float | None
    predicted_value: float | None
    reasons: list[str]


def masked_email_sql(column: str) -> str:
    """SQL masking an e-mail address: `jane.doe@example.com` -> `j•••@example.com`."""
    return (
        f"CASE WHEN strpos({column}, '@') > 0 THEN left({column}, 1) || '•••@' || "
        f"{column}[strpos({column}, '@') + 1:] ELSE '' END"
    )


def masked_phone_sql(column: str) -> str:
    """SQL masking a phone number to its last two digits: `+1 415 829 0132` -> `•••32`."""
    digits = f"regexp_replace({column}, '[^0-9]', '', 'g')"
    return f"CASE WHEN length({digits}) >= 4 THEN '•••' || right({digits}, 2) ELSE '' END"


def people_frame(
    con: duckdb.DuckDBPyConnection, *, customer_ids: Sequence[object] | None = None
) -> pd.DataFrame:
    """Name, masked contact, churn probability, predicted value and the raw reasons JSON of
    every profile (or of `customer_ids`), indexed by `customer_id` (`people_sql`)."""
    sql, params = people_sql(con, customer_ids=customer_ids)
    return con.execute(sql, params).df().set_index("customer_id")


def people_sql(
    con: duckdb.DuckDBPyConnection, *, customer_ids: Sequence[object] | None = None
) -> tuple[str, list[object]]:
    """The query behind `people_frame` and its parameters: columns `customer_id` and
    `PEOPLE_COLUMNS`; columns a warehouse lacks (no scores yet) are empty."""
    tables = table_names(con)
    if PROFILES not in tables:
        columns = ", ".join(f"NULL::VARCHAR AS {c}" for c in PEOPLE_COLUMNS)
        return f"SELECT NULL::VARCHAR AS customer_id, {columns} LIMIT 0", []
    have = {
        (table, column)
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE database_name = current_database() AND table_name IN (?, ?)",
            [PROFILES, CURRENT_SCORES],
        ).fetchall()
    }
    wanted = {
        "first_name": (PROFILES, "first_name"),
        "last_name": (PROFILES, "last_name"),
        "email": (PROFILES, "emails"),
        "phone": (PROFILES, "phones"),
        "churn_probability": (CURRENT_SCORES, "churn_probability"),
        "predicted_value": (CURRENT_SCORES, "predicted_ltv"),
        "reasons": (CURRENT_SCORES, "churn_reasons"),
    }
    columns = {}
    for alias, (table, column) in wanted.items():
        source = f'{"p" if table == PROFILES else "s"}."{column}"'
        if (table, column) not in have:
            source = "NULL"
        elif column in ("emails", "phones"):
            source = f"{source}[1]"  # the first listed: the one the profile prefers
        columns[alias] = source
    name = f"trim(concat_ws(' ', {columns['first_name']}, {columns['last_name']}))"
    contact = (
        f"coalesce(nullif({masked_email_sql(columns['email'])}, ''), "
        f"{masked_phone_sql(columns['phone'])}, '')"
    )
    scores = f"LEFT JOIN {CURRENT_SCORES} s USING (customer_id)" if CURRENT_SCORES in tables else ""
    only, params = "", []
    if customer_ids is not None:
        only, params = "WHERE p.customer_id IN (SELECT unnest(?))", [list(customer_ids)]
    sql = (
        f"SELECT p.customer_id::VARCHAR AS customer_id, "
        f"coalesce(nullif({name}, ''), '(no name)') AS name, {contact} AS contact, "
        f"{columns['churn_probability']}::DOUBLE AS churn_probability, "
        f"{columns['predicted_value']}::DOUBLE AS predicted_value, "
        f"{columns['reasons']}::VARCHAR AS reasons "
        f"FROM {PROFILES} p {scores} {only}"
    )
    return sql, params


def people_of(frame: pd.DataFrame, customer_ids: Sequence[object]) -> list[Person]:
    """`Person`s of `customer_ids` from a `people_frame`, in that order (someone without a
    profile any more is listed by id alone)."""
    ids = [str(c) for c in customer_ids]
    rows = frame.reindex(ids)
    return [
        Person(
            customer_id=customer_id,
            name=name if isinstance(name, str) else "(no profile)",
            contact=contact if isinstance(contact, str) else "",
            churn_probability=None if pd.isna(churn) else float(churn),
            predicted_value=None if pd.isna(value) else float(value),
            reasons=_reason_names(reasons),
        )
        for customer_id, (name, contact, churn, value, reasons) in zip(
            ids, rows[list(PEOPLE_COLUMNS)].itertuples(index=False), strict=True
        )
    ]


def _reason_names(reasons: object) -> list[str]:
    """`churn_reasons` JSON (`[{feature, value, effect}]`) as readable phrases."""
    if not isinstance(reasons, str | bytes | list) or not reasons:
        return []
    items = orjson.loads(reasons) if isinstance(reasons, str | bytes) else reasons
    phrases = []
    for item in items or []:
        direction = "raises" if item.get("effect", 0) > 0 else "lowers"
        phrases.append(f"{item.get('feature')} {direction} risk")
    return phrases
