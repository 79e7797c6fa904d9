"""Cutoffs and labels: who is in the population at a cutoff, and what they did next.

Time is split at cutoffs (midnight timestamps, UTC). At a cutoff `c` a customer
is *active* with at least `min_orders` orders in the `activity_days` before `c`;
the label window is `[c, c + horizon)`: the customer *churned* with no order in
it, and their *revenue* is what they spent in it. Everything else computed for
`c` (RFM, past revenue, the BTYD summary) uses orders strictly before `c` only.

The cutoff plan keeps the held-out test cutoff honest: validation labels end at
the test cutoff and training labels end before it, so no outcome of the test
window reaches training or early stopping. Orders come from `raw_orders`
joined to customers through `identity_map`, or from any relation with
`customer_id, ordered_at, amount` (an orders-only history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

__all__ = [
    "ORDERS_SQL",
    "CutoffPlan",
    "HorizonError",
    "build_examples",
    "data_span",
    "plan_cutoffs",
    "visible_until",
]

# The orders of resolved customers: one row per order, keyed to its customer.
ORDERS_SQL = """
    SELECT m.customer_id, o.ordered_at, o.amount
    FROM raw_orders o
    JOIN identity_map m ON m.source = 'orders' AND m.record_key = o.order_id
"""


class HorizonError(ValueError):
    """The history is too short for the horizon: says how much is needed and how much exists."""


@dataclass(frozen=True)
class CutoffPlan:
    """Training, validation and held-out test cutoffs for one horizon."""

    horizon_days: int
    train: tuple[datetime, ...]
    valid: datetime
    test: datetime

    @property
    def all(self) -> tuple[datetime, ...]:
        return (*self.train, self.valid, self.test)

    def describe(self) -> str:
        train = f"{self.train[0]:%Y-%m-%d}..{self.train[-1]:%Y-%m-%d} ({len(self.train)})"
        return (
            f"train {train}, valid {self.valid:%Y-%m-%d}, test {self.test:%Y-%m-%d}, "
            f"horizon {self.horizon_days} d"
        )


def visible_until(as_of: date) -> datetime:
    """The exclusive time boundary of an as-of date: everything through that day is visible."""
    return datetime.combine(as_of, datetime.min.time()) + timedelta(days=1)


def data_span(
    con: duckdb.DuckDBPyConnection, *, orders: str = ORDERS_SQL, as_of: date | None = None
) -> tuple[date, date]:
    """First and last order dates (up to `as_of`); raises when there are no orders."""
    limit = f"WHERE ordered_at < TIMESTAMP '{visible_until(as_of)}'" if as_of else ""
    try:
        first, last = con.execute(
            f"SELECT min(ordered_at)::DATE, max(ordered_at)::DATE FROM ({orders}) {limit}"
        ).fetchone()
    except duckdb.CatalogException as error:
        missing = error.args[0].splitlines()[0] if error.args else str(error)
        raise HorizonError(
            f"no order history to learn from ({missing}): run `cip load` and `cip resolve` first"
        ) from error
    if first is None:
        raise HorizonError(
            "no orders" + (f" on or before {as_of}" if as_of else "") + ": nothing to learn from"
        )
    return first, last


def plan_cutoffs(
    *,
    first_order: date,
    as_of: date,
    horizon_days: int,
    step_days: int,
    train_cutoffs: int,
    min_history_days: int,
    what: str = "model",
) -> CutoffPlan:
    """Place the cutoffs so that every label window ends by `as_of`, or say why they cannot be."""
    end = visible_until(as_of)
    horizon = timedelta(days=horizon_days)
    test = end - horizon
    valid = test - horizon
    earliest = datetime.combine(first_order, datetime.min.time()) + timedelta(min_history_days)
    train = [valid - timedelta(days=step_days * i) for i in range(train_cutoffs, 0, -1)]
    train = [c for c in train if c >= earliest]
    if not train:
        needed = 2 * horizon_days + step_days + min_history_days
        have = (end - datetime.combine(first_order, datetime.min.time())).days
        raise HorizonError(
            f"the {what} horizon of {horizon_days} days does not fit the history: a test, a "
            f"validation and a training cutoff need {needed} days of orders "
            f"({min_history_days} of history, {step_days} between training and validation, "
            f"and two horizons), but the data covers {have} days ({first_order} to {as_of}). "
            f"Shorten the horizon (models.*_horizon_days), min_history_days or cutoff_step_days."
        )
    return CutoffPlan(horizon_days=horizon_days, train=tuple(train), valid=valid, test=test)


def build_examples(
    con: duckdb.DuckDBPyConnection,
    *,
    cutoffs: list[datetime] | tuple[datetime, ...],
    horizon_days: int,
    activity_days: int,
    min_orders: int,
    orders: str = ORDERS_SQL,
    with_labels: bool = True,
) -> pd.DataFrame:
    """One row per (active customer, cutoff): RFM and BTYD summary before it, labels after it.

    Columns: `customer_id`, `cutoff`, `rfm_recency_days`, `rfm_frequency` (orders
    ever), `rfm_monetary` (mean order), `rfm_tenure_days`, `past_revenue` (in the
    `horizon_days` before the cutoff),
    `btyd_frequency`, `btyd_recency`, `btyd_t`, `btyd_monetary` (the `lifetimes`
    summary: repeat purchase days, first-to-last purchase day, age in days, mean
    value of repeat purchase days) and, with labels, `churned` and `revenue`.
    """
    labels = (
        f""",
        NOT EXISTS (SELECT 1 FROM orders f WHERE f.customer_id = a.customer_id
            AND f.ordered_at >= a.cutoff
            AND f.ordered_at < a.cutoff + INTERVAL {horizon_days} DAY) AS churned,
        coalesce((SELECT sum(f.amount) FROM orders f WHERE f.customer_id = a.customer_id
            AND f.ordered_at >= a.cutoff
            AND f.ordered_at < a.cutoff + INTERVAL {horizon_days} DAY), 0.0) AS revenue"""
        if with_labels
        else ""
    )
    sql = f"""
        WITH orders AS ({orders}),
        cutoffs AS (SELECT unnest($cutoffs::TIMESTAMP[]) AS cutoff),
        history AS (
            SELECT o.customer_id, c.cutoff, o.ordered_at, o.amount
            FROM orders o JOIN cutoffs c ON o.ordered_at < c.cutoff
        ),
        days AS (
            SELECT customer_id, cutoff, ordered_at::DATE AS day, sum(amount) AS amount
            FROM history GROUP BY ALL
        ),
        btyd AS (
            SELECT customer_id, cutoff,
                count(*) - 1 AS btyd_frequency,
                date_diff('day', min(day), max(day)) AS btyd_recency,
                date_diff('day', min(day), any_value(cutoff)::DATE) AS btyd_t,
                coalesce((sum(amount) - arg_min(amount, day)) / nullif(count(*) - 1, 0), 0)
                    AS btyd_monetary
            FROM days GROUP BY customer_id, cutoff
        ),
        active AS (
            SELECT customer_id, cutoff,
                date_diff('day', max(ordered_at), cutoff) AS rfm_recency_days,
                count(*) AS rfm_frequency,
                avg(amount) AS rfm_monetary,
                date_diff('day', min(ordered_at), cutoff) AS rfm_tenure_days,
                coalesce(sum(amount) FILTER (
                    WHERE ordered_at >= cutoff - INTERVAL {horizon_days} DAY), 0.0) AS past_revenue
            FROM history GROUP BY customer_id, cutoff
            HAVING count(*) FILTER (
                WHERE ordered_at >= cutoff - INTERVAL {activity_days} DAY) >= {min_orders}
        )
        SELECT a.*, b.btyd_frequency, b.btyd_recency, b.btyd_t, b.btyd_monetary {labels}
        FROM active a JOIN btyd b USING (customer_id, cutoff)
        ORDER BY a.cutoff, a.customer_id
    """
    return con.execute(sql, {"cutoffs": [pd.Timestamp(c).to_pydatetime() for c in cutoffs]}).df()
