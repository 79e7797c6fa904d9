"""The journey runner: one `tick` enrolls, exits, advances every journey, then delivers.

A tick does, for each journey, in one transaction: enroll whoever triggered it since the
last tick (segment entries from the membership history, or events), keeping the holdout
share out (a stable hash of journey and customer); end the enrollments whose exit
condition holds; and walk every due enrollment through as many steps as it can take now
(a send queues a message in the outbox, a wait parks the enrollment until it is due, a
branch evaluates its condition). Then it delivers the queued messages (`deliver_due`):
each is marked `sending` and committed before it leaves, then `delivered`, retried with
exponential backoff, or dead-lettered with the reason. A crash anywhere loses nothing: the
state and the outbox change together, and a message caught in flight is sent again with
the same idempotency key, which receivers use to drop the copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from segments.destinations.base import RetryPolicy
from segments.journeys.channels import CHANNELS, Channel, DeliveryError, Message
from segments.journeys.definition import END, Condition, EventTrigger, Journey, Step
from segments.journeys.store import consent_condition, ensure_tables, events_sql
from segments.journeys.templates import Template
from segments.journeys.unsubscribe import sign_token
from segments.membership import utc_now
from warehouse.database import transaction
from warehouse.tables import (
    CURRENT_SCORES,
    JOURNEY_DEAD_LETTERS,
    JOURNEY_ENROLLMENTS,
    JOURNEY_SENDS,
    JOURNEY_STEPS,
    PROFILES,
    SEGMENT_MEMBERSHIP,
)

__all__ = ["Runtime", "TickOutcome", "deliver_due", "tick"]


@dataclass(frozen=True)
class Runtime:
    """What sending needs: a transport per channel, the templates, and how to retry."""

    channels: Mapping[str, Channel]
    templates: Mapping[str, Template]
    exports: Path
    unsubscribe_secret: str
    """The key unsubscribe tokens are signed with (`segments.journeys.unsubscribe`)."""
    unsubscribe_url: str = "http://127.0.0.1:3000/unsubscribe/{token}"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int = 200
    concurrency: int = 8
    """Messages of a batch in flight at once."""


@dataclass
class TickOutcome:
    """What one tick did, in counts."""

    entered: int = 0
    exited: int = 0
    steps: int = 0
    queued: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    suppressed: int = 0
    per_journey: dict[str, dict[str, int]] = field(default_factory=dict)


def tick(
    con: duckdb.DuckDBPyConnection,
    *,
    journeys: Sequence[Journey],
    runtime: Runtime,
    now: datetime | None = None,
    deliver: bool = True,
) -> TickOutcome:
    """Enroll, exit and advance every journey at `now` (default: the UTC clock), then
    deliver what is due."""
    now = now or utc_now()
    ensure_tables(con)
    outcome = TickOutcome()
    for journey in journeys:
        with transaction(con):
            entered = _enroll(con, journey, now)
            exited = _exit(con, journey, now)
            steps, queued = _advance(con, journey, now)
        outcome.per_journey[journey.name] = {
            "entered": entered,
            "exited": exited,
            "steps": steps,
            "queued": queued,
        }
        outcome.entered += entered
        outcome.exited += exited
        outcome.steps += steps
        outcome.queued += queued
    if deliver:
        for status, count in deliver_due(con, runtime=runtime, now=now).items():
            setattr(outcome, status, getattr(outcome, status) + count)
    return outcome


def _enroll(con: duckdb.DuckDBPyConnection, journey: Journey, now: datetime) -> int:
    """Enroll who triggered `journey` (one active enrollment per customer at a time)."""
    if isinstance(journey.trigger, EventTrigger):
        source = _event_entries(con, journey, now)
        if source is None:
            return 0
    else:
        source = (
            f"SELECT customer_id, entered_at AS trigger_at FROM {SEGMENT_MEMBERSHIP} "
            f"WHERE segment = $segment AND exited_at IS NULL AND entered_at <= $now"
        )
        if not _has_table(con, SEGMENT_MEMBERSHIP):
            return 0
    key = (
        "$journey || '|' || c.customer_id || '|' || strftime(c.trigger_at, '%Y-%m-%dT%H:%M:%S.%f')"
    )
    bucket = "('0x' || left(sha256($journey || '|' || c.customer_id), 8))::UBIGINT / 4294967296.0"
    inserted = con.execute(
        f"""INSERT INTO {JOURNEY_ENROLLMENTS}
            SELECT left(sha256({key}), 32), $journey, c.customer_id,
                   IF(h.bucket < $holdout, 'holdout', 'treated'), c.trigger_at, $now,
                   IF(h.bucket < $holdout, NULL, $first), $now, $now,
                   IF(h.bucket < $holdout, 'holdout', 'active'), NULL, $now
            FROM ({source}) c, LATERAL (SELECT {bucket} AS bucket) h
            WHERE NOT EXISTS (SELECT 1 FROM {JOURNEY_ENROLLMENTS} e WHERE e.journey = $journey
                              AND e.customer_id = c.customer_id
                              AND (e.status = 'active' OR e.trigger_at >= c.trigger_at))""",
        {
            "journey": journey.name,
            "now": now,
            "holdout": journey.holdout,
            "first": journey.steps[0].id,
            "segment": getattr(journey.trigger, "segment", None),
        },
    ).fetchone()[0]
    con.execute(
        f"""INSERT INTO {JOURNEY_STEPS} SELECT enrollment_id, journey, step, $now
            FROM {JOURNEY_ENROLLMENTS} WHERE journey = $journey AND entered_at = $now
            AND status = 'active'""",
        {"journey": journey.name, "now": now},
    )
    return inserted


def _event_entries(con: duckdb.DuckDBPyConnection, journey: Journey, now: datetime) -> str | None:
    """Entries of an event-triggered journey: each customer's latest trigger event after the
    journey's cursor (first tick: from now on), and the cursor moved to `now`."""
    sql = events_sql(con, journey.trigger.event)
    found = con.execute(
        "SELECT events_until FROM journey_cursors WHERE journey = ?", [journey.name]
    ).fetchone()
    con.execute("INSERT OR REPLACE INTO journey_cursors VALUES (?, ?)", [journey.name, now])
    if sql is None or found is None:
        return None
    since = f"TIMESTAMP '{found[0]:%Y-%m-%d %H:%M:%S.%f}'"
    return (
        f"SELECT customer_id, max(occurred_at) AS trigger_at FROM ({sql}) "
        f"WHERE occurred_at > {since} AND occurred_at <= $now GROUP BY customer_id"
    )


