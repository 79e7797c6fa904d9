"""Cutoffs and labels: who is in the population at a cutoff, and what they did next.

Time is split at cutoffs (midnight timestamps, UTC). The population at a cutoff `c`
is every customer with at least `min_orders` orders before `c`, however long ago
(recency is a feature, not a filter: quiet customers come back too); the label
window is `[c, c + horizon)`: the customer *churned* with no order in it, their
*orders* are how many they placed and their *revenue* what they spent. Everything
else computed for `c` (RFM, past revenue) uses orders strictly before `c` only.

Customers are people: resolved profiles with at least one contactable or login
identifier (email, phone, user id). Orders of fragments (clusters nobody can
contact, such as an anonymous till slip) are left out of the models, and counted
apart (`population_counts`), unless `include_fragments` says otherwise.

The cutoff plan keeps the held-out test cutoff honest: validation labels end at
the test cutoff and training labels end before it, so no outcome of the test
window reaches training or early stopping. Cutoffs fall on month starts, where
`cip features` builds its snapshots, so that training reuses them. Orders come from `raw_orders`
joined to customers through `identity_map` (`orders_sql`), or from any relation
with `customer_id, ordered_at, amount` (an orders-only history).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

__all__ = [
    "CONTACTABLE",
    "ORDERS_SQL",
    "PEOPLE_ORDERS_SQL",
    "CutoffPlan",
    "HorizonError",
    "build_examples",
    "data_span",
    "month_start",
    "orders_sql",
    "plan_cutoffs",
    "population_counts",
    "visible_until",
]

# Identifier types that make a resolved cluster a person one can reach or who logs in.
CONTACTABLE = ("email", "phone", "user_id")

# The orders of resolved customers, fragments included: one row per order, keyed to its
# customer (what segments and reports count).
ORDERS_SQL = """
    SELECT m.customer_id, o.ordered_at, o.amount
    FROM raw_orders o
    JOIN identity_map m ON m.source = 'orders' AND m.record_key = o.order_id
"""
_PEOPLE = (
    "SELECT DISTINCT customer_id FROM customer_identifiers WHERE id_type IN ("
    + ", ".join(f"'{t}'" for t in CONTACTABLE)
    + ")"
)
# ... of people only: the models' population by default.
PEOPLE_ORDERS_SQL = f"{ORDERS_SQL} WHERE m.customer_id IN ({_PEOPLE})"


def orders_sql(*, include_fragments: bool = False) -> str:
    """The models' orders: people's only (`PEOPLE_ORDERS_SQL`), or every customer's."""
    return ORDERS_SQL if include_fragments else PEOPLE_ORDERS_SQL


def population_counts(con: duckdb.DuckDBPyConnection, *, before: datetime) -> dict[str, float]:
    """People and fragments with an order before `before`, and the fragments' share of the
    orders and revenue: what the models leave out by default."""
    people, fragments, orders, revenue = con.execute(
        f"""
        WITH o AS ({ORDERS_SQL} WHERE o.ordered_at < $before),
        people AS ({_PEOPLE})
        SELECT count(DISTINCT customer_id) FILTER (WHERE customer_id IN (FROM people)),
            count(DISTINCT customer_id) FILTER (WHERE customer_id NOT IN (FROM people)),
            count(*) FILTER (WHERE customer_id NOT IN (FROM people)) / greatest(count(*), 1),
            coalesce(sum(amount) FILTER (WHERE customer_id NOT IN (FROM people))
                / nullif(sum(amount), 0), 0)
        FROM o
        """,
        {"before": before},
    ).fetchone()
    return {
        "people": people,
        "fragments": fragments,
        "fragment_order_share": float(orders),
        "fragment_revenue_share": float(revenue),
    }


class HorizonError(ValueError):
    """The history is too short for the horizon: says how much is needed and how much exists."""


@dataclass(frozen=True)
class CutoffPlan:
    """Training, validation and held-out test cutoffs for one horizon.

    `by_customer`: a young history with room for labelled cutoffs but not for three
    horizons one after another; customers are split instead (60% train, 20% validation
    at the `train` cutoffs, 20% held out at `test`, the latest), so the test customers'
    outcomes reach no training, but the windows share their period.
    """

    horizon_days: int
    train: tuple[datetime, ...]
    valid: datetime
    test: datetime
    by_customer: bool = False

    @property
    def all(self) -> tuple[datetime, ...]:
        return (*self.train, self.valid, self.test)

    def describe(self) -> str:
        train = f"{self.train[0]:%Y-%m-%d}..{self.train[-1]:%Y-%m-%d} ({len(self.train)})"
        if self.by_customer:
            return (
                f"young history: cutoffs {train}, customers split 60/20/20 into train, "
                f"valid and test (at {self.test:%Y-%m-%d}), horizon {self.horizon_days} d"
            )
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


