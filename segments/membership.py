"""Membership history: who is in each segment, since when, and what changed at each run.

`segment_membership(segment, customer_id, entered_at, exited_at)` holds one row
per stay in a segment (`exited_at` null while it lasts); `segment_runs` one row
per segment per refresh with its size and how many entered and exited. A run's
`evaluated_at` is the `entered_at`/`exited_at` of the changes it made, so the
members at any run, and the changes between any two, are a query away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd

from warehouse.database import transaction
from warehouse.tables import PROFILES, SEGMENT_MEMBERSHIP, SEGMENT_RUNS

__all__ = [
    "SegmentRun",
    "changes_between",
    "ensure_tables",
    "members_at",
    "record_changes",
    "record_run",
    "runs",
    "utc_now",
]


@dataclass(frozen=True)
class SegmentRun:
    """One segment's outcome in one refresh."""

    run_id: str
    segment: str
    evaluated_at: datetime
    as_of: datetime
    size: int
    entered: int
    exited: int


def utc_now() -> datetime:
    """The current UTC time as a naive timestamp (the warehouse convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the membership tables (customer ids typed as in `profiles`)."""
    id_type = con.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = ? AND column_name = 'customer_id'",
        [PROFILES],
    ).fetchone()
    id_type = id_type[0] if id_type else "VARCHAR"
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {SEGMENT_MEMBERSHIP} (
            segment VARCHAR NOT NULL, customer_id {id_type} NOT NULL,
            entered_at TIMESTAMP NOT NULL, exited_at TIMESTAMP);
        CREATE TABLE IF NOT EXISTS {SEGMENT_RUNS} (
            run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, evaluated_at TIMESTAMP NOT NULL,
            as_of TIMESTAMP NOT NULL, size BIGINT NOT NULL, entered BIGINT NOT NULL,
            exited BIGINT NOT NULL, PRIMARY KEY (run_id, segment));
    """)


def record_run(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    evaluated_at: datetime,
    as_of: datetime,
    members: Mapping[str, pd.Index],
    scope: pd.Index | None = None,
) -> list[SegmentRun]:
    """Close the stays of who left, open stays for who entered, and log the run; atomically
    (`record_changes` in a transaction of its own)."""
    ensure_tables(con)
    with transaction(con):
        return record_changes(
            con, run_id=run_id, evaluated_at=evaluated_at, as_of=as_of, members=members,
            scope=scope,
        )  # fmt: skip


def record_changes(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    evaluated_at: datetime,
    as_of: datetime,
    members: Mapping[str, pd.Index],
    scope: pd.Index | None = None,
) -> list[SegmentRun]:
    """`record_run` inside the caller's transaction (the tables exist: `ensure_tables`).

    With `scope` (customer ids), only those customers were evaluated (the stream worker's
    evaluation of the customers a batch of events concerns): `members` are the members among
    them, nobody else's stay changes, and a segment is logged only when someone entered or
    exited (its size is then the whole segment's)."""
    results = []
    scoped = ""
    if scope is not None:
        con.register(
            "_segment_scope", pd.DataFrame({"customer_id": pd.Series(scope, dtype=object)})
        )
        scoped = "AND customer_id IN (SELECT customer_id FROM _segment_scope)"
    for segment, ids in members.items():
        current = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object)})
        con.register("_segment_current", current)
        exited = con.execute(
            f"""UPDATE {SEGMENT_MEMBERSHIP} SET exited_at = $at
               WHERE segment = $segment AND exited_at IS NULL {scoped}
                 AND customer_id NOT IN (SELECT customer_id FROM _segment_current)""",
            {"at": evaluated_at, "segment": segment},
        ).fetchone()[0]
        entered = con.execute(
            f"""INSERT INTO {SEGMENT_MEMBERSHIP}
               SELECT $segment, c.customer_id, $at, NULL FROM _segment_current c
               WHERE c.customer_id NOT IN (SELECT customer_id FROM {SEGMENT_MEMBERSHIP}
                                           WHERE segment = $segment AND exited_at IS NULL)""",
            {"at": evaluated_at, "segment": segment},
        ).fetchone()[0]
        con.unregister("_segment_current")
        size = len(current)
        if scope is not None:
            if not (entered or exited):
                continue
            [(size,)] = con.execute(
                f"SELECT count(*) FROM {SEGMENT_MEMBERSHIP} "
                "WHERE segment = ? AND exited_at IS NULL",
                [segment],
            ).fetchall()
        run = SegmentRun(run_id, segment, evaluated_at, as_of, size, entered, exited)
        con.execute(
            f"INSERT INTO {SEGMENT_RUNS} VALUES (?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, segment, evaluated_at, as_of, run.size, entered, exited],
        )
        results.append(run)
    if scope is not None:
        con.unregister("_segment_scope")
    return results


def members_at(con: duckdb.DuckDBPyConnection, *, segment: str, at: datetime) -> pd.DataFrame:
    """Members of `segment` at time `at` (a run's `evaluated_at`), with when they entered."""
    return con.execute(
        f"""SELECT customer_id, entered_at FROM {SEGMENT_MEMBERSHIP}
           WHERE segment = $segment AND entered_at <= $at AND (exited_at IS NULL OR exited_at > $at)
           ORDER BY customer_id""",
        {"segment": segment, "at": at},
    ).df()


def changes_between(
    con: duckdb.DuckDBPyConnection, *, segment: str, since: datetime | None, until: datetime
) -> pd.DataFrame:
    """Who `entered` and who `exited` `segment` between two times (`since` None: the beginning).

    Columns `customer_id`, `change`; someone who left and came back in between is not a change.
    """
    return con.execute(
        f"""WITH
           now AS (SELECT customer_id FROM {SEGMENT_MEMBERSHIP} WHERE segment = $segment
                   AND entered_at <= $until AND (exited_at IS NULL OR exited_at > $until)),
           before AS (SELECT customer_id FROM {SEGMENT_MEMBERSHIP} WHERE segment = $segment
                   AND entered_at <= $since AND (exited_at IS NULL OR exited_at > $since))
           SELECT customer_id, 'entered' AS change FROM (FROM now EXCEPT FROM before)
           UNION ALL
           SELECT customer_id, 'exited' AS change FROM (FROM before EXCEPT FROM now)
           ORDER BY change, customer_id""",
        {"segment": segment, "since": since or datetime.min, "until": until},
    ).df()


def runs(con: duckdb.DuckDBPyConnection, *, segment: str | None = None) -> pd.DataFrame:
    """Sizes over time: every run of every segment (or of one), oldest first."""
    ensure_tables(con)
    where = "WHERE segment = $segment" if segment else ""
    params = {"segment": segment} if segment else {}
    return con.execute(
        f"SELECT * FROM {SEGMENT_RUNS} {where} ORDER BY evaluated_at, segment", params
    ).df()
