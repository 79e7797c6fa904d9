"""The fields and events a segment rule can name, read from the warehouse as of a time.

`prepare` builds two temporary tables for one evaluation and returns the
`Catalog` of what they hold:

- `_segment_base`: one row per customer in `profiles`, with every profile
  column as `profile.<column>`, the current scores as `scores.<column>`, and the
  latest snapshot (at or before `as_of`) of each feature table
  `customer_<group>_features` as `<group>.<column>` (e.g. `order.avg_order_value`;
  the `profile` group's as `profile_features.<column>`);
- `_segment_events`: `(customer_id, kind, occurred_at)` for the event kinds in
  `EVENT_KINDS` (cart adds, purchases, page views, email opens and clicks,
  support tickets), up to `as_of`, keyed to customers through `identity_map`.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

__all__ = [
    "BASE_TABLE",
    "EVENTS_TABLE",
    "EVENT_KINDS",
    "OPERATORS",
    "Catalog",
    "EventKind",
    "data_clock",
    "prepare",
    "warehouse_tables",
]

BASE_TABLE = "_segment_base"
EVENTS_TABLE = "_segment_events"

OPERATORS = (
    "=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", "contains",
    "is_null", "not_null", "within_days", "before_days",
)  # fmt: skip

_NULL_OPS = {"is_null", "not_null"}
_KIND_OPERATORS = {
    "number": {"=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in"} | _NULL_OPS,
    "boolean": {"=", "!="} | _NULL_OPS,
    "text": {"=", "!=", "in", "not_in"} | _NULL_OPS,
    "time": {"within_days", "before_days"} | _NULL_OPS,
    "list": {"contains"} | _NULL_OPS,
    "other": _NULL_OPS,
}
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL",
                  "DECIMAL")  # fmt: skip


@dataclass(frozen=True)
class EventKind:
    """An event kind: SQL parts giving `(customer_id, occurred_at)`, each with the tables it reads.

    The kind exists when the first part's tables do; further parts join in when theirs do.
    """

    parts: tuple[tuple[tuple[str, ...], str], ...]

    @property
    def tables(self) -> tuple[str, ...]:
        return self.parts[0][0]


def _via_map(source: str, table: str, key: str, at: str, where: str = "TRUE") -> str:
    return (
        f"SELECT m.customer_id, r.{at} AS occurred_at FROM {table} r JOIN identity_map m "
        f"ON m.source = '{source}' AND m.record_key = r.{key} WHERE {where}"
    )


def _track(event: str) -> str:
    return f"r.type = 'track' AND r.event = '{event}'"


EVENT_KINDS: dict[str, EventKind] = {
    "cart_add": EventKind(
        ((("raw_events",), _via_map("events", "raw_events", "message_id", "timestamp",
                                    _track("Product Added"))),)
    ),
    # Orders are the system of record; an `Order Completed` event counts only for an
    # order that never reached raw_orders.
    "purchase": EventKind(
        (
            (("raw_orders",), _via_map("orders", "raw_orders", "order_id", "ordered_at")),
            (("raw_orders", "raw_events"), _via_map(
                "events", "raw_events", "message_id", "timestamp",
                _track("Order Completed") + " AND NOT EXISTS (SELECT 1 FROM raw_orders o "
                "WHERE o.order_id = r.properties->>'order_id')")),
        )
    ),
    "page_view": EventKind(
        ((("raw_events",), _via_map("events", "raw_events", "message_id", "timestamp",
                                    "r.type IN ('page', 'screen')")),)
    ),
    "email_open": EventKind(
        ((("raw_email_events",), _via_map("email_events", "raw_email_events", "email_event_id",
                                          "occurred_at", "r.event_type = 'open'")),)
    ),
    "email_click": EventKind(
        ((("raw_email_events",), _via_map("email_events", "raw_email_events", "email_event_id",
                                          "occurred_at", "r.event_type = 'click'")),)
    ),
    "support_ticket": EventKind(
        ((("raw_support_tickets",), _via_map("support_tickets", "raw_support_tickets",
                                             "ticket_id", "created_at")),)
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Catalog:
    """What rules may name at one evaluation: fields with their kind, and available events."""

    as_of: datetime
    fields: dict[str, str]
    events: frozenset[str]
    missing: dict[str, str] = field(default_factory=dict)
    """Field prefixes whose table the warehouse lacks, with the table's name."""

    def numeric_fields(self, pattern: str) -> list[str]:
        """Numeric and boolean fields matching `pattern` (a name, or a glob such as `order.*`)."""
        return [
            name
            for name, kind in self.fields.items()
            if kind in ("number", "boolean") and fnmatch.fnmatchcase(name, pattern)
        ]

    def check_condition(self, name: str, op: str, value: object) -> list[str]:
        """What is wrong with `name op value` (empty when nothing is)."""
        kind = self.fields.get(name)
        if kind is None:
            prefix = name.split(".", 1)[0]
            if prefix in self.missing:
                return [f"field {name!r}: the warehouse has no {self.missing[prefix]} table yet"]
            close = difflib.get_close_matches(name, self.fields, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            return [f"unknown field {name!r}{hint}"]
        if op not in _KIND_OPERATORS[kind]:
            allowed = ", ".join(sorted(_KIND_OPERATORS[kind]))
            return [f"field {name!r} is {kind}: operator {op!r} does not apply (use {allowed})"]
        problem = _value_problem(kind, op, value)
        return [f"field {name!r} ({kind}) {op}: {problem}, got {value!r}"] if problem else []


def _value_problem(kind: str, op: str, value: object) -> str | None:
    if op in _NULL_OPS:
        return None if value is None else "takes no value"
    if op in ("within_days", "before_days"):
        ok = _is_number(value) and value > 0  # type: ignore[operator]
        return None if ok else "needs a positive number of days"
    if op == "contains":
        return None if isinstance(value, str) else "needs a text value"
    scalar = {"number": _is_number, "boolean": _is_bool, "text": _is_text}[kind]
    if op == "between":
        ok = isinstance(value, list) and len(value) == 2 and all(map(scalar, value))
        return None if ok else f"needs a list of two {kind} values [low, high]"
    if op in ("in", "not_in"):
        ok = isinstance(value, list) and len(value) > 0 and all(map(scalar, value))
        return None if ok else f"needs a non-empty list of {kind} values"
    return None if scalar(value) else f"needs a {kind} value"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _kind(duckdb_type: str) -> str:
    if duckdb_type.endswith("[]"):
        return "list"
    base = duckdb_type.split("(", 1)[0]
    if base == "BOOLEAN":
        return "boolean"
    if base in _NUMERIC_TYPES:
        return "number"
    if base.startswith("TIMESTAMP") or base == "DATE":
        return "time"
    return "text" if base == "VARCHAR" else "other"


def warehouse_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views in the warehouse's main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def data_clock(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest event or order time in the warehouse: "now" for data that is not live."""
    tables = warehouse_tables(con)
    parts = [
        f"SELECT max({column}) AS t FROM {table}"
        for table, column in (("raw_events", "timestamp"), ("raw_orders", "ordered_at"))
        if table in tables
    ]
    if not parts:
        return None
    return con.execute(f"SELECT max(t) FROM ({' UNION ALL '.join(parts)})").fetchone()[0]


def prepare(con: duckdb.DuckDBPyConnection, *, as_of: datetime) -> Catalog:
    """Build the evaluation tables for `as_of` and return what they offer."""
    tables = warehouse_tables(con)
    if "profiles" not in tables:
        raise LookupError("the warehouse has no profiles table: run `cip resolve` first")
    sources = {"profile": "profiles"}
    missing = {}
    if "current_scores" in tables:
        sources["scores"] = "current_scores"
    else:
        missing["scores"] = "current_scores"
    stamp = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S.%f}'"
    for table in sorted(tables):
        if table.startswith("customer_") and table.endswith("_features"):
            group = table.removeprefix("customer_").removesuffix("_features")
            if group in ("profile", "scores"):  # the golden record and scores keep their names
                group = f"{group}_features"
            sources[group] = (
                f"(SELECT * FROM {table} WHERE event_timestamp <= {stamp} QUALIFY row_number() "
                "OVER (PARTITION BY customer_id ORDER BY event_timestamp DESC) = 1)"
            )
    columns, joins, fields = ['"profile".customer_id'], [], {}
    for alias, relation in sources.items():
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        for name, duckdb_type, *_ in described:
            if name in ("customer_id", "event_timestamp"):
                continue
            qualified = f"{alias}.{name}"
            columns.append(f'"{alias}"."{name}" AS "{qualified}"')
            fields[qualified] = _kind(duckdb_type)
        if alias != "profile":
            joins.append(f'LEFT JOIN {relation} AS "{alias}" USING (customer_id)')
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {BASE_TABLE} AS SELECT {', '.join(columns)} "
        f'FROM profiles AS "profile" {" ".join(joins)}'
    )
    events = {
        kind: [sql for needs, sql in spec.parts if set(needs) <= tables]
        for kind, spec in EVENT_KINDS.items()
        if set(spec.tables) <= tables and "identity_map" in tables
    }
    union = " UNION ALL ".join(
        f"SELECT customer_id, '{kind}' AS kind, occurred_at FROM ({sql})"
        for kind, parts in events.items()
        for sql in parts
    )
    body = union or "SELECT NULL AS customer_id, NULL AS kind, NULL::TIMESTAMP AS occurred_at"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {EVENTS_TABLE} AS SELECT * FROM ({body}) "
        f"WHERE occurred_at <= {stamp}"
    )
    return Catalog(as_of=as_of, fields=fields, events=frozenset(events), missing=missing)
