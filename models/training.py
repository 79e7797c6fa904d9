"""Train one task on a cutoff split, choose between it and the label-free model, refit the winner.

The tasks: `churn` (no order in the horizon; LightGBM binary, Platt-calibrated),
`ltv` (revenue in the horizon; Tweedie) and `orders` (orders in the horizon; Poisson).
The inputs are example frames (`models.datasets.ExampleSet`: labels, the services'
features and the label-free model's outputs at each cutoff) for the training,
validation and held-out test cutoffs. LightGBM is tuned and early-stopped on
validation; everything is measured on test, beside the label-free model (BG/NBD +
Gamma-Gamma fitted on the test cutoff's own history, no labels) and the classic
baselines. The supervised model is chosen only when it beats the label-free one on
the task's metric there (`TaskResult.chosen`).

The chosen model is then refit on the latest labelled cutoffs (`refit_model`) with
the chosen hyperparameters and number of trees, or, for the label-free model, fitted
on the whole history up to the as-of date (`label_free_model`); decile cut points come
from the population it scores (`with_deciles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models.baselines import RFM_COLUMNS, past_revenue, rfm_logistic
from models.btyd import KINDS, BTYDModel
from models.calibration import PlattCalibrator
from models.champions import LABEL_FREE, ChampionModel
from models.estimators import ChurnClassifier, LTVRegressor, OrdersRegressor, search
from models.explanations import shap_summary
from models.labels import HorizonError
from models.metrics import better, churn_metrics, decile_cuts, ltv_metrics, orders_metrics
from models.plots import (
    calibration_figure,
    gains_figure,
    importance_figure,
    ltv_deciles_figure,
    roc_figure,
)
from models.settings import ModelSettings

__all__ = [
    "CANDIDATES",
    "ESTIMATORS",
    "TASKS",
    "TaskResult",
    "capped",
    "label_free_model",
    "metric_of",
    "numeric_features",
    "refit_model",
    "task_metrics",
    "train_task",
    "with_deciles",
]

# Each task's label column in the examples.
TASKS = {"churn": "churned", "ltv": "revenue", "orders": "orders"}
ESTIMATORS = {"churn": ChurnClassifier, "ltv": LTVRegressor, "orders": OrdersRegressor}


def metric_of(settings: ModelSettings, task: str) -> str:
    """The held-out metric that chooses and promotes the task's model."""
    return {
        "churn": settings.churn_metric,
        "ltv": settings.ltv_metric,
        "orders": settings.orders_metric,
    }[task]


@dataclass
class TaskResult:
    """The tuned LightGBM model, and how it, the label-free model and the baselines did on
    the held-out cutoff; which of the two candidates was chosen, and why."""

    task: str
    model: ChurnClassifier | LTVRegressor | OrdersRegressor
    feature_names: list[str]
    calibrator: PlattCalibrator | None
    labels: np.ndarray
    predictions: dict[str, np.ndarray]
    metrics: dict[str, dict[str, float]]
    metric: str
    chosen: str
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, float]] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    test_sample: pd.DataFrame | None = None

    def lead(self, metric: str) -> dict[str, float]:
        """How far the LightGBM model is ahead of each other model on `metric` (positive:
        ahead, whichever the metric's direction)."""
        ours = self.metrics["lightgbm"][metric]
        return {
            name: better(metric, ours, m[metric])
            for name, m in self.metrics.items()
            if name != "lightgbm"
        }

    @property
    def best_params(self) -> dict[str, object]:
        """The chosen hyperparameters, with the number of trees early stopping kept."""
        return {**self.model.get_params(), "n_estimators": self.model.n_trees_}

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
            figures[f"{self.task}_deciles.png"] = ltv_deciles_figure(self.labels, self.predictions)
        return figures


