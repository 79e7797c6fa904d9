"""How good a churn or LTV prediction is: the metrics every run logs, and deciles.

Deciles are numbered 1 (lowest score) to 10 (highest) from fixed cut points, so
that one customer's decile can be computed alone, at scoring time or in the API.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

__all__ = [
    "LOWER_IS_BETTER",
    "assign_deciles",
    "better",
    "churn_metrics",
    "decile_cuts",
    "decile_table",
    "ltv_metrics",
    "normalized_gini",
    "orders_metrics",
    "reliability",
]


# Metrics where a smaller value is the better model; every other metric: larger is better.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "brier", "log_loss"})


def better(metric: str, a: float, b: float) -> float:
    """How far `a` is better than `b` on `metric` (positive: better), whichever its direction."""
    return b - a if metric in LOWER_IS_BETTER else a - b


def decile_cuts(scores: np.ndarray) -> np.ndarray:
    """The nine cut points splitting `scores` into ten equally filled deciles."""
    return np.quantile(np.asarray(scores, dtype=float), np.linspace(0.1, 0.9, 9))


def assign_deciles(scores: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Decile 1..10 of each score given the cut points (10 holds the highest scores)."""
    return np.searchsorted(np.asarray(cuts), np.asarray(scores, dtype=float), side="right") + 1


def decile_table(*, actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Per predicted-score decile (10 = highest): size, mean predicted, mean actual, capture."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    deciles = assign_deciles(predicted, decile_cuts(predicted))
    frame = pd.DataFrame({"decile": deciles, "predicted": predicted, "actual": actual})
    table = frame.groupby("decile").agg(
        customers=("actual", "size"), predicted=("predicted", "mean"), actual=("actual", "mean")
    )
    total = actual.sum()
    sums = frame.groupby("decile")["actual"].sum()
    table["capture"] = sums / total if total > 0 else 0.0
    return table.sort_index(ascending=False)


def _top_decile(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Lift and capture of the 10% highest predictions."""
    n_top = max(1, int(np.ceil(len(actual) * 0.1)))
    top = np.argsort(-predicted, kind="stable")[:n_top]
    rate = actual.mean()
    if rate == 0:
        return 0.0, 0.0
    return float(actual[top].mean() / rate), float(actual[top].sum() / actual.sum())


def churn_metrics(*, churned: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier, log loss, top-decile lift and capture, base rate."""
    y = np.asarray(churned, dtype=int)
    p = np.clip(np.asarray(probability, dtype=float), 1e-7, 1 - 1e-7)
    if y.min() == y.max():
        raise ValueError("churn metrics need both churners and non-churners in the held-out set")
    lift, capture = _top_decile(y.astype(float), p)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p)),
        "top_decile_lift": lift,
        "top_decile_capture": capture,
        "base_rate": float(y.mean()),
        "mean_probability": float(p.mean()),
    }


def reliability(
    *, churned: np.ndarray, probability: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Reliability curve: (mean predicted, observed rate) per quantile bin of predictions."""
    observed, predicted = calibration_curve(churned, probability, n_bins=bins, strategy="quantile")
    return predicted, observed


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of the ranking by `predicted`, divided by the Gini of the perfect ranking."""

    def gini(values: np.ndarray, order_by: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(values)), -order_by))
        cumulative = np.cumsum(values[order]) / values.sum()
        return float(cumulative.sum() / len(values) - (len(values) + 1) / (2 * len(values)))

    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    if actual.sum() <= 0:
        raise ValueError("normalized Gini needs some positive actual value")
    return gini(actual, predicted) / gini(actual, actual)


def orders_metrics(*, actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Expected-orders quality: MAE, RMSE, Spearman, totals, any-purchase ROC-AUC of the count."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    bought = actual > 0
    return {
        "mae": float(mean_absolute_error(actual, predicted)),
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "spearman": float(spearmanr(actual, predicted).statistic),
        "total_actual": float(actual.sum()),
        "total_predicted": float(predicted.sum()),
        "any_purchase_roc_auc": float(roc_auc_score(bought, predicted))
        if 0 < bought.sum() < len(bought)
        else float("nan"),
    }


def ltv_metrics(*, actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, Spearman, normalized Gini, totals predicted vs actual, top-decile capture."""
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    total_actual, total_predicted = float(actual.sum()), float(predicted.sum())
    return {
        "mae": float(mean_absolute_error(actual, predicted)),
        "rmse": float(root_mean_squared_error(actual, predicted)),
        "spearman": float(spearmanr(actual, predicted).statistic),
        "normalized_gini": normalized_gini(actual, predicted),
        "total_actual": total_actual,
        "total_predicted": total_predicted,
        "total_ratio": total_predicted / total_actual if total_actual else float("nan"),
        "total_error": total_predicted / total_actual - 1 if total_actual else float("nan"),
        "top_decile_capture": _top_decile(actual, predicted)[1],
    }
