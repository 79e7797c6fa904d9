"""A model's lift in plain words: how many of the churners its riskiest 10% hold, and how
many a perfect model's would.

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
    """How much of what a model predicts its top 10% hold: for churn, the share of all
    churners among the 10% rated riskiest; for value (`task="ltv"`), the share of all the
    value customers then brought that the 10% it valued highest brought."""

    capture: float
    basis: str
    """Where the figure comes from, in words a marketer can read."""
    deciles: pd.DataFrame | None = None
    """Per churn decile (10 = riskiest): `customers`, `churners`, `capture`, when measured here."""
    best: float | None = None
    """What a perfect model's top 10% would hold (churners cannot all fit in 10% when more
    than a tenth churn), when known."""
    task: str = "churn"
    """The model measured: `churn` or `ltv`."""
    ranking: float | None = None
    """How well the model orders customers against a perfect order (normalized Gini: 0 is
    random, 1 perfect), when known."""

    @property
    def sentence(self) -> str:
        """The plain-words statement of the lift."""
        if self.task == "ltv":
            text = (
                f"The 10% of customers the model values highest brought {self.capture:.0%} of "
                "the value customers brought"
            )
        else:
            text = (
                f"The 10% of customers the model rates riskiest hold {self.capture:.0%} "
                "of the customers who churned"
            )
        if self.capture <= 0.1:
            text += "."
        else:
            verb = "bring" if self.task == "ltv" else "hold"
            text += f": {self.capture / 0.1:.1f} times what a random 10% would {verb}."
        if self.best is not None and self.best > 0:
            share = min(self.capture / self.best, 1.0)
            text += (
                f" The best possible is {self.best:.0%} (a perfect model's top 10%), so it "
                f"does {share:.0%} as well as a perfect model would."
            )
        elif self.ranking is not None:
            text += (
                f" It orders customers {max(self.ranking, 0.0):.0%} as well as a perfect model "
                "would (100% = perfect, 0% = no better than chance)."
            )
        return text


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
    best = min(len(top), churners) / churners  # every one of the riskiest 10% a churner
    table = decile_table(actual=churned, predicted=probability)
    table = table.rename(columns={"actual": "churn_rate"})
    table["churners"] = (table["churn_rate"] * table["customers"]).round().astype(int)
    scored = pd.Timestamp(outcomes["as_of"].iloc[0])
    basis = (
        f"Measured on the scoring of {scored:%d %B %Y}: of its {len(outcomes):,} customers, "
        f"{churners:,} bought nothing in the {horizon_days} days that followed."
    )
    return Lift(capture=float(churned[top].sum() / churners), basis=basis, deciles=table, best=best)
