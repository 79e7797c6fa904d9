"""What a source declaration says: its raw table's columns, and how every stage reads it.

A `Source` is the one place that knows a source. The loaders read its columns, types,
required fields and keys (a row that breaks them is quarantined); resolution reads its
`records` (which of its columns are identifiers and person attributes, mapped onto the
roles of `RECORD_ROLES`); features and segments read its `time`, its `kind` and its
`events` (the event kinds segment rules may count); golden records read its `priority`.
The declarations themselves live in the source catalog, `warehouse.sources`, one module
per source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from warehouse.tables import raw_table

__all__ = [
    "ID_TYPES",
    "LINEAGE_COLUMNS",
    "CONSENT_PURPOSES",
    "LOOKUP_ID_TYPES",
    "RECORD_ROLES",
    "Column",
    "EventKind",
    "Source",
]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type: VARCHAR, BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP, JSON
    required: bool = False
    minimum: float | None = None  # a smaller value is quarantined (negative amounts)


RECORD_ROLES: dict[str, str] = {
    "seen_at": "TIMESTAMP",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "user_id": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "previous_id": "VARCHAR",
    "contact_id": "VARCHAR",
    "first_name": "VARCHAR",
    "last_name": "VARCHAR",
    "full_name": "VARCHAR",
    "address": "VARCHAR",
    "city": "VARCHAR",
    "postcode": "VARCHAR",
    "date_of_birth": "DATE",
    "store_id": "VARCHAR",
    "consent_email": "BOOLEAN",
    "consent_sms": "BOOLEAN",
    "consent_ads": "BOOLEAN",
    "consent_profiling": "BOOLEAN",
    "consent_push": "BOOLEAN",
    "consent_at": "TIMESTAMP",
    "is_person": "BOOLEAN",
}
"""The roles a record plays in resolution, with their types, in the order resolution
reads them: when it was seen, the identifiers that link records (`email`, `phone`,
`user_id`, `anonymous_id` with `previous_id` for aliases, `contact_id`), the person
attributes Splink compares and golden records keep, consent decisions per purpose (`true`
granted, `false` withdrawn, null: the record says nothing) with the time they were made
(`consent_at`, by default `seen_at`), and `is_person` (whether the record stands for a
person, so that Splink compares it)."""

CONSENT_PURPOSES = ("email", "sms", "ads", "profiling", "push")
"""What a person may consent to: e-mail, SMS, ad audiences, profiling (scores and
predictive segments used to market to them) and push notifications to their app or
browser. Each is the role `consent_<p>`; no decision (null) allows no message."""

ID_TYPES = ("email", "phone", "user_id", "anonymous_id", "contact_id")
"""The roles that are identifiers: records sharing one belong to one person (unless the
explosion guard refuses it), and `customer_identifiers` lists each customer's."""

LOOKUP_ID_TYPES = ("email", "phone", "user_id", "anonymous_id")
"""The identifiers a caller may name a customer by (a CRM contact id stays internal)."""


@dataclass(frozen=True)
class EventKind:
    """Rows of a source that segment rules count as an event kind (`{event: cart_add}`).

    `where` is a SQL condition on the source's raw row, aliased `r`; `requires` names
    further sources whose raw tables the condition reads (the rows count only when those
    tables exist). Several sources may declare the same kind: their rows add up.
    """

    where: str = "TRUE"
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One source: its raw table and natural key, its columns (lineage excluded), and how
    resolution, features, segments and golden records read it.

    `key_from`: when an input has no key column at all, the key is derived from these
    columns (a hash, plus the occurrence number of identical rows), so that re-loading an
    overlapping export adds nothing. `customer_columns`: an input must have at least one
    of them (which customer a row belongs to), else every row is quarantined.
    `segment_messages`: its files hold Segment spec messages (`warehouse.segment` maps
    their camelCase keys onto the columns).

    `time`: the column saying when a record happened (features window on it, segments
    date events by it). `kind`: `identity` for records about who someone is (a CRM
    contact, an account: each counts as a linked identity), `activity` for what they did
    (orders, events: they date the history). `records`: role (see `RECORD_ROLES`) -> SQL
    expression over the raw row giving it; `seen_at` defaults to `time`, `consent_at` to `seen_at`,
    `is_person` to false, any other role to null. `events`: the event kinds segment rules may count.
    `priority`: rank for the `source_priority` survivorship rule (1 = most trusted;
    None = after every ranked source).
    """

    name: str
    key: str
    columns: tuple[Column, ...]
    time: str
    kind: Literal["identity", "activity"]
    records: dict[str, str] = field(default_factory=dict)
    events: dict[str, EventKind] = field(default_factory=dict)
    priority: int | None = None
    key_from: tuple[str, ...] = ()
    customer_columns: tuple[str, ...] = ()
    segment_messages: bool = False

    def __post_init__(self) -> None:
        names = self.column_names
        problems = [f"unknown role {role!r}" for role in self.records if role not in RECORD_ROLES]
        problems += [
            f"{what} {column!r} is not a column"
            for what, column in [("key", self.key), ("time", self.time)]
            + [("key_from", c) for c in self.key_from]
            + [("customer column", c) for c in self.customer_columns]
            if column not in names
        ]
        if problems:
            raise ValueError(f"source {self.name!r}: {'; '.join(problems)}")

    def record(self, role: str) -> str:
        """The SQL giving `role` (see `RECORD_ROLES`) for one raw row: as declared, else
        `time` for `seen_at`, false for `is_person`, a typed null for any other role."""
        if role in self.records:
            return self.records[role]
        if role == "seen_at":
            return '"' + self.time.replace('"', '""') + '"'
        if role == "consent_at":
            return self.record("seen_at")
        return "FALSE" if role == "is_person" else f"NULL::{RECORD_ROLES[role]}"

    @property
    def table(self) -> str:
        return raw_table(self.name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def expected(self) -> str:
        """The columns an input needs, in words (for error messages)."""
        required = [
            c.name
            for c in self.columns
            if c.required and not (c.name == self.key and self.key_from)
        ]
        parts = [", ".join(required)] if required else []
        if self.customer_columns:
            parts.append("a customer column (" + " or ".join(self.customer_columns) + ")")
        return " and ".join(parts)


LINEAGE_COLUMNS = (
    Column("_source", "VARCHAR", True),
    Column("_file", "VARCHAR", True),
    Column("_row_number", "BIGINT", True),
    Column("_loaded_at", "TIMESTAMP", True),
)
