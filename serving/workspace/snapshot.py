"""What the workspace reads from the warehouse, copied into memory so it never holds it open.

DuckDB lets one process write a file while nobody else has it open, and stages (`cip
segments`, `cip run`, the collector's loader) must be able to write the warehouse at any
time; so the workspace never keeps it attached. `Snapshot` holds two in-memory copies,
each made on one read-only attachment that is detached again at once, and remade when the
warehouse file changes (its inode, size or modification time, or its write-ahead log's: a
write, a checkpoint, or a compaction that renames a new file in all change them):

- the pages' copy (small): segment runs, open memberships, the delivery log, and every
  profile's name, masked contact and scores (`segments.people`). A segment page and the
  segments list are answered from it alone;
- the evaluation copy (`segments.fields.prepare`'s tables), made only when the builder is
  used: a live preview evaluates a draft over it with the segments package's own evaluator.

While a writer holds the file, the previous copy keeps answering (the change is read once
the writer lets go); with no copy yet the request waits briefly, then `WarehouseBusy`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb
import pandas as pd

from segments.definition import SegmentDefinition, validate_definitions
from segments.evaluate import evaluate_prepared
from segments.fields import BASE_TABLE, Catalog, data_clock, prepare
from segments.membership import utc_now
from segments.people import Person, people_of, people_sql
from warehouse.tables import ACTIVATION_LOG, SEGMENT_MEMBERSHIP, SEGMENT_RUNS, table_names

__all__ = ["Preview", "SegmentView", "Snapshot", "WarehouseBusy"]

T = TypeVar("T")

RUN_COLUMNS = ["run_id", "segment", "evaluated_at", "as_of", "size", "entered", "exited"]
_DELIVERY_COLUMNS = (
    "destination VARCHAR, destination_type VARCHAR, mode VARCHAR, row_count BIGINT, "
    "withheld_no_consent BIGINT, status VARCHAR, error VARCHAR, target VARCHAR, "
    "finished_at TIMESTAMP, segment VARCHAR"
)
_DELIVERIES_SHOWN = 20


class WarehouseBusy(RuntimeError):
    """The warehouse cannot be read now (missing, or held by a writer); the message says why."""


@dataclass(frozen=True)
class Preview:
    """A draft segment's size now, a sample of its members, and how long it took."""

    size: int
    population: int
    sample: list[Person]
    as_of: datetime
    seconds: float


@dataclass(frozen=True)
class SegmentView:
    """What a segment page shows, all from one copy of the warehouse."""

    history: pd.DataFrame
    """Its runs, oldest first (`RUN_COLUMNS`)."""
    size: int
    """Members now (open stays)."""
    people: list[Person]
    """The newest `shown` members."""
    entered: dict[str, datetime]
    """When each shown member entered."""
    deliveries: list[dict[str, Any]]
    """The latest deliveries, newest first."""


def _version(warehouse: Path) -> tuple[int, ...]:
    """Changes whenever a writer touches the warehouse (the file or its write-ahead log)."""
    parts = []
    for path in (warehouse, warehouse.with_name(warehouse.name + ".wal")):
        try:
            stat = os.stat(path)
            parts += [stat.st_ino, stat.st_size, stat.st_mtime_ns]
        except FileNotFoundError:
            parts += [0, 0, 0]
    return tuple(parts)


class _Copy(Generic[T]):
    """An in-memory DuckDB filled from the warehouse by `build`, remade when it changes."""

    def __init__(self, warehouse: Path, build: Callable[[duckdb.DuckDBPyConnection], T]) -> None:
        self.warehouse = warehouse
        self.build = build
        self.lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._made: T | None = None
        self._version: tuple[int, ...] | None = None

    def fresh(self) -> tuple[duckdb.DuckDBPyConnection, T]:
        """The copy, remade first if the warehouse changed since (call with `lock` held)."""
        version = _version(self.warehouse)  # before reading: a later change remakes it again
        if self._con is not None and version == self._version:
            return self._con, self._made  # type: ignore[return-value]
        if not self.warehouse.exists():
            raise WarehouseBusy(f"no warehouse at {self.warehouse} yet: run `cip run` first")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
            if not self._attach(con, tries=1 if self._con is not None else 10):
                con.close()  # a writer holds it: the previous copy answers meanwhile
                return self._con, self._made  # type: ignore[return-value]
            made = self.build(con)
            # The copied tables stay when the warehouse goes: its file is free again.
            con.execute("USE memory; DETACH wh")
        except BaseException:
            con.close()
            raise
        if self._con is not None:
            self._con.close()
        self._con, self._made, self._version = con, made, version
        return con, made

    def _attach(self, con: duckdb.DuckDBPyConnection, *, tries: int) -> bool:
        """Attach the warehouse read-only as `con`'s default catalog; False if a writer
        still holds it after `tries`, and WarehouseBusy then when there is no copy yet."""
        for attempt in range(tries):
            try:
                con.execute(f"ATTACH '{self.warehouse}' AS wh (READ_ONLY); USE wh")
                return True
            except duckdb.Error as error:
                if attempt == tries - 1:
                    if self._con is not None:
                        return False
                    raise WarehouseBusy(
                        f"the warehouse is busy (a stage is writing it): {error}"
                    ) from error
                time.sleep(0.1 * (attempt + 1))
        return False


