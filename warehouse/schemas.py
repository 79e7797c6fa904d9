"""Declared schemas of the raw source tables: columns, types, required fields, keys.

These declarations are the contract between the connectors (files, the HTTP
collector) and everything downstream. A row that breaks them is quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type: VARCHAR, BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP, JSON
    required: bool = False
    minimum: float | None = None  # a smaller value is quarantined (negative amounts)


@dataclass(frozen=True)
class SourceSchema:
    """One source: its raw table, natural key and columns (lineage columns excluded).

    `key_from`: when an input has no key column at all, the key is derived from these
    columns (a hash, plus the occurrence number of identical rows), so that re-loading an
    overlapping export adds nothing. `customer_columns`: an input must have at least one
    of them (which customer a row belongs to), else every row is quarantined.
    """

    name: str
    table: str
    key: str
    columns: tuple[Column, ...]
    key_from: tuple[str, ...] = ()
    customer_columns: tuple[str, ...] = ()

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

C = Column

CRM_CONTACTS = SourceSchema(
    "crm_contacts",
    "raw_crm_contacts",
    "contact_id",
    (
        C("contact_id", "VARCHAR", True),
        C("first_name", "VARCHAR"),
        C("last_name", "VARCHAR"),
        C("email", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("address", "VARCHAR"),
        C("city", "VARCHAR"),
        C("postcode", "VARCHAR"),
        C("date_of_birth", "DATE"),
        C("consent_email", "BOOLEAN"),
        C("consent_sms", "BOOLEAN"),
        C("consent_ads", "BOOLEAN"),
        C("created_at", "TIMESTAMP", True),
        C("updated_at", "TIMESTAMP"),
    ),
)

ACCOUNTS = SourceSchema(
    "accounts",
    "raw_accounts",
    "user_id",
    (
        C("user_id", "VARCHAR", True),
        C("email", "VARCHAR", True),
        C("first_name", "VARCHAR"),
        C("last_name", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("signup_at", "TIMESTAMP", True),
    ),
)

EVENTS = SourceSchema(
    "events",
    "raw_events",
    "message_id",
    (
        C("message_id", "VARCHAR", True),
        C("type", "VARCHAR", True),
        C("event", "VARCHAR"),
        C("anonymous_id", "VARCHAR"),
        C("user_id", "VARCHAR"),
        C("previous_id", "VARCHAR"),
        C("group_id", "VARCHAR"),
        C("timestamp", "TIMESTAMP", True),
        C("sent_at", "TIMESTAMP"),
        C("received_at", "TIMESTAMP"),
        C("properties", "JSON"),
        C("traits", "JSON"),
        C("context", "JSON"),
        C("integrations", "JSON"),
    ),
)

ORDERS = SourceSchema(
    "orders",
    "raw_orders",
    "order_id",
    (
        C("order_id", "VARCHAR", True),
        C("channel", "VARCHAR"),
        C("customer_id", "VARCHAR"),
        C("user_id", "VARCHAR"),
        C("loyalty_phone", "VARCHAR"),
        C("customer_name", "VARCHAR"),
        C("store_id", "VARCHAR"),
        C("ordered_at", "TIMESTAMP", True),
        C("amount", "DOUBLE", True, minimum=0.0),
        C("discount", "DOUBLE"),
        C("currency", "VARCHAR"),
        C("items", "JSON"),
    ),
    key_from=("customer_id", "user_id", "loyalty_phone", "customer_name", "ordered_at", "amount"),
    customer_columns=("customer_id", "user_id", "loyalty_phone", "customer_name"),
)

EMAIL_EVENTS = SourceSchema(
    "email_events",
    "raw_email_events",
    "email_event_id",
    (
        C("email_event_id", "VARCHAR", True),
        C("email", "VARCHAR", True),
        C("campaign_id", "VARCHAR"),
        C("event_type", "VARCHAR", True),
        C("occurred_at", "TIMESTAMP", True),
    ),
)

SUPPORT_TICKETS = SourceSchema(
    "support_tickets",
    "raw_support_tickets",
    "ticket_id",
    (
        C("ticket_id", "VARCHAR", True),
        C("email", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("topic", "VARCHAR"),
        C("sentiment", "VARCHAR"),
        C("created_at", "TIMESTAMP", True),
    ),
)

SOURCES: dict[str, SourceSchema] = {
    s.name: s for s in (CRM_CONTACTS, ACCOUNTS, EVENTS, ORDERS, EMAIL_EVENTS, SUPPORT_TICKETS)
}
