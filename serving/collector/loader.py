"""The micro-batch loader: from the collector's append log into the warehouse's `raw_events`.

One call of `load_pending` moves the next `max_bytes` of the log (whole requests). DuckDB
unnests the logged events and maps them to rows with the warehouse's own Segment mapping
(`warehouse.segment.select_list`, the one the file connector uses); they go through
`warehouse.append_rows` (validated, deduplicated on `message_id`, lineage `_source` = the
write key's source, `_file` = `collector`); then one transaction writes the messages the
collector rejected to `quarantine` (with the reason the client was given) and the log offsets
reached to `collector_offsets`. A crash at any point loses nothing and repeats nothing: the
next call resumes from the last committed offsets, and events loaded before the crash are
duplicates of their `message_id` that the warehouse does not insert again. Finished segments
(their writer closed or died, every complete line loaded) are then deleted.

DuckDB lets one process write a database file at a time. The loader opens the warehouse
only for the length of one micro-batch; when another process holds it, `load_pending`
reports `busy` and the events wait safely in the log for the next try.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from serving.collector.log import is_live, read_lines, segments
from warehouse import append_rows, connect
from warehouse.segment import KEYS, select_list
from warehouse.tables import QUARANTINE

__all__ = [
    "OFFSETS_TABLE",
    "BackgroundLoader",
    "BatchReport",
    "OnLoaded",
    "load_all",
    "load_batch",
    "load_pending",
    "log_sizes",
]

OFFSETS_TABLE = "collector_offsets"
ORIGIN = "collector"
_LINES, _EVENTS = "collector_lines", "collector_events"  # the batch, registered / unnested
logger = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What one micro-batch did."""

    requests: int = 0
    events: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    segments_finished: int = 0
    torn_bytes: int = 0
    failed_callbacks: int = 0
    busy: bool = False
    more: bool = False  # the batch was full: call again to continue

    def add(self, other: BatchReport) -> None:
        """Add `other`'s counts to these."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_COUNTS = (
    "requests",
    "events",
    "loaded",
    "duplicates",
    "quarantined",
    "segments_finished",
    "torn_bytes",
    "failed_callbacks",
)


@dataclass
class _Batch:
    """Log lines read for one micro-batch, and where reading stopped."""

    lines: list[bytes]
    offsets: dict[str, int]
    finished: list[Path]
    report: BatchReport


OnLoaded = Callable[[duckdb.DuckDBPyConnection, list[str], bool], None]
"""Called with the warehouse, the message ids of a micro-batch's events (in log order) and
whether this batch inserted every one of them (none was in `raw_events` before, so nothing
downstream has seen them), once they are in `raw_events` and before the batch's log offsets
commit: a crash in between reads the batch again, so the callback must tolerate seeing
events twice (then they are duplicates: the flag is false)."""


def load_pending(
    *,
    log_dir: Path,
    warehouse: Path,
    max_bytes: int,
    threads: int | None = None,
    on_loaded: OnLoaded | None = None,
) -> BatchReport:
    """Load the next `max_bytes` of the log (whole requests) into `raw_events`; `busy` if the
    warehouse or the log is held by another process (nothing changes then; try again later).
    `threads` caps DuckDB's threads (default: one per core). `on_loaded` sees the batch's
    events (an exception there is logged and counted in `failed_callbacks`: the events
    stay loaded)."""
    try:
        con = connect(warehouse, wait_seconds=0)  # busy: the log keeps the events
    except duckdb.IOException as error:
        if "lock" not in str(error).lower():
            raise
        return BatchReport(busy=True)
    try:
        if threads is not None:
            con.execute(f"SET threads = {threads}")
        return load_batch(con, log_dir=log_dir, max_bytes=max_bytes, on_loaded=on_loaded)
    finally:
        con.close()


def load_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    log_dir: Path,
    max_bytes: int,
    on_loaded: OnLoaded | None = None,
) -> BatchReport:
    """`load_pending` on a warehouse connection the caller holds (the stream worker keeps
    one open while events flow: a checkpoint per micro-batch would rewrite the tables' last
    row groups every time); `busy` when another process is loading the log."""
    with _exclusive(log_dir / "loader.lock") as acquired:
        if not acquired:
            return BatchReport(busy=True)
        return _load(con, log_dir=log_dir, max_bytes=max_bytes, on_loaded=on_loaded)


def load_all(
    *,
    log_dir: Path,
    warehouse: Path,
    max_bytes: int,
    threads: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    on_loaded: OnLoaded | None = None,
) -> BatchReport:
    """Call `load_pending` until the log is loaded or the warehouse is busy; the totals."""
    totals = BatchReport()
    while True:
        batch = load_pending(
            log_dir=log_dir,
            warehouse=warehouse,
            max_bytes=max_bytes,
            threads=threads,
            on_loaded=on_loaded,
        )
        totals.add(batch)
        if on_batch is not None:
            on_batch(batch)
        if batch.busy or not batch.more:
            totals.busy = batch.busy
            return totals


def _load(
    con: duckdb.DuckDBPyConnection,
    *,
    log_dir: Path,
    max_bytes: int,
    on_loaded: OnLoaded | None = None,
) -> BatchReport:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} "
        '(segment VARCHAR PRIMARY KEY, "offset" BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL)'
    )
    offsets = dict(con.execute(f'SELECT segment, "offset" FROM {OFFSETS_TABLE}').fetchall())
    batch = _read(log_dir, offsets=offsets, max_bytes=max_bytes)
    report = batch.report
    if not (batch.offsets or batch.finished):
        return report
    lines = pa.table(
        {
            "n": pa.array(range(len(batch.lines)), pa.int64()),
            "line": pa.array(batch.lines, pa.binary()).cast(pa.string()),
        }
    )
    con.register(_LINES, lines)
    try:
        # Events first, each source in its own transaction: if we crash before the offsets
        # below commit, the next call reads them again and the warehouse finds duplicates.
        message_ids: list[str] = []
        inserted = 0
        for sender, rows in _events(con, report).items():
            result = append_rows(con, source="events", rows=rows, origin=ORIGIN, sender=sender)
            inserted += result.rows_loaded
            report.loaded += result.rows_loaded
            report.duplicates += result.rows_duplicate
            report.quarantined += result.rows_quarantined
            message_ids += rows.column("message_id").to_pylist()
        if on_loaded is not None and message_ids:
            try:
                on_loaded(con, message_ids, inserted == len(message_ids))
            except Exception:  # the events are loaded; only what follows them is lost
                logger.exception(
                    "collector: the callback on %d loaded events failed", len(message_ids)
                )
                report.failed_callbacks += 1
        con.begin()
        try:
            report.quarantined += _quarantine(con)
            if batch.offsets:
                con.executemany(
                    f"INSERT OR REPLACE INTO {OFFSETS_TABLE} VALUES (?, ?, now())",
                    list(batch.offsets.items()),
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.unregister(_LINES)
    for segment in batch.finished:
        segment.unlink(missing_ok=True)
    names = [segment.name for segment in segments(log_dir)]
    con.execute(f"DELETE FROM {OFFSETS_TABLE} WHERE NOT list_contains(?, segment)", [names])
    return report


def _read(log_dir: Path, *, offsets: dict[str, int], max_bytes: int) -> _Batch:
    batch = _Batch([], {}, [], BatchReport())
    budget = max_bytes
    for segment in segments(log_dir):
        if budget <= 0:
            batch.report.more = True
            break
        live = is_live(segment)  # checked before reading: a finished segment no longer grows
        start = offsets.get(segment.name, 0)
        lines, end, eof = read_lines(segment, offset=start, max_bytes=budget)
        batch.lines.extend(lines)
        budget -= end - start
        if end != start:
            batch.offsets[segment.name] = end
        if not eof:
            batch.report.more = True
            break
        if not live:
            torn = segment.stat().st_size - end
            if torn:
                logger.warning(
                    "collector: %s ends with %d bytes of a request cut by a crash (it was "
                    "never acknowledged)",
                    segment.name,
                    torn,
                )
            batch.report.torn_bytes += torn
            batch.report.segments_finished += 1
            batch.finished.append(segment)
    batch.report.requests = len(batch.lines)
    return batch


def _events(con: duckdb.DuckDBPyConnection, report: BatchReport) -> dict[str, pa.Table]:
    """The batch's events as `raw_events` rows per sending source, mapped in SQL by the
    warehouse's own Segment mapping (one JSON parse per event); a messageId repeated within
    the batch (a client's retry) is kept once, first come first kept."""
    paths = ", ".join(f"'$.\"{key}\"'" for key in KEYS)
    message_id = KEYS.index("messageId") + 1
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_EVENTS} AS "
        f"SELECT n, i, sender, json_extract_string(message, [{paths}]) AS _v FROM ("
        "  SELECT n, sender, unnest(events) AS message, generate_subscripts(events, 1) AS i FROM ("
        "    SELECT n, line->>'source' AS sender, json_extract(line, '$.events[*]') AS events"
        f"   FROM {_LINES}))"
    )
    [(report.events,)] = con.execute(f"SELECT count(*) FROM {_EVENTS}").fetchall()
    firsts = con.sql(
        f"SELECT sender, {select_list('_v')} FROM {_EVENTS} "
        f"QUALIFY row_number() OVER (PARTITION BY _v[{message_id}] ORDER BY n, i) = 1 "
        "ORDER BY n, i"
    ).to_arrow_table()
    con.execute(f"DROP TABLE {_EVENTS}")
    report.duplicates += report.events - firsts.num_rows
    senders = firsts.column("sender")
    return {
        sender: firsts.filter(pc.equal(senders, sender)).drop_columns("sender")
        for sender in pc.unique(senders).to_pylist()
    }


