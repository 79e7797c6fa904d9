"""The fields and events a segment rule can name, read from the warehouse as of a time.

`prepare` builds two temporary tables for one evaluation and returns the
`Catalog` of what they hold:

- `_segment_base`: one row per customer in `profiles`, with every profile
  column as `profile.<column>`, the current scores as `scores.<column>`, and the
  latest snapshot (at or before `as_of`) of each feature table
  `customer_<group>_features` as `<group>.<column>` (e.g. `order.avg_order_value`;
  the `profile` group's as `profile_features.<column>`), and `order.currency`: the currency
  of the customer's orders up to `as_of` (the most frequent), which a threshold in money
  per currency (`value: {USD: 80, RUB: 6000}`) compares in;
- `_segment_events`: `(customer_id, kind, occurred_at)` for the event kinds the
  source catalog declares (`event_kinds`: cart adds, purchases, page views, email
  opens and clicks, support tickets), up to `as_of`, keyed to customers through
  `identity_map`.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from warehouse.database import LOOKUP_KEYS, index_lookups
from warehouse.sources import SOURCES
from warehouse.tables import (
    CURRENT_SCORES,
    IDENTITY_MAP,
    PROFILES,
    STREAM_RECORDS,
    table_names,
)

__all__ = [
    "BASE_TABLE",
    "CURRENCY_FIELD",
    "EVENTS_TABLE",
    "OPERATORS",
    "Catalog",
    "EventSql",
    "data_clock",
    "event_kinds",
    "identities_sql",
    "prepare",
    "warehouse_tables",
]

BASE_TABLE = "_segment_base"
EVENTS_TABLE = "_segment_events"
CURRENCY_FIELD = "order.currency"
"""The customer's currency (of their orders): per-currency money thresholds compare in it."""
_SCOPED_IDENTITIES = "_segment_identities"

OPERATORS = (
    "=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in", "contains",
    "is_null", "not_null", "within_days", "before_days", "top_percent", "bottom_percent",
)  # fmt: skip