def _exit(con: duckdb.DuckDBPyConnection, journey: Journey, now: datetime) -> int:
    """End active enrollments whose exit condition holds; returns how many."""
    (since,) = con.execute(
        f"SELECT min(trigger_at) FROM {JOURNEY_ENROLLMENTS} "
        "WHERE journey = ? AND status = 'active'",
        [journey.name],
    ).fetchone()
    if since is None:  # no one to end
        return 0
    conditions = []
    if "purchase" in journey.exit and (purchases := events_sql(con, "purchase")):
        # Purchases after the oldest active trigger only: a constant bound that reaches the
        # raw tables' scans (their zone maps), rather than every purchase ever at each tick.
        conditions.append(
            (
                "purchase",
                f"e.customer_id IN (SELECT customer_id FROM ({purchases}) "
                f"WHERE occurred_at > TIMESTAMP '{since:%Y-%m-%d %H:%M:%S.%f}' "
                "AND occurred_at > e.trigger_at AND occurred_at <= $now)",
            )
        )
    if "left_segment" in journey.exit:
        conditions.append(
            (
                "left_segment",
                f"e.customer_id NOT IN (SELECT customer_id FROM "
                f"{SEGMENT_MEMBERSHIP} WHERE segment = '{journey.trigger.segment}' "
                "AND exited_at IS NULL)",
            )
        )
    if "consent_withdrawn" in journey.exit and journey.channels:
        allowed = " OR ".join(consent_condition(c) for c in journey.channels)
        conditions.append(
            (
                "consent_withdrawn",
                f"e.customer_id NOT IN (SELECT p.customer_id FROM {PROFILES} p WHERE {allowed})",
            )
        )
    total = 0
    for reason, condition in conditions:
        total += con.execute(
            f"""UPDATE {JOURNEY_ENROLLMENTS} e SET status = 'exited', exit_reason = $reason,
                updated_at = $now WHERE journey = $journey AND status = 'active' AND {condition}""",
            {"journey": journey.name, "now": now, "reason": reason},
        ).fetchone()[0]
    return total


