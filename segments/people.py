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

__all__ = ["PEOPLE_COLUMNS", "Person", "mask_email", "mask_phone", "people_frame", "people_of"]

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


def mask_email(email: str | None) -> str:
    """`jane.doe@example.com` -> `j•••@example.com`."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def mask_phone(phone: str | None) -> str:
    """Only the last two digits: `+1 415 829 0132` -> `•••32`."""
    digits = [c for c in phone or "" if c.isdigit()]
    return f"•••{''.join(digits[-2:])}" if len(digits) >= 4 else ""


def people_frame(
    con: duckdb.DuckDBPyConnection, *, customer_ids: Sequence[object] | None = None
) -> pd.DataFrame:
    """Name, masked contact, churn probability, predicted value and the raw reasons JSON of
    every profile (or of `customer_ids`), indexed by `customer_id`; columns a warehouse
    lacks (no scores yet) are empty."""
    tables = table_names(con)
    if PROFILES not in tables:
        return pd.DataFrame(columns=PEOPLE_COLUMNS, index=pd.Index([], name="customer_id"))
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
    columns = []
    for alias, (table, column) in wanted.items():
        source = f'{"p" if table == PROFILES else "s"}."{column}"'
        if (table, column) not in have:
            source = "NULL"
        elif column in ("emails", "phones"):
            source = f"{source}[1]"  # the first listed: the one the profile prefers
        columns.append(f"{source} AS {alias}")
    scores = f"LEFT JOIN {CURRENT_SCORES} s USING (customer_id)" if CURRENT_SCORES in tables else ""
    only, params = "", []
    if customer_ids is not None:
        only, params = "WHERE p.customer_id IN (SELECT unnest(?))", [list(customer_ids)]
    raw = con.execute(
        f"SELECT p.customer_id, {', '.join(columns)} FROM {PROFILES} p {scores} {only}", params
    ).df()
    names = raw["first_name"].fillna("").str.cat(raw["last_name"].fillna(""), sep=" ").str.strip()
    frame = pd.DataFrame(
        {
            "name": names.where(names != "", "(no name)"),
            "contact": [
                mask_email(email) or mask_phone(phone)
                for email, phone in zip(raw["email"], raw["phone"], strict=True)
            ],
            "churn_probability": raw["churn_probability"],
            "predicted_value": raw["predicted_value"],
            "reasons": raw["reasons"],
        }
    )
    frame.index = pd.Index(raw["customer_id"].astype(str), name="customer_id")
    return frame


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