def _quarantine(con: duckdb.DuckDBPyConnection) -> int:
    """Messages the collector refused, with the reason it gave the client; how many."""
    [(count,)] = con.execute(
        f"INSERT INTO {QUARANTINE} (source, file, row_number, row, reason, quarantined_at) "
        f"SELECT sender, '{ORIGIN}', (r->>'index')::BIGINT + 1, r->'item', r->>'reason', now() "
        "FROM (SELECT line->>'source' AS sender, "
        f"unnest(json_extract(line, '$.rejected[*]')) AS r FROM {_LINES})"
    ).fetchall()
    return count


@contextmanager
def _exclusive(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on `path` if no one else does; yield whether we got it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


class BackgroundLoader:
    """A thread that calls `load_all` every `interval_seconds` until stopped, with one DuckDB
    thread so that requests keep the other cores. While the log does not change it leaves
    the warehouse alone, so an idle collector never holds the warehouse's lock."""

    def __init__(
        self, *, log_dir: Path, warehouse: Path, max_bytes: int, interval_seconds: float
    ) -> None:
        self.log_dir, self.warehouse = log_dir, warehouse
        self.max_bytes, self.interval_seconds = max_bytes, interval_seconds
        self._loaded: dict[str, int] | None = None  # segment sizes when last fully loaded
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-loader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then load what is left (unless the warehouse is busy)."""
        self._stop.set()
        self._thread.join()
        self._drain()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            if log_sizes(self.log_dir) != self._loaded:
                self._drain()

    def _drain(self) -> None:
        sizes = log_sizes(self.log_dir)
        try:
            report = load_all(
                log_dir=self.log_dir,
                warehouse=self.warehouse,
                max_bytes=self.max_bytes,
                threads=1,  # leave the other cores to the requests
            )
        except Exception:
            logger.exception("collector: loading the log into the warehouse failed; will retry")
            return
        if not report.busy:  # what was there before is loaded; finished segments are gone
            self._loaded = {
                name: size for name, size in sizes.items() if (self.log_dir / name).exists()
            }


def log_sizes(log_dir: Path) -> dict[str, int]:
    """Segment name -> size, to see whether the log changed."""
    sizes = {}
    for segment in segments(log_dir):
        try:
            sizes[segment.name] = segment.stat().st_size
        except FileNotFoundError:  # another process's loader just finished it
            continue
    return sizes