def _advance(con: duckdb.DuckDBPyConnection, journey: Journey, now: datetime) -> tuple[int, int]:
    """Walk every due active enrollment through the steps it can take at `now`; returns
    (steps entered, messages queued)."""
    due = con.execute(
        f"""SELECT enrollment_id, customer_id, trigger_at, step, step_started_at
            FROM {JOURNEY_ENROLLMENTS}
            WHERE journey = ? AND status = 'active' AND due_at <= ?""",
        [journey.name, now],
    ).df()
    if due.empty:
        return 0, 0
    done, entered, sends = [], [], []
    for _ in range(2 * len(journey.steps) + 1):  # a loop always waits, so this is enough
        if due.empty:
            break
        moving = []
        for step_id, group in due.groupby("step", sort=False):
            step = journey.step(step_id)
            stay, go = _take(con, journey, step, group, now, sends)
            done.append(stay)
            moving.append(go)
        due = pd.concat(moving, ignore_index=True)
        if due.empty:
            break
        due["step_started_at"] = now
        entered.append(due[["enrollment_id", "step"]])
        finished = due["step"] == END
        done.append(due[finished].assign(due_at=now))
        due = due[~finished]
    if not due.empty:
        done.append(due.assign(due_at=now))
    states = pd.concat(done, ignore_index=True)
    states["status"] = states["step"].map(lambda s: "done" if s == END else "active")
    steps = (
        pd.concat(entered, ignore_index=True)
        if entered
        else pd.DataFrame(columns=["enrollment_id", "step"])
    )
    steps = steps[steps["step"] != END]
    _write(con, journey, now, states, steps, sends)
    return len(steps), sum(len(s) for s in sends)