def _copy_pages(con: duckdb.DuckDBPyConnection) -> None:
    """Copy what the pages show into memory."""
    tables = table_names(con)
    copies = {
        "pages_runs": (
            SEGMENT_RUNS,
            f"SELECT {', '.join(RUN_COLUMNS)} FROM {SEGMENT_RUNS}",
            "run_id VARCHAR, segment VARCHAR, evaluated_at TIMESTAMP, as_of TIMESTAMP, "
            "size BIGINT, entered BIGINT, exited BIGINT",
        ),
        "pages_members": (
            SEGMENT_MEMBERSHIP,
            f"SELECT segment, customer_id::VARCHAR AS customer_id, entered_at "
            f"FROM {SEGMENT_MEMBERSHIP} WHERE exited_at IS NULL",
            "segment VARCHAR, customer_id VARCHAR, entered_at TIMESTAMP",
        ),
        "pages_deliveries": (
            ACTIVATION_LOG,
            f"SELECT {', '.join(c.split()[0] for c in _DELIVERY_COLUMNS.split(', '))} "
            f"FROM {ACTIVATION_LOG}",
            _DELIVERY_COLUMNS,
        ),
    }
    for name, (table, sql, columns) in copies.items():
        if table in tables:
            con.execute(f"CREATE TABLE memory.{name} AS {sql}")
        else:
            con.execute(f"CREATE TABLE memory.{name} ({columns})")
    sql, params = people_sql(con)
    con.execute(f"CREATE TABLE memory.pages_people AS {sql}", params)


def _prepare(as_of: datetime | None) -> Callable[[duckdb.DuckDBPyConnection], Catalog]:
    def build(con: duckdb.DuckDBPyConnection) -> Catalog:
        try:
            return prepare(con, as_of=as_of or data_clock(con) or utc_now())
        except LookupError as error:
            raise WarehouseBusy(str(error)) from error

    return build


class Snapshot:
    """The warehouse as the workspace reads it: the pages' copy and the evaluation copy."""

    def __init__(self, *, warehouse: Path, as_of: datetime | None = None) -> None:
        self.warehouse = warehouse
        self._pages = _Copy(warehouse, _copy_pages)
        self._evaluation = _Copy(warehouse, _prepare(as_of))

    # -- the pages ----------------------------------------------------------------------

    def history(self, segment: str | None = None) -> pd.DataFrame:
        """Every run (or one segment's), oldest first; empty before the first refresh."""
        with self._pages.lock:
            con, _ = self._pages.fresh()
            return _runs(con, segment)

    def segment(self, name: str, *, shown: int) -> SegmentView:
        """A segment's runs, size, newest `shown` members and latest deliveries."""
        with self._pages.lock:
            con, _ = self._pages.fresh()
            size = con.execute(
                "SELECT count(*) FROM pages_members WHERE segment = ?", [name]
            ).fetchone()[0]
            newest = con.execute(
                "SELECT customer_id, entered_at FROM pages_members WHERE segment = ? "
                "ORDER BY entered_at DESC, customer_id LIMIT ?",
                [name, shown],
            ).fetchall()
            deliveries = con.execute(
                f"SELECT * EXCLUDE (segment) FROM pages_deliveries WHERE segment = ? "
                f"ORDER BY finished_at DESC LIMIT {_DELIVERIES_SHOWN}",
                [name],
            ).df()
            return SegmentView(
                history=_runs(con, name),
                size=size,
                people=_people(con, [cid for cid, _ in newest]),
                entered=dict(newest),
                deliveries=deliveries.to_dict("records"),
            )

    def member_people(self, name: str) -> list[Person]:
        """Every member of `name` now, newest first (the CSV download)."""
        with self._pages.lock:
            con, _ = self._pages.fresh()
            ids = con.execute(
                "SELECT customer_id FROM pages_members WHERE segment = ? "
                "ORDER BY entered_at DESC, customer_id",
                [name],
            ).fetchall()
            return _people(con, [cid for (cid,) in ids])

    def people(self, customer_ids: Sequence[object]) -> list[Person]:
        """Names, masked contacts, scores and top reasons of `customer_ids`, in that order."""
        with self._pages.lock:
            con, _ = self._pages.fresh()
            return _people(con, customer_ids)

    # -- the builder --------------------------------------------------------------------

    def catalog(self) -> Catalog:
        with self._evaluation.lock:
            return self._evaluation.fresh()[1]

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
        with self._evaluation.lock:
            con, catalog = self._evaluation.fresh()
            validate_definitions(needed, catalog=catalog)
            found = evaluate_prepared(con, definitions=needed, catalog=catalog)[definition.name]
            population = con.execute(f"SELECT count(*) FROM {BASE_TABLE}").fetchone()[0]
        people = self.people(list(found[:sample])) if sample else []
        return Preview(len(found), population, people, catalog.as_of, time.perf_counter() - started)

    def members(
        self, definition: SegmentDefinition, *, saved: Sequence[SegmentDefinition]
    ) -> pd.Index:
        """Every member of `definition` now (checked as `preview` checks it)."""
        needed = _with_exclusions(definition, saved)
        with self._evaluation.lock:
            con, catalog = self._evaluation.fresh()
            validate_definitions(needed, catalog=catalog)
            return evaluate_prepared(con, definitions=needed, catalog=catalog)[definition.name]


def _people(con: duckdb.DuckDBPyConnection, customer_ids: Sequence[object]) -> list[Person]:
    ids = [str(c) for c in customer_ids]
    frame = con.execute(
        "SELECT * FROM pages_people WHERE customer_id IN (SELECT unnest(?))", [ids]
    ).df()
    return people_of(frame.set_index("customer_id"), ids)


def _runs(con: duckdb.DuckDBPyConnection, segment: str | None) -> pd.DataFrame:
    where = "WHERE segment = ?" if segment else ""
    return con.execute(
        f"SELECT * FROM pages_runs {where} ORDER BY evaluated_at, segment",
        [segment] if segment else [],
    ).df()


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