def numeric_features(frame: pd.DataFrame, names: list[str]) -> tuple[list[str], list[str]]:
    """Split feature names into those LightGBM takes as numbers (booleans included, even
    with nulls) and the rest, which are dropped (text such as city or age band)."""
    kinds = {"integer", "floating", "mixed-integer-float", "boolean", "empty", "decimal"}
    kept = [n for n in names if pd.api.types.infer_dtype(frame[n], skipna=True) in kinds]
    return kept, [n for n in names if n not in kept]


def capped(rows: pd.DataFrame, settings: ModelSettings) -> pd.DataFrame:
    """At most `models.max_train_rows` of the training rows, a random sample: the same
    customers recur at every monthly cutoff, so a sample loses little and keeps training
    time flat as the history grows."""
    if len(rows) <= settings.max_train_rows:
        return rows
    return rows.sample(settings.max_train_rows, random_state=settings.seed).sort_index()


def task_metrics(task: str, labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The task's metric set for one prediction."""
    if task == "churn":
        return churn_metrics(churned=labels, probability=predicted)
    if task == "orders":
        return orders_metrics(actual=labels, predicted=predicted)
    return ltv_metrics(actual=labels, predicted=predicted)


def _matrix(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return frame[names].astype(float)


def _estimator(task: str, settings: ModelSettings, **params: object):  # noqa: ANN202
    extra = {"tweedie_variance_power": settings.tweedie_variance_power} if task == "ltv" else {}
    return ESTIMATORS[task](
        random_state=settings.seed, n_jobs=settings.threads, **extra
    ).set_params(**params)


def label_free_prediction(task: str, frame: pd.DataFrame) -> np.ndarray:
    """The label-free model's answer for the task, from its output columns."""
    value = frame[LABEL_FREE[task]].to_numpy(dtype=float)
    return 1 - value if task == "churn" else value


def train_task(
    task: str,
    *,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    feature_names: list[str],
    settings: ModelSettings,
    label_free: dict[str, pd.DataFrame] | None = None,
    on_trial: Callable[[dict[str, float]], None] | None = None,
) -> TaskResult:
    """Tune LightGBM, measure it beside the label-free models and the baselines on `test`,
    and choose the best of LightGBM and the label-free models on the task's metric.

    `feature_names` are the columns LightGBM reads (the services' features and the
    BG/NBD outputs, `btyd`). `label_free` holds other label-free models' outputs on the
    test rows (`BTYD_OUTPUTS` columns), by name (`pnbd`: Pareto/NBD), candidates too.
    `on_trial` is called after each hyperparameter trial.
    """
    label = TASKS[task]
    for name, rows in (("training", train), ("validation", valid), ("test", test)):
        if rows[label].nunique() < 2:
            raise HorizonError(
                f"{task}: the {name} cutoff(s) have {len(rows)} customers and "
                f"{rows[label].nunique()} distinct label value(s); need more history"
            )
    train = capped(train, settings)
    y, y_val, y_test = (f[label].to_numpy(dtype=float) for f in (train, valid, test))
    X, X_val, X_test = (_matrix(f, feature_names) for f in (train, valid, test))
    model, trials = search(
        _estimator(task, settings),
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
    else:
        predictions["lightgbm"] = raw_test
    if test[LABEL_FREE[task]].notna().all():
        predictions["btyd"] = label_free_prediction(task, test)
    else:
        skipped["btyd"] = "the label-free model did not fit the test cutoff"
    for name, outputs in (label_free or {}).items():
        predictions[name] = label_free_prediction(task, outputs)
    if task == "churn":
        logistic = rfm_logistic().fit(train[RFM_COLUMNS], y.astype(int))
        predictions["rfm_logistic"] = logistic.predict_proba(test[RFM_COLUMNS])[:, 1]
    elif task == "ltv":
        predictions["past_revenue"] = past_revenue(test)
    metrics = {name: task_metrics(task, y_test, p) for name, p in predictions.items()}
    if calibrator is not None:
        metrics["lightgbm"]["brier_uncalibrated"] = task_metrics(task, y_test, raw_test)["brier"]
    metric = metric_of(settings, task)
    chosen, reason = _choose(metrics, metric)
    return TaskResult(
        task=task,
        model=model,
        feature_names=list(feature_names),
        calibrator=calibrator,
        labels=y_test,
        predictions=predictions,
        metrics=metrics,
        metric=metric,
        chosen=chosen,
        reason=reason,
        skipped=skipped,
        trials=trials,
        sizes={"train_rows": len(train), "valid_rows": len(valid), "test_rows": len(test)},
        test_sample=X_test.sample(min(len(X_test), 2000), random_state=settings.seed),
    )


CANDIDATES = {"lightgbm": "LightGBM", "btyd": KINDS["bgnbd"], "pnbd": KINDS["pnbd"]}


def _choose(metrics: dict[str, dict[str, float]], metric: str) -> tuple[str, str]:
    """The candidate (LightGBM, BG/NBD or Pareto/NBD) best on `metric` on the held-out
    cutoff; LightGBM on a tie."""
    found = [name for name in CANDIDATES if name in metrics]
    if found == ["lightgbm"]:
        ours = metrics["lightgbm"][metric]
        return "lightgbm", f"LightGBM ({metric} {ours:.4f}); no label-free model fitted"
    best = found[0]
    for name in found[1:]:
        if better(metric, metrics[name][metric], metrics[best][metric]) > 0:
            best = name
    others = ", ".join(f"{metrics[n][metric]:.4f} ({CANDIDATES[n]})" for n in found if n != best)
    score = f"{metric} {metrics[best][metric]:.4f} vs {others}"
    if best == "lightgbm":
        return best, f"LightGBM beats the label-free models on the held-out cutoff: {score}"
    return best, (
        f"the label-free model ({CANDIDATES[best]}) is the model: it beats the other "
        f"candidates on the held-out cutoff ({score})"
    )


def refit_model(
    result: TaskResult,
    *,
    rows: pd.DataFrame,
    latest: pd.DataFrame,
    btyd: BTYDModel,
    feature_names: list[str],
    feature_service: str,
    horizon_days: int,
    settings: ModelSettings,
) -> ChampionModel:
    """LightGBM with the chosen hyperparameters and trees, trained on `rows` (the latest
    labelled cutoffs; `latest` is the newest of them, which calibrates churn), around
    `btyd` fitted on the whole history. Decile cuts are set by `with_deciles`."""
    label = TASKS[result.task]
    rows = capped(rows, settings)
    model = _estimator(result.task, settings, **result.best_params).fit(
        _matrix(rows, result.feature_names), rows[label].to_numpy(dtype=float)
    )
    calibrator = None
    if result.task == "churn":
        calibrator = PlattCalibrator().fit(
            model.booster_.predict(_matrix(latest, result.feature_names)),
            latest[label].to_numpy(dtype=float),
        )
    return ChampionModel(
        task=result.task,
        version="",
        kind="lightgbm",
        btyd=btyd,
        booster=model.booster_,
        feature_names=list(feature_names),
        decile_cuts=np.array([]),
        calibrator=calibrator,
        feature_service=feature_service,
        horizon_days=horizon_days,
    )


def label_free_model(
    task: str, *, btyd: BTYDModel, feature_names: list[str], feature_service: str, horizon_days: int
) -> ChampionModel:
    """The label-free model as a registrable model for `task` (no trees, no calibration)."""
    return ChampionModel(
        task=task,
        version="",
        kind="btyd",
        btyd=btyd,
        booster=None,
        feature_names=list(feature_names),
        decile_cuts=np.array([]),
        calibrator=None,
        feature_service=feature_service,
        horizon_days=horizon_days,
    )


def with_deciles(model: ChampionModel, population: pd.DataFrame) -> ChampionModel:
    """The model with decile cut points from its raw scores on the population it scores."""
    raw = model.raw(population[model.feature_names].astype(float).to_numpy())
    return replace(model, decile_cuts=decile_cuts(raw))
