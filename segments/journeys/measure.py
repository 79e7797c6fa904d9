"""How journeys do: the funnel per step for the treated and the holdout, and the lift.

An enrollment converts when its journey's conversion event (a purchase by default)
happens after its trigger and within the conversion window, whatever became of it in
the journey, and whether it was treated or held out. The lift is the treated conversion
rate minus the holdout's, with a 95% confidence interval for a difference of two
proportions (normal approximation; `None` when a group is empty). Both read the journey
tables (`segments.journeys.store.ensure_tables` makes them) and write nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from segments.journeys.definition import Journey
from segments.journeys.store import events_sql
from segments.membership import utc_now
from warehouse.tables import JOURNEY_ENROLLMENTS, JOURNEY_SENDS, JOURNEY_STEPS

__all__ = ["Lift", "funnel", "lift"]

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Lift:
    """Conversion of the treated against the holdout."""

    treated: int
    treated_converted: int
    holdout: int
    holdout_converted: int

    @property
    def rates(self) -> tuple[float | None, float | None]:
        return (
            self.treated_converted / self.treated if self.treated else None,
            self.holdout_converted / self.holdout if self.holdout else None,
        )

    @property
    def difference(self) -> float | None:
        """Treated rate minus holdout rate (percentage points as a fraction)."""
        treated, holdout = self.rates
        return None if treated is None or holdout is None else treated - holdout

    @property
    def interval(self) -> tuple[float, float] | None:
        """95% confidence interval of `difference`."""
        treated, holdout = self.rates
        if treated is None or holdout is None:
            return None
        spread = _Z95 * math.sqrt(
            treated * (1 - treated) / self.treated + holdout * (1 - holdout) / self.holdout
        )
        return self.difference - spread, self.difference + spread

    @property
    def sentence(self) -> str:
        """The conversion of both groups and the lift, in words."""
        treated, holdout = self.rates
        if treated is None or holdout is None:
            return (
                f"Lift not measurable yet ({self.treated:,} treated, {self.holdout:,} in "
                "the holdout)."
            )
        low, high = self.interval
        return (
            f"Converted: treated {treated:.1%} ({self.treated_converted:,} of {self.treated:,}), "
            f"holdout {holdout:.1%} ({self.holdout_converted:,} of {self.holdout:,}); lift "
            f"{self.difference * 100:+.1f} points (95% CI {low * 100:+.1f} to {high * 100:+.1f})."
        )


def _converted_sql(con: duckdb.DuckDBPyConnection, journey: Journey) -> str:
    """Per enrollment of `journey`: `converted` (true when the conversion event happened in
    the window after its trigger, up to $now)."""
    events = events_sql(con, journey.conversion)
    window = f"INTERVAL {int(journey.conversion_window.total_seconds())} SECOND"
    test = (
        "FALSE"
        if events is None
        else (
            f"EXISTS (SELECT 1 FROM ({events}) ev WHERE ev.customer_id = e.customer_id "
            f"AND ev.occurred_at > e.trigger_at AND ev.occurred_at <= e.trigger_at + {window} "
            "AND ev.occurred_at <= $now)"
        )
    )
    return (
        f"SELECT e.enrollment_id, e.grp, e.status, e.exit_reason, {test} AS converted "
        f"FROM {JOURNEY_ENROLLMENTS} e WHERE e.journey = $journey"
    )


def lift(con: duckdb.DuckDBPyConnection, *, journey: Journey, now: datetime | None = None) -> Lift:
    """The treated and holdout conversions of `journey` so far."""
    rows = dict.fromkeys(["treated", "holdout"], (0, 0))
    found = con.execute(
        "SELECT grp, count(*), count(*) FILTER (WHERE converted) "
        f"FROM ({_converted_sql(con, journey)}) GROUP BY grp",
        {"journey": journey.name, "now": now or utc_now()},
    ).fetchall()
    rows |= {grp: (n, c) for grp, n, c in found}
    return Lift(*rows["treated"], *rows["holdout"])


def funnel(
    con: duckdb.DuckDBPyConnection, *, journey: Journey, now: datetime | None = None
) -> pd.DataFrame:
    """One row per group and step (`step` is `(journey)` for the whole journey): `entered`,
    `sent`, `delivered`, `opened`, `clicked` (emails opened/clicked after delivery),
    `converted`; the holdout has only the journey row."""
    params = {"journey": journey.name, "now": now or utc_now()}
    whole = con.execute(
        f"""SELECT grp AS "group", '(journey)' AS step, count(*) AS entered,
               count(*) FILTER (WHERE converted) AS converted
            FROM ({_converted_sql(con, journey)}) GROUP BY grp""",
        params,
    ).df()
    engagement = []
    for kind, column in (("email_open", "opened"), ("email_click", "clicked")):
        sql = events_sql(con, kind)
        engagement.append(
            f"0 AS {column}"
            if sql is None
            else "count(DISTINCT s.idempotency_key) FILTER (WHERE s.status = 'delivered' "
            f"AND EXISTS (SELECT 1 FROM ({sql}) ev WHERE ev.customer_id = s.customer_id "
            f"AND ev.occurred_at > s.delivered_at AND ev.occurred_at <= $now)) AS {column}"
        )
    steps = con.execute(
        f"""WITH conv AS ({_converted_sql(con, journey)}),
            entered AS (SELECT st.step, count(DISTINCT st.enrollment_id) AS entered,
                          count(DISTINCT st.enrollment_id) FILTER (WHERE c.converted) AS converted
                        FROM {JOURNEY_STEPS} st JOIN conv c USING (enrollment_id)
                        WHERE st.journey = $journey GROUP BY st.step),
            sends AS (SELECT s.step,
                        count(*) FILTER (WHERE s.status NOT IN ('capped', 'suppressed', 'pending'))
                          AS sent,
                        count(*) FILTER (WHERE s.status = 'delivered') AS delivered,
                        {engagement[0]}, {engagement[1]}
                      FROM {JOURNEY_SENDS} s WHERE s.journey = $journey GROUP BY s.step)
            SELECT 'treated' AS "group", step, entered, sent, delivered, opened, clicked, converted
            FROM entered LEFT JOIN sends USING (step)""",
        params,
    ).df()
    order = {step.id: i for i, step in enumerate(journey.steps)}
    steps = steps.sort_values("step", key=lambda s: s.map(order)).fillna(0)
    table = pd.concat([whole, steps], ignore_index=True)
    columns = ["entered", "sent", "delivered", "opened", "clicked", "converted"]
    table[columns] = table.reindex(columns=columns).fillna(0).astype(int)
    return table[["group", "step", *columns]]
