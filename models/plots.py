"""Figures every training run logs: ROC, calibration, gains and lift, LTV deciles, importance.

Each function takes held-out labels and one prediction per model (the LightGBM
model and its baselines, by name) and returns a matplotlib `Figure` built
without pyplot, so it renders with the Agg canvas whatever the global backend
is (no display needed, safe in servers and notebooks alike).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from models.metrics import decile_table, reliability

__all__ = [
    "calibration_figure",
    "gains_figure",
    "importance_figure",
    "ltv_deciles_figure",
    "roc_figure",
]


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def roc_figure(churned: np.ndarray, predictions: dict[str, np.ndarray]) -> Figure:
    figure, axes = _axes("Churn ROC (held-out cutoff)", "false positive rate", "true positive rate")
    for name, p in predictions.items():
        fpr, tpr, _ = roc_curve(churned, p)
        axes.plot(fpr, tpr, label=name)
    axes.plot([0, 1], [0, 1], "k:", lw=1)
    axes.legend()
    return figure


def calibration_figure(churned: np.ndarray, predictions: dict[str, np.ndarray]) -> Figure:
    figure, axes = _axes("Churn reliability", "mean predicted probability", "observed churn rate")
    for name, p in predictions.items():
        predicted, observed = reliability(churned=churned, probability=p)
        axes.plot(predicted, observed, "o-", label=name)
    axes.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    axes.legend()
    return figure


def gains_figure(churned: np.ndarray, predictions: dict[str, np.ndarray]) -> Figure:
    figure = Figure(figsize=(10, 4.5), layout="constrained")
    gains, lift = figure.subplots(1, 2)
    share = np.linspace(0, 1, 101)
    y = np.asarray(churned, dtype=float)
    for name, p in predictions.items():
        captured = np.concatenate([[0], np.cumsum(y[np.argsort(-np.asarray(p))]) / y.sum()])
        curve = np.interp(share, np.linspace(0, 1, len(captured)), captured)
        gains.plot(share, curve, label=name)
        lift.plot(share[1:], curve[1:] / share[1:], label=name)
    gains.plot([0, 1], [0, 1], "k:", lw=1)
    gains.set(title="Cumulative gains", xlabel="share targeted", ylabel="share of churners")
    lift.set(title="Lift", xlabel="share targeted", ylabel="lift")
    for axes in (gains, lift):
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def ltv_deciles_figure(actual: np.ndarray, predictions: dict[str, np.ndarray]) -> Figure:
    figure, axes = _axes("LTV decile calibration", "predicted decile", "mean revenue")
    width = 0.8 / (len(predictions) + 1)
    for i, (name, p) in enumerate(predictions.items()):
        table = decile_table(actual=actual, predicted=p).sort_index()
        x = table.index.to_numpy() + (i - len(predictions) / 2) * width
        axes.bar(x, table["actual"], width, alpha=0.5, label=f"{name}: actual")
        axes.plot(x, table["predicted"], "o-", label=f"{name}: predicted")
    axes.legend(fontsize=8)
    return figure


def importance_figure(importance: pd.Series, *, title: str, top: int = 20) -> Figure:
    """Horizontal bars of the `top` largest values (gain, or mean |SHAP|)."""
    shown = importance.head(top)[::-1]
    figure = Figure(figsize=(7, 0.3 * len(shown) + 1.2), layout="constrained")
    axes = figure.subplots()
    axes.barh(shown.index, shown.to_numpy())
    axes.set(title=title)
    return figure