def month_start(moment: datetime, *, back: int = 0) -> datetime:
    """The first month start at or before `moment`, `back` months earlier."""
    first = pd.Timestamp(moment).normalize().replace(day=1)
    return (first - pd.DateOffset(months=back)).to_pydatetime()


def plan_cutoffs(
    *,
    first_order: date,
    as_of: date,
    horizon_days: int,
    step_months: int,
    train_cutoffs: int,
    min_history_days: int,
    what: str = "model",
) -> CutoffPlan:
    """Place the cutoffs on month starts (the dates `cip features` builds snapshots at) so
    that every label window ends by `as_of`, or say why they cannot be."""
    horizon = timedelta(days=horizon_days)
    test = month_start(visible_until(as_of) - horizon)
    valid = month_start(test - horizon)
    earliest = datetime.combine(first_order, datetime.min.time()) + timedelta(min_history_days)
    train = [month_start(valid, back=step_months * i) for i in range(train_cutoffs, 0, -1)]
    train = [c for c in train if c >= earliest]
    if not train:
        needed = 2 * horizon_days + 30 * step_months + min_history_days
        have = (visible_until(as_of) - datetime.combine(first_order, datetime.min.time())).days
        raise HorizonError(
            f"the {what} horizon of {horizon_days} days does not fit the history: a test, a "
            f"validation and a training cutoff on month starts need about {needed} days of "
            f"orders ({min_history_days} of history, {step_months} month(s) between training "
            f"and validation, and two horizons), but the data covers {have} days "
            f"({first_order} to {as_of}). Shorten the horizon (models.*_horizon_days), "
            f"min_history_days or cutoff_step_months."
        )
    return CutoffPlan(horizon_days=horizon_days, train=tuple(train), valid=valid, test=test)


def build_examples(
    con: duckdb.DuckDBPyConnection,
    *,
    cutoffs: list[datetime] | tuple[datetime, ...],
    horizon_days: int,
    min_orders: int = 1,
    orders: str = ORDERS_SQL,
    with_labels: bool = True,
) -> pd.DataFrame:
    """One row per (customer with an order before it, cutoff): RFM before it, labels after it.

    Columns: `customer_id`, `cutoff`, `rfm_recency_days`, `rfm_frequency` (orders
    ever), `rfm_monetary` (mean order), `rfm_tenure_days`, `past_revenue` (in the
    `horizon_days` before the cutoff) and, with labels, `churned`, `orders` and
    `revenue` in `[cutoff, cutoff + horizon_days)`.
    """
    labels = (
        """,
        coalesce(n.orders, 0) = 0 AS churned, coalesce(n.orders, 0) AS orders,
        coalesce(n.revenue, 0.0) AS revenue"""
        if with_labels
        else ""
    )
    outcomes = (
        f"""LEFT JOIN (
            SELECT f.customer_id, c.cutoff, count(*) AS orders, sum(f.amount) AS revenue
            FROM orders f JOIN cutoffs c ON f.ordered_at >= c.cutoff
                AND f.ordered_at < c.cutoff + INTERVAL {horizon_days} DAY
            GROUP BY ALL) n USING (customer_id, cutoff)"""
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
        active AS (
            SELECT customer_id, cutoff,
                date_diff('day', max(ordered_at), cutoff) AS rfm_recency_days,
                count(*) AS rfm_frequency,
                avg(amount) AS rfm_monetary,
                date_diff('day', min(ordered_at), cutoff) AS rfm_tenure_days,
                coalesce(sum(amount) FILTER (
                    WHERE ordered_at >= cutoff - INTERVAL {horizon_days} DAY), 0.0) AS past_revenue
            FROM history GROUP BY customer_id, cutoff
            HAVING count(*) >= {min_orders}
        )
        SELECT a.* {labels}
        FROM active a {outcomes}
        ORDER BY a.cutoff, a.customer_id
    """
    return con.execute(sql, {"cutoffs": [pd.Timestamp(c).to_pydatetime() for c in cutoffs]}).df()
