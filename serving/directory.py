"""The customer directory: which customer a request names, and what we know of them.

A read-only, in-memory snapshot of the warehouse's `customer_identifiers`, `profiles` and
open `segment_membership` rows, plus the ids that resolution merged into others (from
`customer_id_changes`), so that a caller holding an old customer_id still reaches the
customer. The service never holds the warehouse open (DuckDB allows
one writing process per file, and that is the pipeline): it copies these tables at
start-up and again when their fingerprint (`warehouse_version`) changes. A request's
identifier is normalized once, exactly as resolution normalizes it, then looked up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from resolution import normalize
from warehouse.schemas import LOOKUP_ID_TYPES
from warehouse.tables import CUSTOMER_ID_CHANGES, CUSTOMER_IDENTIFIERS, PROFILES, SEGMENT_MEMBERSHIP

__all__ = [
    "ID_TYPES",
    "Directory",
    "DirectoryUnavailable",
    "InvalidIdentifier",
    "load_directory",
    "warehouse_version",
]

ID_TYPES = ("customer_id", *LOOKUP_ID_TYPES)
"""The identifiers a caller may name a customer by, in order of preference."""

_CUSTOMERS_SQL = f"""
SELECT p.*, coalesce(i.identifiers, []) AS identifiers, coalesce(s.segments, []) AS segments
FROM wh.{PROFILES} AS p
LEFT JOIN (
    SELECT customer_id, list({{'id_type': id_type, 'id_value': id_value}}
                             ORDER BY id_type, id_value) AS identifiers
    FROM wh.{CUSTOMER_IDENTIFIERS} GROUP BY customer_id
) AS i USING (customer_id)
LEFT JOIN (
    SELECT customer_id, list(DISTINCT segment ORDER BY segment) AS segments
    FROM {{membership}} GROUP BY customer_id
) AS s USING (customer_id)
"""
_MERGES_SQL = f"""
SELECT other_customer_id, customer_id FROM wh.{CUSTOMER_ID_CHANGES}
WHERE change_type = 'merged'
QUALIFY row_number() OVER (PARTITION BY other_customer_id ORDER BY changed_at DESC) = 1
"""
_OPEN_MEMBERSHIP = f"(SELECT * FROM wh.{SEGMENT_MEMBERSHIP} WHERE exited_at IS NULL)"
_NO_MEMBERSHIP = "(SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS segment LIMIT 0)"


class DirectoryUnavailable(RuntimeError):
    """The warehouse lacks what the directory needs (the reason is the message)."""


class InvalidIdentifier(ValueError):
    """A value that is no valid identifier of its type (an e-mail without `@`, ...)."""


@dataclass(frozen=True)
class Directory:
    """Identifier index, golden records, linked identities and segments, all in memory."""

    customers: pa.Table
    index: dict[str, int]
    identifiers: dict[tuple[str, str], str]
    merged_into: dict[str, str]
    normalizers: dict[str, Callable[[str], str | None]]
    version: tuple[object, ...]
    loaded_at: datetime

    def find(self, id_type: str, value: str) -> str | None:
        """The customer_id an identifier belongs to, or None if nobody has it;
        `InvalidIdentifier` when `value` is no valid `id_type` at all."""
        key = self.normalizers[id_type](value)
        if key is None:
            raise InvalidIdentifier(f"{id_type} is not a valid {id_type.replace('_', ' ')}")
        if id_type == "customer_id":
            return self._survivor(key)
        return self.identifiers.get((id_type, key))

    def _survivor(self, customer_id: str) -> str | None:
        """`customer_id` itself, or the customer it was merged into (through any chain)."""
        seen = set()
        while customer_id not in self.index:
            if customer_id in seen or customer_id not in self.merged_into:
                return None
            seen.add(customer_id)
            customer_id = self.merged_into[customer_id]
        return customer_id

    def segments(self, customer_id: str) -> list[str]:
        """The segments a customer is in now (empty before segments exist)."""
        return self.customers.column("segments")[self.index[customer_id]].as_py()

    def profile(self, customer_id: str) -> dict[str, Any]:
        """The golden record with its linked identities and segments."""
        return self.customers.slice(self.index[customer_id], 1).to_pylist()[0]


def warehouse_version(*, warehouse: Path) -> tuple[object, ...]:
    """A cheap fingerprint of the lookup tables: it changes when a stage rewrites them."""
    with _attached(warehouse) as (con, tables):
        return _version(con, tables)


def load_directory(*, warehouse: Path, default_region: str) -> Directory:
    """Copy the lookup tables out of the warehouse (opened read-only, then closed)."""
    with _attached(warehouse) as (con, tables):
        version = _version(con, tables)
        membership = _OPEN_MEMBERSHIP if SEGMENT_MEMBERSHIP in tables else _NO_MEMBERSHIP
        customers = con.sql(_CUSTOMERS_SQL.replace("{membership}", membership)).to_arrow_table()
        pairs = con.sql(
            f"SELECT id_type, id_value, customer_id FROM wh.{CUSTOMER_IDENTIFIERS}"
        ).fetchall()
        merges = con.sql(_MERGES_SQL).fetchall() if CUSTOMER_ID_CHANGES in tables else []
    return Directory(
        customers=customers,
        index={cid: i for i, cid in enumerate(customers.column("customer_id").to_pylist())},
        identifiers={(t, v): cid for t, v, cid in pairs},
        merged_into=dict(merges),
        normalizers=_normalizers(default_region),
        version=version,
        loaded_at=datetime.now(UTC),
    )


@contextmanager
def _attached(warehouse: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, set[str]]]:
    """An in-memory connection with the warehouse attached read-only, and its table names."""
    if not warehouse.exists():
        raise DirectoryUnavailable(f"no warehouse at {warehouse}: run `cip run` first")
    con = duckdb.connect()
    try:
        _attach(con, warehouse)
        tables = {
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = 'wh'"
                " UNION SELECT view_name FROM duckdb_views() WHERE database_name = 'wh'"
            ).fetchall()
        }
        missing = {PROFILES, CUSTOMER_IDENTIFIERS} - tables
        if missing:
            raise DirectoryUnavailable(
                f"the warehouse has no {', '.join(sorted(missing))} table yet: run `cip resolve`"
            )
        yield con, tables
    except duckdb.Error as exc:
        raise DirectoryUnavailable(f"cannot read the lookup tables: {exc}") from exc
    finally:
        con.close()


def _attach(con: duckdb.DuckDBPyConnection, warehouse: Path, *, tries: int = 5) -> None:
    """Attach read-only, retrying briefly: a writer (the collector's loader, a stage) holds
    the file for a moment at a time."""
    for attempt in range(tries):
        try:
            con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
            return
        except duckdb.Error:
            if attempt == tries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _version(con: duckdb.DuckDBPyConnection, tables: set[str]) -> tuple[object, ...]:
    parts = [
        f"(SELECT count(*) FROM wh.{PROFILES})",
        f"(SELECT max(updated_at) FROM wh.{PROFILES})",
        f"(SELECT count(*) FROM wh.{CUSTOMER_IDENTIFIERS})",
    ]
    if CUSTOMER_ID_CHANGES in tables:
        parts.append(f"(SELECT count(*) FROM wh.{CUSTOMER_ID_CHANGES})")
    if SEGMENT_MEMBERSHIP in tables:
        parts.append(f"(SELECT count(*) || '/' || count(exited_at) FROM wh.{SEGMENT_MEMBERSHIP})")
    return con.execute(f"SELECT {', '.join(parts)}").fetchall()[0]


def _normalizers(default_region: str) -> dict[str, Callable[[str], str | None]]:
    return {
        "customer_id": _stripped,
        "email": normalize.email,
        "phone": lambda value: normalize.phone(value, default_region),
        "user_id": _stripped,
        "anonymous_id": _stripped,
    }


def _stripped(value: str) -> str | None:
    return value.strip() or None