_NULL_OPS = {"is_null", "not_null"}
_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_KIND_OPERATORS = {
    "number": {"=", "!=", "<", "<=", ">", ">=", "between", "in", "not_in"}
    | {"top_percent", "bottom_percent"}
    | _NULL_OPS,
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
class EventSql:
    """One source's part of an event kind: SQL giving `(customer_id, occurred_at)`, and the
    tables it reads (it counts when they all exist)."""

    tables: tuple[str, ...]
    sql: str


def identities_sql(tables: set[str]) -> str:
    """The relation `(source, record_key, customer_id)` keying records to customers:
    `identity_map`, and the records the stream worker tied since resolution last ran
    (`stream_records`), so that batch and stream see the same events. The two never hold
    the same record: the worker ties only records the map lacks, and resolution deletes
    the ties of the records it maps."""
    if STREAM_RECORDS not in tables:
        return IDENTITY_MAP
    return (
        f"(SELECT source, record_key, customer_id FROM {IDENTITY_MAP} UNION ALL "
        f"SELECT source, record_key, customer_id FROM {STREAM_RECORDS})"
    )


def event_kinds(
    *, identities: str = IDENTITY_MAP, rows: dict[str, str] | None = None
) -> dict[str, list[EventSql]]:
    """Every event kind the source catalog declares, with each declaring source's part:
    its rows that match, keyed to customers through `identities` (`identities_sql`),
    dated by its time. `rows` names a relation to read instead of a raw table (the rows
    of the customers evaluated, `prepare`)."""
    kinds: dict[str, list[EventSql]] = {}
    for source in SOURCES.values():
        for kind, spec in source.events.items():
            relation = (rows or {}).get(source.table, source.table)
            sql = (
                f'SELECT m.customer_id, r."{source.time}" AS occurred_at FROM {relation} r '
                f"JOIN {identities} m ON m.source = '{source.name}' "
                f'AND m.record_key = r."{source.key}" WHERE {spec.where}'
            )
            needs = (source.table, *(SOURCES[name].table for name in spec.requires))
            kinds.setdefault(kind, []).append(EventSql(needs, sql))
    return kinds


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
        if isinstance(value, dict):
            problem = _money_problem(kind, op, value, currency=CURRENCY_FIELD in self.fields)
        else:
            problem = _value_problem(kind, op, value)
        return [f"field {name!r} ({kind}) {op}: {problem}, got {value!r}"] if problem else []


def _money_problem(kind: str, op: str, value: dict, *, currency: bool) -> str | None:
    """What is wrong with a per-currency threshold `{USD: 80, RUB: 6000}` (None if fine)."""
    if kind != "number" or op not in (_COMPARISONS | {"between"}):
        return "a threshold per currency takes a number field and =, !=, <, <=, >, >= or between"
    if not currency:
        return "a threshold per currency needs the orders' currency, and the warehouse has none"
    if not value:
        return "needs at least one currency"
    for code, amount in value.items():
        if not (isinstance(code, str) and _CURRENCY_CODE.fullmatch(code)):
            return f"currency {code!r} is not a three-letter ISO 4217 code such as USD"
        problem = _value_problem(kind, op, amount)
        if problem:
            return f"{code}: {problem}"
    return None


def _value_problem(kind: str, op: str, value: object) -> str | None:
    if op in _NULL_OPS:
        return None if value is None else "takes no value"
    if op in ("within_days", "before_days"):
        ok = _is_number(value) and value > 0  # type: ignore[operator]
        return None if ok else "needs a positive number of days"
    if op in ("top_percent", "bottom_percent"):
        ok = _is_number(value) and 0 < value <= 100  # type: ignore[operator]
        return None if ok else "needs a percentage above 0 and at most 100"
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


warehouse_tables = table_names


def _scoped_rows(
    con: duckdb.DuckDBPyConnection, *, tables: set[str], kinds: set[str] | None
) -> dict[str, str]:
    """The scoped customers' rows of each raw table that declares event kinds (of `kinds`,
    if given): raw table -> a temporary table of them. Each is fetched in a statement of its
    own, by the keys `_SCOPED_IDENTITIES` holds: for a few customers DuckDB answers it by
    lookups on the indexed key (`warehouse.database.index_lookups`), where the kinds'
    filters, pushed into the scan of the raw table, would have it read the whole table."""
    counts = con.execute(f"SELECT source, count(*) FROM {_SCOPED_IDENTITIES} GROUP BY ALL")
    records = dict(counts.fetchall())
    rows = {}
    for source in SOURCES.values():
        wanted = set(source.events) if kinds is None else set(source.events) & kinds
        # More keys than DuckDB looks up by index: the raw table itself reads no more.
        if wanted and source.table in tables and records.get(source.name, 0) <= LOOKUP_KEYS:
            rows[source.table] = f"_segment_rows_{source.name}"
            with index_lookups(con):
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {rows[source.table]} AS SELECT * FROM "
                    f'{source.table} WHERE "{source.key}" IN (SELECT record_key FROM '
                    f"{_SCOPED_IDENTITIES} WHERE source = '{source.name}')"
                )
    return rows


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ? AND column_name = ?",
            [table, column],
        ).fetchone()[0]
    )


