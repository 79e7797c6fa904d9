"""The churn model's lift in plain words: how many of the churners its riskiest 10% hold.

Measured, by preference, on realised outcomes: the latest scoring old enough
for its churn horizon to have passed, against who then bought nothing in the
horizon (the churn label of `models.labels`). Before any scoring is that old,
the figure comes from the champion model's held-out test set as recorded in
its MLflow run (the caller reads it; see `pipelines/commands/activate.py`).
Either way `Lift.basis` says which, in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from models.labels import ORDERS_SQL
from models.metrics import decile_table
from segments.fields import warehouse_tables
from warehouse.tables import IDENTITY_MAP, SCORES, raw_table

__all__ = ["Lift", "realised_lift"]


@dataclass(frozen=True)
class Lift:
    """Share of all churners among the 10% of customers with the highest churn probability."""

    capture: float
    basis: str
    """Where the figure comes from, in words a marketer can read."""
    deciles: pd.DataFrame | None = None
    """Per churn decile (10 = riskiest): `customers`, `churners`, `capture`, when measured here."""

    @property
    def sentence(self) -> str:
        """The plain-words statement of the lift."""
        text = (
            f"The 10% of customers the model rates riskiest hold {self.capture:.0%} "
            "of the customers who churned"
        )
        if self.capture <= 0.1:
            return text + "."
        return text + f": {self.capture / 0.1:.1f} times what a random 10% would hold."


def realised_lift(con: duckdb.DuckDBPyConnection, *, horizon_days: int) -> Lift | None:
    """The lift of the latest scoring whose horizon has passed, or None when there is none."""
    if not {SCORES, raw_table("orders"), IDENTITY_MAP} <= warehouse_tables(con):
        return None
    outcomes = con.execute(
        f"""WITH orders AS ({ORDERS_SQL}),
            scoring AS (
                SELECT scoring_id, as_of FROM {SCORES} GROUP BY ALL
                HAVING as_of + INTERVAL {int(horizon_days)} DAY
                       <= (SELECT max(ordered_at) FROM orders)
                ORDER BY as_of DESC LIMIT 1)
            SELECT s.as_of, s.churn_probability,
                NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = s.customer_id
                    AND o.ordered_at >= s.as_of
                    AND o.ordered_at < s.as_of + INTERVAL {int(horizon_days)} DAY) AS churned
            FROM {SCORES} s JOIN scoring USING (scoring_id, as_of)"""
    ).df()
    churners = int(outcomes["churned"].sum()) if len(outcomes) else 0
    if churners == 0 or churners == len(outcomes):
        return None
    churned = outcomes["churned"].to_numpy()
    probability = outcomes["churn_probability"].to_numpy()
    top = np.argsort(-probability, kind="stable")[: math.ceil(len(outcomes) / 10)]
    table = decile_table(actual=churned, predicted=probability)
    table = table.rename(columns={"actual": "churn_rate"})
    table["churners"] = (table["churn_rate"] * table["customers"]).round().astype(int)
    scored = pd.Timestamp(outcomes["as_of"].iloc[0])
    basis = (
        f"Measured on the scoring of {scored:%d %B %Y}: of its {len(outcomes):,} customers, "
        f"{churners:,} bought nothing in the {horizon_days} days that followed."
    )
    return Lift(capture=float(churned[top].sum() / churners), basis=basis, deciles=table)
