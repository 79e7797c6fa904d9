"""MLflow registry: log a trained task into the active run and register it.

The registered models are `churn` and `ltv`. Each version is a native LightGBM
Booster whose MLmodel metadata carries everything the scorer needs besides the
trees: feature names in order, decile cut points, the churn calibrator's
thresholds, the feature service and the horizon. The `champion` alias marks
the version in use; `models.promotion` moves it.
"""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.labels import CutoffPlan
from models.training import TaskResult

__all__ = ["CHAMPION", "champion_version", "log_task"]

CHAMPION = "champion"
PIP_REQUIREMENTS = [f"lightgbm=={lgb.__version__}"]


def champion_version(client: MlflowClient, task: str) -> str | None:
    """The version the `champion` alias points at, or None when there is none."""
    try:
        return str(client.get_model_version_by_alias(task, CHAMPION).version)
    except MlflowException:
        return None


def log_task(result: TaskResult, *, plan: CutoffPlan, feature_service: str, as_of: str) -> str:
    """Log a task's metrics, plots and model into the active run, register the model and
    return its new version."""
    for model_name, metrics in result.metrics.items():
        mlflow.log_metrics({f"{result.task}.{model_name}.{k}": v for k, v in metrics.items()})
    mlflow.log_params(
        {
            f"{result.task}.feature_service": feature_service,
            f"{result.task}.horizon_days": plan.horizon_days,
            f"{result.task}.train_cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in plan.train),
            f"{result.task}.valid_cutoff": f"{plan.valid:%Y-%m-%d}",
            f"{result.task}.test_cutoff": f"{plan.test:%Y-%m-%d}",
            f"{result.task}.n_features": len(result.feature_names),
            f"{result.task}.trees": result.model.n_trees_,
            **{f"{result.task}.{k}": v for k, v in result.sizes.items()},
            **{
                f"{result.task}.lightgbm.{k}": v
                for k, v in result.model.get_params().items()
                if k not in ("n_jobs", "n_estimators")
            },
        }
    )
    if result.skipped:
        mlflow.log_dict(result.skipped, f"{result.task}_skipped_baselines.json")
    mlflow.log_table(pd.DataFrame(result.trials), f"{result.task}_search_trials.json")
    for file_name, figure in result.figures().items():
        mlflow.log_figure(figure, file_name)
    example = result.test_sample.head(5)
    metadata = {
        "task": result.task,
        "feature_names": result.feature_names,
        "decile_cuts": result.decile_cuts.tolist(),
        "calibrator": result.calibrator.to_dict() if result.calibrator else None,
        "feature_service": feature_service,
        "horizon_days": plan.horizon_days,
        "as_of": as_of,
        "test_cutoff": f"{plan.test:%Y-%m-%d}",
    }
    info = mlflow.lightgbm.log_model(
        result.model.booster_,
        name=f"{result.task}_model",
        signature=infer_signature(example, result.model.booster_.predict(example)),
        input_example=example,
        metadata=metadata,
        pip_requirements=PIP_REQUIREMENTS,
        registered_model_name=result.task,
    )
    return str(info.registered_model_version)
