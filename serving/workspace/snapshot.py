"""What the workspace reads from the warehouse, without holding it open.

`Snapshot` keeps the segment evaluation tables (`segments.fields.prepare`) in an in-memory
DuckDB, built from the warehouse attached read-only and detached again, so that a stage
(`cip segments`, the collector's loader) can write meanwhile. They are rebuilt when the
warehouse file changes. A live preview evaluates a draft definition over them with the
segments package's own evaluator (`segments.evaluate_prepared`); the member lists read
names, masked contacts and scores from them too. `read` answers one query on a fresh
read-only attachment (segment runs, membership, the delivery log).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pandas as pd

from segments.definition import SegmentDefinition, validate_definitions
from segments.evaluate import evaluate_prepared
from segments.fields import BASE_TABLE, Catalog, data_clock, prepare
from segments.membership import utc_now

__all__ = ["Person", "Preview", "Snapshot", "WarehouseBusy", "mask_email", "mask_phone", "read"]


class WarehouseBusy(RuntimeError):
    """The warehouse cannot be read now (missing, or held by a writer); the message says why."""


@dataclass(frozen=True)
class Person:
    """A member as a marketer sees one: no raw contact details."""

    customer_id: str
    name: str
    contact: str
    churn_probability: float | None
    predicted_value: float | None
    reasons: list[str]


@dataclass(frozen=True)
class Preview:
    """A draft segment's size now, a sample of its members, and how long it took."""

    size: int
    population: int
    sample: list[Person]
    as_of: datetime
    seconds: float


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


def _attach(con: duckdb.DuckDBPyConnection, warehouse: Path, *, tries: int = 10) -> None:
    """Attach the warehouse read-only as `con`'s default catalog, retrying while a writer
    holds it for a moment."""
    if not warehouse.exists():
        raise WarehouseBusy(f"no warehouse at {warehouse} yet: run `cip run` first")
    for attempt in range(tries):
        try:
            con.execute(f"ATTACH '{warehouse}' AS wh (READ_ONLY)")
            break
        except duckdb.Error as error:
            if attempt == tries - 1:
                raise WarehouseBusy(
                    f"the warehouse is busy (a stage is writing it): {error}"
                ) from error
            time.sleep(0.1 * (attempt + 1))
    con.execute("USE wh; SET TimeZone = 'UTC'; SET enable_progress_bar = false")


