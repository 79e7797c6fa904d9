"""Backtests: fit as of a past date, predict the next horizon, compare with what happened.

`run_backtest` hides every order after the as-of date from the models (`fit_models`
sees only the history up to it), then measures, on everyone with an order before it,
against the orders placed in the horizon after it:

- `champion`: the models `cip train` would register (per task, LightGBM only where it
  beat the label-free model on its own held-out cutoff);
- `supervised`: the refit LightGBM models, whether chosen or not (absent when the
  history holds no labelled cutoffs);
- `bgnbd` and `pnbd`: the label-free baselines a data scientist would fit on the same
  history, BG/NBD and Pareto/NBD, each with Gamma-Gamma, fitted on the whole history
  (Pareto/NBD on a sample of `models.pnbd_fit_sample` customers: lifetimes' likelihood
  is slow); both are candidates for the champion too.

Metrics: revenue MAE, total revenue error (predicted / actual - 1), Spearman of
revenue, expected-orders MAE, any-purchase ROC-AUC, top-decile revenue capture.
Resolution and the feature snapshots are the warehouse's: identities are resolved on
all the data, as a business that backtests would have them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import mean_absolute_error, roc_auc_score

from features import FeatureSettings
from models.labels import HorizonError, build_examples, data_span, orders_sql, visible_until
from models.metrics import ltv_metrics
from models.plots import ltv_deciles_figure
from models.settings import ModelSettings
from models.workflow import Fitted, fit_models

if TYPE_CHECKING:
    from feast import FeatureStore  # imported by `features`, after its typeguard switch

__all__ = ["METRICS", "Backtest", "run_backtest"]

# Metric -> (description, lower is better).
METRICS = {
    "revenue_mae": ("revenue MAE", True),
    "revenue_total_error": ("total revenue error", None),
    "revenue_spearman": ("revenue Spearman", False),
    "orders_mae": ("expected-orders MAE", True),
    "any_purchase_roc_auc": ("any-purchase ROC-AUC", False),
    "revenue_top_decile_capture": ("top-decile revenue capture", False),
}


@dataclass
class Backtest:
    """One backtest: the models' metrics side by side, what was chosen and why."""

    as_of: date
    horizon_days: int
    customers: int
    actual_revenue: float
    metrics: pd.DataFrame  # one row per model, one column per METRICS key
    choices: dict[str, str]  # per task: "lightgbm", "bgnbd" or "pnbd", then why
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # revenue per model
    actual: np.ndarray = field(default_factory=lambda: np.array([]))

    def figure(self) -> Figure:
        """Predicted against actual revenue by predicted decile, per model."""
        figure = ltv_deciles_figure(self.actual, self.predictions)
        figure.axes[0].set_title(
            f"Backtest as of {self.as_of}, {self.horizon_days} days: revenue by predicted decile"
        )
        return figure


def run_backtest(
    con: duckdb.DuckDBPyConnection,
    *,
    store: FeatureStore,
    feast_dir: Path,
    feature_settings: FeatureSettings,
    settings: ModelSettings,
    as_of: date,
    horizon_days: int,
    on_step: Callable[[str], None] | None = None,
    on_trial: Callable[[dict[str, float]], None] | None = None,
) -> Backtest:
    """Fit as of `as_of` and measure every model on the next `horizon_days` days.

    Raises `HorizonError` with what is wrong: no orders, an as-of date outside the
    history, a horizon running past the last order or longer than the history before.
    """
    orders = orders_sql(include_fragments=settings.include_fragments)
    first, last = data_span(con, orders=orders)
    if not first <= as_of < last:
        raise HorizonError(
            f"--as-of {as_of} is outside the order history ({first} to {last}): a backtest "
            "needs orders before it to learn from and after it to compare with"
        )
    end = visible_until(as_of)
    if end + timedelta(days=horizon_days) > visible_until(last):
        latest = last - timedelta(days=horizon_days)
        raise HorizonError(
            f"--horizon {horizon_days} runs past the last order ({last}) from --as-of "
            f"{as_of}: the backtest could not see the whole window; choose --as-of "
            f"{latest} or earlier, or a shorter --horizon"
        )
    fitted = fit_models(
        con,
        store=store,
        feast_dir=feast_dir,
        feature_settings=feature_settings,
        settings=settings,
        as_of=as_of,
        horizon_days=horizon_days,
        on_step=on_step,
        on_trial=on_trial,
    )
    outcomes = build_examples(
        con, cutoffs=[end], horizon_days=horizon_days, min_orders=settings.min_orders, orders=orders
    ).set_index("customer_id")
    predictions = _predictions(fitted)
    actual = outcomes.loc[fitted["ltv"].population["customer_id"]]
    revenue, count = actual["revenue"].to_numpy(float), actual["orders"].to_numpy(float)
    table = pd.DataFrame({name: _metrics(revenue, count, p) for name, p in predictions.items()}).T[
        list(METRICS)
    ]
    return Backtest(
        as_of=as_of,
        horizon_days=horizon_days,
        customers=len(actual),
        actual_revenue=float(revenue.sum()),
        metrics=table,
        choices={task: f"{_kind(f)}: {f.reason}" for task, f in fitted.items()},
        predictions={name: p["revenue"] for name, p in predictions.items()},
        actual=revenue,
    )


def _kind(fitted: Fitted) -> str:
    """The chosen model's kind: `lightgbm`, or which label-free model (`bgnbd`, `pnbd`)."""
    model = fitted.model
    return model.btyd.kind if model.kind == "btyd" else model.kind


def _predictions(fitted: dict[str, Fitted]) -> dict[str, dict]:
    """Per model: predicted revenue, orders and any-purchase probability, customers aligned."""
    frames = {task: f.population for task, f in fitted.items()}
    ids = frames["ltv"]["customer_id"].to_numpy()
    for task, frame in frames.items():
        if not np.array_equal(frame["customer_id"].to_numpy(), ids):
            raise RuntimeError(f"the {task} population differs from the LTV one")

    def answers(pick: Callable[[Fitted], object]) -> dict[str, np.ndarray]:
        return {
            "revenue": pick(fitted["ltv"]).predict_frame(frames["ltv"]),
            "orders": pick(fitted["orders"]).predict_frame(frames["orders"]),
            "any_purchase": 1 - pick(fitted["churn"]).predict_frame(frames["churn"]),
        }

    found = {"champion": answers(lambda f: f.model)}
    if all(f.supervised is not None for f in fitted.values()):
        found["supervised"] = answers(lambda f: f.supervised)
    found["bgnbd"] = answers(lambda f: f.label_free)
    if all(f.pnbd is not None for f in fitted.values()):
        found["pnbd"] = answers(lambda f: f.pnbd)
    return found


def _metrics(revenue: np.ndarray, orders: np.ndarray, predicted: dict) -> dict[str, float]:
    ltv = ltv_metrics(actual=revenue, predicted=predicted["revenue"])
    bought = orders > 0
    auc = (
        roc_auc_score(bought, predicted["any_purchase"])
        if 0 < bought.sum() < len(bought)
        else float("nan")
    )
    return {
        "revenue_mae": ltv["mae"],
        "revenue_total_error": ltv["total_error"],
        "revenue_spearman": ltv["spearman"],
        "orders_mae": float(mean_absolute_error(orders, predicted["orders"])),
        "any_purchase_roc_auc": float(auc),
        "revenue_top_decile_capture": ltv["top_decile_capture"],
    }