def data_clock(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest event or order time in the warehouse: "now" for data that is not live."""
    tables = warehouse_tables(con)
    parts = [
        f'SELECT max("{s.time}") AS t FROM {s.table}'
        for s in (SOURCES["events"], SOURCES["orders"])
        if s.table in tables
    ]
    if not parts:
        return None
    return con.execute(f"SELECT max(t) FROM ({' UNION ALL '.join(parts)})").fetchone()[0]


def prepare(
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: datetime,
    customers: str | None = None,
    kinds: set[str] | None = None,
    groups: set[str] | None = None,
) -> Catalog:
    """Build the evaluation tables for `as_of` and return what they offer; with `customers`
    (a relation with a `customer_id` column), for those customers only, and with `kinds`
    and `groups`, only those event kinds and field groups (the stream worker's evaluation
    of the customers a batch of events concerns, for the rules it evaluates; the catalog
    then offers only these).

    Customers are `profiles`, and the provisional customers the stream worker made up for
    identifiers resolution has not seen yet (every profile field null)."""
    tables = warehouse_tables(con)
    if PROFILES not in tables:
        raise LookupError(f"the warehouse has no {PROFILES} table: run `cip resolve` first")
    scope = f"customer_id IN (SELECT customer_id FROM {customers})" if customers else "TRUE"
    people = f"SELECT * FROM {PROFILES} WHERE {scope}"
    if STREAM_RECORDS in tables:
        people += (
            f" UNION ALL BY NAME SELECT DISTINCT customer_id FROM {STREAM_RECORDS} "
            f"WHERE provisional AND {scope} "
            f"AND customer_id NOT IN (SELECT customer_id FROM {PROFILES})"
        )
    people = f"({people})"
    sources = {"profile": people}
    missing = {}
    if CURRENT_SCORES in tables:
        sources["scores"] = CURRENT_SCORES
    else:
        missing["scores"] = CURRENT_SCORES
    stamp = f"TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S.%f}'"
    for table in sorted(tables):
        if table.startswith("customer_") and table.endswith("_features"):
            group = table.removeprefix("customer_").removesuffix("_features")
            if group in ("profile", "scores"):  # the golden record and scores keep their names
                group = f"{group}_features"
            sources[group] = (
                f"(SELECT * FROM {table} WHERE event_timestamp <= {stamp} AND {scope} "
                "QUALIFY row_number() "
                "OVER (PARTITION BY customer_id ORDER BY event_timestamp DESC) = 1)"
            )
    orders = SOURCES["orders"]
    if (
        orders.table in tables
        and IDENTITY_MAP in tables
        and _has_column(con, orders.table, "currency")
    ):
        sources["order_currency"] = (
            f"(SELECT m.customer_id, mode(o.currency) AS currency FROM {orders.table} o "
            f"JOIN {IDENTITY_MAP} m ON m.source = '{orders.name}' "
            f'AND m.record_key = o."{orders.key}" '
            f'WHERE o."{orders.time}" <= {stamp} AND o.currency IS NOT NULL GROUP BY ALL)'
        )
    if groups is not None:
        sources = {a: r for a, r in sources.items() if a == "profile" or a in groups}
    columns, joins, fields = ['"profile".customer_id'], [], {}
    for alias, relation in sources.items():
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        for name, duckdb_type, *_ in described:
            if name in ("customer_id", "event_timestamp"):
                continue
            qualified = CURRENCY_FIELD if alias == "order_currency" else f"{alias}.{name}"
            columns.append(f'"{alias}"."{name}" AS "{qualified}"')
            fields[qualified] = _kind(duckdb_type)
        if alias != "profile":
            joins.append(f'LEFT JOIN {relation} AS "{alias}" USING (customer_id)')
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {BASE_TABLE} AS SELECT {', '.join(columns)} "
        f'FROM {people} AS "profile" {" ".join(joins)}'
    )
    identities = identities_sql(tables) if IDENTITY_MAP in tables else IDENTITY_MAP
    rows = None
    if customers and IDENTITY_MAP in tables:  # the customers' records first: a small join
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_SCOPED_IDENTITIES} AS "
            f"SELECT * FROM {identities} m WHERE {scope}"
        )
        identities = _SCOPED_IDENTITIES
        rows = _scoped_rows(con, tables=tables, kinds=kinds)
    found = {
        kind: [part.sql for part in parts if set(part.tables) <= tables]
        for kind, parts in event_kinds(identities=identities, rows=rows).items()
        if IDENTITY_MAP in tables
    }
    events = {kind: parts for kind, parts in found.items() if parts}
    counted = {k: v for k, v in events.items() if kinds is None or k in kinds}
    union = " UNION ALL ".join(
        f"SELECT customer_id, '{kind}' AS kind, occurred_at FROM ({sql})"
        for kind, parts in counted.items()
        for sql in parts
    )
    body = union or "SELECT NULL AS customer_id, NULL AS kind, NULL::TIMESTAMP AS occurred_at"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {EVENTS_TABLE} AS SELECT * FROM ({body}) "
        f"WHERE occurred_at <= {stamp} AND {scope}"
    )
    return Catalog(as_of=as_of, fields=fields, events=frozenset(events), missing=missing)