@contextmanager
def _attached(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection with the warehouse attached read-only."""
    con = duckdb.connect()
    try:
        _attach(con, warehouse)
        yield con
    finally:
        con.close()


def read(warehouse: Path, sql: str, params: Sequence[object] | dict | None = None) -> pd.DataFrame:
    """One query's answer from the warehouse, attached read-only for just that query."""
    with _attached(warehouse) as con:
        return con.execute(sql, params or []).df()


def _version(warehouse: Path) -> tuple[int, ...]:
    """Changes whenever a writer touches the warehouse (the file or its write-ahead log)."""
    parts = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            stat = os.stat(path)
            parts += [stat.st_mtime_ns, stat.st_size]
        except FileNotFoundError:
            parts += [0, 0]
    return tuple(parts)


class Snapshot:
    """The evaluation tables of the warehouse, in memory, rebuilt when it changes."""

    def __init__(self, *, warehouse: Path, as_of: datetime | None = None) -> None:
        self.warehouse = warehouse
        self.as_of = as_of
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._catalog: Catalog | None = None
        self._version: tuple[int, ...] | None = None

    def catalog(self) -> Catalog:
        with self._lock:
            return self._fresh()[1]

    def preview(
        self,
        definition: SegmentDefinition,
        *,
        saved: Sequence[SegmentDefinition],
        sample: int = 10,
    ) -> Preview:
        """Validate `definition` (with the saved ones it excludes) exactly as `cip segments`
        does, then count and sample its members (`segments.DefinitionError` if invalid)."""
        started = time.perf_counter()
        needed = _with_exclusions(definition, saved)
        with self._lock:
            con, catalog = self._fresh()
            validate_definitions(needed, catalog=catalog)
            members = evaluate_prepared(con, definitions=needed, catalog=catalog)
            found = members[definition.name]
            population = con.execute(f"SELECT count(*) FROM {BASE_TABLE}").fetchone()[0]
            people = self._people(con, catalog, list(found[:sample]))
        return Preview(len(found), population, people, catalog.as_of, time.perf_counter() - started)

    def members(
        self, definition: SegmentDefinition, *, saved: Sequence[SegmentDefinition]
    ) -> pd.Index:
        """Every member of `definition` now (checked as `preview` checks it)."""
        needed = _with_exclusions(definition, saved)
        with self._lock:
            con, catalog = self._fresh()
            validate_definitions(needed, catalog=catalog)
            return evaluate_prepared(con, definitions=needed, catalog=catalog)[definition.name]

    def people(self, customer_ids: Sequence[object]) -> list[Person]:
        """Names, masked contacts, scores and top reasons of `customer_ids`, in that order."""
        with self._lock:
            con, catalog = self._fresh()
            return self._people(con, catalog, list(customer_ids))

    def _fresh(self) -> tuple[duckdb.DuckDBPyConnection, Catalog]:
        """The evaluation tables, rebuilt first if the warehouse changed since."""
        version = _version(self.warehouse)
        if self._con is None or version != self._version:
            con = duckdb.connect()
            try:
                _attach(con, self.warehouse)
                catalog = prepare(con, as_of=self.as_of or data_clock(con) or utc_now())
                # The temporary tables stay when the warehouse goes: its file is free again.
                con.execute("USE memory; DETACH wh")
            except LookupError as error:
                con.close()
                raise WarehouseBusy(str(error)) from error
            except BaseException:
                con.close()
                raise
            if self._con is not None:
                self._con.close()
            self._con, self._catalog, self._version = con, catalog, version
        return self._con, self._catalog  # type: ignore[return-value]

    @staticmethod
    def _people(
        con: duckdb.DuckDBPyConnection, catalog: Catalog, ids: list[object]
    ) -> list[Person]:
        if not ids:
            return []
        wanted = {
            "first": "profile.first_name",
            "last": "profile.last_name",
            "emails": "profile.emails",
            "phones": "profile.phones",
            "churn": "scores.churn_probability",
            "value": "scores.predicted_ltv",
            "reasons": "scores.churn_reasons",
        }
        columns = ", ".join(
            f'b."{field}" AS {alias}' if field in catalog.fields else f"NULL AS {alias}"
            for alias, field in wanted.items()
        )
        frame = con.execute(
            f"SELECT b.customer_id, {columns} FROM {BASE_TABLE} b "
            "JOIN (SELECT unnest(?) AS customer_id, generate_subscripts(?, 1) AS position) o "
            "USING (customer_id) ORDER BY o.position",
            [ids, ids],
        ).fetchall()
        return [
            Person(
                customer_id=str(customer_id),
                name=" ".join(part for part in (first, last) if part) or "(no name)",
                contact=mask_email(_first(emails)) or mask_phone(_first(phones)),
                churn_probability=churn,
                predicted_value=value,
                reasons=_reason_names(reasons),
            )
            for customer_id, first, last, emails, phones, churn, value, reasons in frame
        ]


def _first(values: object) -> str | None:
    if isinstance(values, list):
        return values[0] if values else None
    return values if isinstance(values, str) else None


def _reason_names(reasons: object) -> list[str]:
    """`churn_reasons` JSON (`[{feature, value, effect}]`) as readable phrases."""
    if not reasons:
        return []
    items = orjson.loads(reasons) if isinstance(reasons, str | bytes) else reasons
    phrases = []
    for item in items or []:
        direction = "raises" if item.get("effect", 0) > 0 else "lowers"
        phrases.append(f"{item.get('feature')} {direction} risk")
    return phrases


def _with_exclusions(
    definition: SegmentDefinition, saved: Sequence[SegmentDefinition]
) -> list[SegmentDefinition]:
    """`definition` and every saved segment it excludes, directly or through another."""
    by_name = {d.name: d for d in saved if d.name != definition.name}
    needed, queue = {definition.name: definition}, [definition]
    while queue:
        current = queue.pop()
        for other in current.exclude.segments if current.exclude else ():
            if other in by_name and other not in needed:
                needed[other] = by_name[other]
                queue.append(by_name[other])
    return list(needed.values())