def _take(
    con: duckdb.DuckDBPyConnection,
    journey: Journey,
    step: Step,
    group: pd.DataFrame,
    now: datetime,
    sends: list[pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Enrollments at `step` split into those that stay (with `due_at`) and those that move
    on (with their next `step`)."""
    following = journey.targets(step)
    if step.send is not None:
        quiet_until = _quiet_until(journey, now)
        if quiet_until is not None:
            return group.assign(due_at=quiet_until), group.iloc[:0]
        sends.append(_messages(con, journey, step, group, now))
        return group.iloc[:0], group.assign(step=following[0])
    if step.wait is not None:
        wait = step.wait
        ends = group["step_started_at"] + wait.longest
        moved = ends <= now
        if wait.until is not None:
            kind = (
                Condition.model_validate({wait.until: True}).event_kind
                if (wait.until in ("opened", "clicked", "purchased"))
                else wait.until
            )
            moved |= group["customer_id"].isin(
                _with_event(con, group, kind, now, "step_started_at")
            )
            stay_due = now
        else:
            stay_due = ends[~moved]
        return group[~moved].assign(due_at=stay_due), group[moved].assign(step=following[0])
    holds = group["customer_id"].isin(_holding(con, step.branch.if_, group, now))
    then, otherwise = following
    return group.iloc[:0], group.assign(step=holds.map({True: then, False: otherwise}))


def _holding(
    con: duckdb.DuckDBPyConnection, condition: Condition, group: pd.DataFrame, now: datetime
) -> set:
    """The customers of `group` for whom `condition` holds at `now`."""
    if condition.event_kind is not None:
        return _with_event(con, group, condition.event_kind, now, "trigger_at")
    con.register("_journey_group", group[["customer_id"]])
    try:
        if condition.segment is not None:
            rows = con.execute(
                f"""SELECT customer_id FROM _journey_group WHERE customer_id IN
                    (SELECT customer_id FROM {SEGMENT_MEMBERSHIP}
                     WHERE segment = ? AND exited_at IS NULL)""",
                [condition.segment],
            ).fetchall()
        else:
            rows = con.execute(
                f"""SELECT customer_id FROM _journey_group JOIN {CURRENT_SCORES} USING (customer_id)
                    WHERE "{condition.score}" {condition.op} ?""",
                [condition.value],
            ).fetchall()
    finally:
        con.unregister("_journey_group")
    return {c for (c,) in rows}


def _with_event(
    con: duckdb.DuckDBPyConnection, group: pd.DataFrame, kind: str, now: datetime, since: str
) -> set:
    """Customers of `group` with an event of `kind` after their `since` column, up to `now`."""
    sql = events_sql(con, kind)
    if sql is None:
        return set()
    con.register("_journey_group", group[["customer_id", since]])
    try:
        rows = con.execute(
            f"""SELECT DISTINCT g.customer_id FROM _journey_group g JOIN ({sql}) ev
                USING (customer_id) WHERE ev.occurred_at > g."{since}" AND ev.occurred_at <= ?""",
            [now],
        ).fetchall()
    finally:
        con.unregister("_journey_group")
    return {c for (c,) in rows}


def _quiet_until(journey: Journey, now: datetime) -> datetime | None:
    """When the journey's quiet hours end, if `now` (naive UTC) falls inside them."""
    quiet = journey.quiet_hours
    if quiet is None:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    start, end, clock = quiet.start, quiet.end, local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _messages(
    con: duckdb.DuckDBPyConnection, journey: Journey, step: Step, group: pd.DataFrame, now: datetime
) -> pd.DataFrame:
    """Outbox rows for `group` at a send step: `pending`, or `capped` for who has had the
    journey's frequency cap of messages (all journeys) within its window. (Their idempotency
    key, a hash of the enrollment and the step, is computed as they are written.)"""
    rows = pd.DataFrame(
        {
            "enrollment_id": group["enrollment_id"],
            "journey": journey.name,
            "step": step.id,
            "customer_id": group["customer_id"],
            "channel": step.send.channel,
            "template": step.send.template,
            "params": json.dumps(step.send.params),
            "created_at": now,
            "status": "pending",
        }
    )
    cap = journey.frequency_cap
    if cap is not None:
        counts = con.execute(
            f"""SELECT customer_id, count(*) FROM {JOURNEY_SENDS} WHERE created_at > ?
                AND status NOT IN ('capped', 'suppressed', 'dead') GROUP BY customer_id""",
            [now - cap.per],
        ).df()
        over = set(counts.loc[counts.iloc[:, 1] >= cap.messages, "customer_id"])
        rows.loc[rows["customer_id"].isin(over), "status"] = "capped"
    return rows


def _write(
    con: duckdb.DuckDBPyConnection,
    journey: Journey,
    now: datetime,
    states: pd.DataFrame,
    steps: pd.DataFrame,
    sends: list[pd.DataFrame],
) -> None:
    con.register(
        "_journey_states", states[["enrollment_id", "step", "step_started_at", "due_at", "status"]]
    )
    con.execute(
        f"""UPDATE {JOURNEY_ENROLLMENTS} e SET step = s.step, step_started_at = s.step_started_at,
            due_at = s.due_at, status = s.status, updated_at = $now FROM _journey_states s
            WHERE e.enrollment_id = s.enrollment_id""",
        {"now": now},
    )
    con.unregister("_journey_states")
    if not steps.empty:
        con.register("_journey_steps", steps)
        con.execute(
            f"INSERT INTO {JOURNEY_STEPS} SELECT enrollment_id, ?, step, ? FROM _journey_steps",
            [journey.name, now],
        )
        con.unregister("_journey_steps")
    if sends:
        con.register("_journey_sends", pd.concat(sends, ignore_index=True))
        con.execute(
            f"""INSERT OR IGNORE INTO {JOURNEY_SENDS} (idempotency_key, enrollment_id, journey,
                step, customer_id, channel, template, params, created_at, status,
                next_attempt_at) SELECT left(sha256(enrollment_id || '|' || step), 32), *,
                created_at FROM _journey_sends"""
        )
        con.unregister("_journey_sends")


def deliver_due(
    con: duckdb.DuckDBPyConnection, *, runtime: Runtime, now: datetime | None = None
) -> dict[str, int]:
    """Send every outbox message due at `now`, batch by batch; counts by outcome."""
    now = now or utc_now()
    ensure_tables(con)
    counts = {"delivered": 0, "retrying": 0, "dead": 0, "suppressed": 0}
    consent = " ".join(f"WHEN '{c}' THEN {consent_condition(c)}" for c in CHANNELS)
    while True:
        batch = con.execute(
            f"""SELECT s.idempotency_key, s.journey, s.step, s.customer_id, s.channel,
                   s.template, s.params, s.attempts, p.first_name, p.email,
                   coalesce(CASE s.channel {consent} END, FALSE) AS consented
                FROM {JOURNEY_SENDS} s LEFT JOIN {PROFILES} p USING (customer_id)
                WHERE s.status IN ('pending', 'sending', 'retrying') AND s.next_attempt_at <= ?
                ORDER BY s.created_at, s.idempotency_key LIMIT ?""",
            [now, runtime.batch_size],
        ).df()
        if batch.empty:
            return counts
        con.register("_journey_batch", batch[["idempotency_key"]])
        con.execute(f"""UPDATE {JOURNEY_SENDS} SET status = 'sending', attempts = attempts + 1
                        WHERE idempotency_key IN (SELECT idempotency_key FROM _journey_batch)""")
        con.unregister("_journey_batch")
        with ThreadPoolExecutor(max_workers=runtime.concurrency) as pool:
            rows = batch.itertuples(index=False)
            results = list(pool.map(lambda row: _send_one(row, runtime), rows))
        _record(con, batch, results, runtime.retry, now, counts)


def _send_one(row: object, runtime: Runtime) -> tuple[str, str | None, bool]:
    """(outcome, target or error, permanent) for one outbox row."""
    if not row.consented:
        return "suppressed", f"no {CHANNELS[row.channel]} consent at send time", True
    token = sign_token(
        secret=runtime.unsubscribe_secret,
        customer_id=str(row.customer_id),
        channel=row.channel,
        message=row.idempotency_key,
    )
    variables = {
        **json.loads(row.params or "{}"),
        "customer_id": str(row.customer_id),
        "first_name": row.first_name if isinstance(row.first_name, str) else None,
        "unsubscribe_url": runtime.unsubscribe_url.format(token=token),
    }
    to = row.email if row.channel == "email" else str(row.customer_id)
    if not isinstance(to, str) or not to:
        return "dead", f"no {row.channel} address", True
    try:
        content = runtime.templates[row.template].render(variables)
        message = Message(
            row.idempotency_key,
            row.channel,
            row.journey,
            row.step,
            str(row.customer_id),
            to,
            content,
            {"unsubscribe_url": variables["unsubscribe_url"]},
        )
        target = runtime.channels[row.channel].deliver(message, exports=runtime.exports)
    except DeliveryError as error:
        return "failed", str(error), error.permanent
    except Exception as error:  # a broken template or transport must not stop the runner
        return "failed", f"{type(error).__name__}: {error}", True
    return "delivered", target, False


def _record(
    con: duckdb.DuckDBPyConnection,
    batch: pd.DataFrame,
    results: list,
    retry: RetryPolicy,
    now: datetime,
    counts: dict[str, int],
) -> None:
    """Write a batch's outcomes (and its dead letters) in one transaction; a retry is due
    after an exponential backoff from `now`."""
    clock = utc_now()
    rows, dead = [], []
    for row, (outcome, detail, permanent) in zip(
        batch.itertuples(index=False), results, strict=True
    ):
        attempts = row.attempts + 1
        if outcome == "failed":
            outcome = "dead" if permanent or attempts >= retry.attempts else "retrying"
        wait = min(retry.backoff_seconds * 2 ** (attempts - 1), retry.max_backoff_seconds)
        rows.append((row.idempotency_key, outcome, detail, now + timedelta(seconds=wait)))
        if outcome == "dead":
            dead.append(
                (
                    row.idempotency_key,
                    row.journey,
                    row.step,
                    row.customer_id,
                    row.channel,
                    attempts,
                    detail,
                    clock,
                )
            )
        counts[outcome] += 1
    frame = pd.DataFrame(rows, columns=["idempotency_key", "status", "detail", "next_at"])
    with transaction(con):
        con.register("_journey_results", frame)
        con.execute(
            f"""UPDATE {JOURNEY_SENDS} s SET status = r.status,
                target = IF(r.status = 'delivered', r.detail, s.target),
                last_error = IF(r.status = 'delivered', NULL, r.detail),
                delivered_at = IF(r.status = 'delivered', ?, NULL),
                next_attempt_at = IF(r.status = 'retrying', r.next_at, NULL)
                FROM _journey_results r WHERE s.idempotency_key = r.idempotency_key""",
            [clock],
        )
        con.unregister("_journey_results")
        if dead:
            con.executemany(
                f"INSERT INTO {JOURNEY_DEAD_LETTERS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dead
            )


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return (
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()[0]
        > 0
    )
