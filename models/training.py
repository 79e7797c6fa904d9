"""Train one task (churn or LTV) on a cutoff split, with its baselines, and measure all of them.

The inputs are example frames (`models.labels.build_examples` columns joined to
the feature service's features) for the training, validation and held-out test
cutoffs. LightGBM is tuned and early-stopped on validation; the churn model's
probabilities are calibrated on validation too; everything is measured on test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.baselines import RFM_COLUMNS, BTYDRegressor, past_revenue, rfm_logistic
from models.calibration import PlattCalibrator
from models.estimators import ChurnClassifier, LTVRegressor, search
from models.explanations import shap_summary
from models.labels import HorizonError
from models.metrics import churn_metrics, decile_cuts, ltv_metrics
from models.plots import (
    calibration_figure,
    gains_figure,
    importance_figure,
    ltv_deciles_figure,
    roc_figure,
)
from models.settings import ModelSettings

__all__ = ["TASKS", "TaskResult", "numeric_features", "task_metrics", "train_task"]

# Each task's label column in the examples.
TASKS = {"churn": "churned", "ltv": "revenue"}


@dataclass
class TaskResult:
    """A trained model, its calibrator and deciles, and how it and its baselines did on test."""

    task: str
    model: ChurnClassifier | LTVRegressor
    feature_names: list[str]
    decile_cuts: np.ndarray
    calibrator: PlattCalibrator | None
    labels: np.ndarray
    predictions: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    skipped: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, float]] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    test_sample: pd.DataFrame | None = None

    def lead(self, metric: str) -> dict[str, float]:
        """How far the LightGBM model is ahead of each baseline on `metric` (positive: ahead)."""
        ours = self.metrics["lightgbm"][metric]
        return {name: ours - m[metric] for name, m in self.metrics.items() if name != "lightgbm"}

    def figures(self) -> dict[str, Figure]:
        """The run's plots, by artifact file name."""
        figures = {
            f"{self.task}_importance.png": importance_figure(
                self.model.feature_importance(), title=f"{self.task}: LightGBM gain"
            ),
        }
        if self.test_sample is not None:
            figures[f"{self.task}_shap_summary.png"] = importance_figure(
                shap_summary(self.model.booster_, self.test_sample),
                title=f"{self.task}: mean |SHAP| (held-out sample)",
            )
        if self.task == "churn":
            figures["churn_roc.png"] = roc_figure(self.labels, self.predictions)
            figures["churn_calibration.png"] = calibration_figure(self.labels, self.predictions)
            figures["churn_gains_lift.png"] = gains_figure(self.labels, self.predictions)
        else:
            figures["ltv_deciles.png"] = ltv_deciles_figure(self.labels, self.predictions)
        return figures


def numeric_features(frame: pd.DataFrame, names: list[str]) -> tuple[list[str], list[str]]:
    """Split feature names into those LightGBM takes as numbers (booleans included, even
    with nulls) and the rest, which are dropped (text such as city or age band)."""
    kinds = {"integer", "floating", "mixed-integer-float", "boolean", "empty", "decimal"}
    kept = [n for n in names if pd.api.types.infer_dtype(frame[n], skipna=True) in kinds]
    return kept, [n for n in names if n not in kept]


def task_metrics(task: str, labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The task's metric set for one prediction."""
    if task == "churn":
        return churn_metrics(churned=labels, probability=predicted)
    return ltv_metrics(actual=labels, predicted=predicted)


def _matrix(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return frame[names].astype(float)


def train_task(
    task: str,
    *,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    feature_names: list[str],
    settings: ModelSettings,
    on_trial: Callable[[dict[str, float]], None] | None = None,
) -> TaskResult:
    """Fit the LightGBM model and the task's baselines; measure all on `test`.

    `on_trial` is called after each hyperparameter trial (for progress bars).
    """
    label = TASKS[task]
    for name, rows in (("training", train), ("validation", valid), ("test", test)):
        if rows[label].nunique() < 2:
            raise HorizonError(
                f"{task}: the {name} cutoff(s) have {len(rows)} active customers and "
                f"{rows[label].nunique()} distinct label value(s); need more history"
            )
    y, y_val, y_test = (f[label].to_numpy(dtype=float) for f in (train, valid, test))
    X, X_val, X_test = (_matrix(f, feature_names) for f in (train, valid, test))
    if task == "churn":
        estimator = ChurnClassifier(random_state=settings.seed, n_jobs=settings.threads)
    else:
        estimator = LTVRegressor(
            random_state=settings.seed,
            n_jobs=settings.threads,
            tweedie_variance_power=settings.tweedie_variance_power,
        )
    model, trials = search(
        estimator,
        X=X,
        y=y,
        X_val=X_val,
        y_val=y_val,
        bounds=settings.search,
        seed=settings.seed,
        on_trial=on_trial,
    )
    raw_test = model.booster_.predict(X_test)
    predictions: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    calibrator = None
    if task == "churn":
        calibrator = PlattCalibrator().fit(model.booster_.predict(X_val), y_val)
        predictions["lightgbm"] = calibrator.transform(raw_test)
        logistic = rfm_logistic().fit(train[RFM_COLUMNS], y.astype(int))
        predictions["rfm_logistic"] = logistic.predict_proba(test[RFM_COLUMNS])[:, 1]
    else:
        predictions["lightgbm"] = raw_test
        predictions["past_revenue"] = past_revenue(test)
        try:
            btyd = BTYDRegressor(horizon_days=settings.ltv_horizon_days).fit(test)
            predictions["btyd"] = btyd.predict(test)
        except ValueError as error:
            skipped["btyd"] = str(error)
    metrics = {name: task_metrics(task, y_test, p) for name, p in predictions.items()}
    if calibrator is not None:
        metrics["lightgbm"]["brier_uncalibrated"] = task_metrics(task, y_test, raw_test)["brier"]
    return TaskResult(
        task=task,
        model=model,
        feature_names=list(feature_names),
        decile_cuts=decile_cuts(raw_test),
        calibrator=calibrator,
        labels=y_test,
        predictions=predictions,
        metrics=metrics,
        skipped=skipped,
        trials=trials,
        sizes={"train_rows": len(train), "valid_rows": len(valid), "test_rows": len(test)},
        test_sample=X_test.sample(min(len(X_test), 2000), random_state=settings.seed),
    )
