"""MLflow registry: log a fitted task into the active run and register it.

The registered models are `churn`, `ltv` and `orders`. A version is either a native
LightGBM Booster (over the features and the label-free model's outputs) or, for a
label-free champion, an MLflow pyfunc of the BG/NBD + Gamma-Gamma parameters. The
MLmodel metadata carries everything the scorer needs besides the trees: the kind,
the label-free parameters, feature names in order, decile cut points, the churn
calibrator, the feature service and the horizon. The `champion` alias marks the
version in use; `models.promotion` moves it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import lifetimes
import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

    from models.champions import ChampionModel
    from models.workflow import Fitted

__all__ = [
    "CHAMPION",
    "HELD_OUT_TAG",
    "LabelFreePyfunc",
    "champion_version",
    "log_task",
    "metric_name",
    "param_name",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
HELD_OUT_TAG = "held_out"
"""Model version tag: the held-out cutoff (`cutoff`) and the chosen model's metrics there,
measured before the refit."""
PIP_REQUIREMENTS = [f"lightgbm=={lgb.__version__}"]
LABEL_FREE_REQUIREMENTS = [f"lifetimes=={lifetimes.__version__}", f"numpy=={np.__version__}"]


def metric_name(task: str, model: str, metric: str) -> str:
    """The run metric holding `model`'s held-out `metric` for `task`
    (`churn.lightgbm.top_decile_capture`): the one home of that name, for writers and readers."""
    return f"{task}.{model}.{metric}"


def param_name(task: str, name: str) -> str:
    """The run parameter `name` of `task` (`churn.test_cutoff`)."""
    return f"{task}.{name}"


def champion_version(client: MlflowClient, task: str) -> str | None:
    """The version the `champion` alias points at, or None when there is none."""
    try:
        return str(client.get_model_version_by_alias(task, CHAMPION).version)
    except MlflowException:
        return None


class LabelFreePyfunc(PythonModel):
    """A label-free champion as an MLflow pyfunc: features in, the task's answer out."""

    def __init__(self, metadata: dict[str, object]) -> None:
        self.metadata = metadata

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # noqa: ANN001, ARG002
        from models.btyd import BTYDModel
        from models.champions import ChampionModel

        meta = self.metadata
        model = ChampionModel(
            task=str(meta["task"]),
            version="",
            kind="btyd",
            btyd=BTYDModel.from_dict(meta["btyd"]),
            booster=None,
            feature_names=list(meta["feature_names"]),
            decile_cuts=np.asarray(meta["decile_cuts"], dtype=float),
            calibrator=None,
            feature_service=str(meta["feature_service"]),
            horizon_days=int(meta["horizon_days"]),
        )
        return model.predict_frame(model_input)


def log_task(fitted: Fitted, *, as_of: str) -> str:
    """Log a task's choice, metrics, plots and model into the active run, register the
    model and return its new version."""
    task, model, result = fitted.task, fitted.model, fitted.result
    named: dict[str, object] = {
        "kind": model.kind,
        "feature_service": model.feature_service,
        "horizon_days": model.horizon_days,
        "n_features": len(model.feature_names),
        "population": len(fitted.population),
        "label_free": ",".join(f"{k}={v:.4g}" for k, v in model.btyd.params.items()),
    }
    if fitted.plan is not None:
        plan = fitted.plan
        named |= {
            "train_cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in plan.train),
            "valid_cutoff": f"{plan.valid:%Y-%m-%d}",
            "test_cutoff": f"{plan.test:%Y-%m-%d}",
            "refit_cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in fitted.refit_cutoffs),
        }
    if result is not None:
        for name, metrics in result.metrics.items():
            mlflow.log_metrics({metric_name(task, name, k): v for k, v in metrics.items()})
        named |= result.sizes
        named |= {
            f"lightgbm.{k}": v
            for k, v in result.best_params.items()
            if k not in ("n_jobs", "early_stopping_rounds")
        }
        if result.skipped:
            mlflow.log_dict(result.skipped, f"{task}_skipped_baselines.json")
        mlflow.log_table(pd.DataFrame(result.trials), f"{task}_search_trials.json")
        for file_name, figure in result.figures().items():
            mlflow.log_figure(figure, file_name)
    mlflow.log_params({param_name(task, k): v for k, v in named.items()})
    mlflow.set_tag(f"{task}.choice", fitted.reason)
    example = fitted.population[model.feature_names].head(5).astype(float)
    metadata = {
        "task": task,
        "kind": model.kind,
        "btyd": model.btyd.to_dict(),
        "feature_names": model.feature_names,
        "decile_cuts": model.decile_cuts.tolist(),
        "calibrator": model.calibrator.to_dict() if model.calibrator else None,
        "feature_service": model.feature_service,
        "horizon_days": model.horizon_days,
        "as_of": as_of,
        "test_cutoff": f"{fitted.plan.test:%Y-%m-%d}" if fitted.plan else None,
        "choice": fitted.reason,
    }
    with _notices_logged():
        info = _log_model(model, example=example, metadata=metadata)
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_model_version_tag(task, version, "kind", model.kind)
    if fitted.plan is not None and result is not None:
        # The refit trains on the held-out cutoff too: `challenge` needs the score before it.
        held_out = {"cutoff": f"{fitted.plan.test:%Y-%m-%d}", **result.metrics[result.chosen]}
        client.set_model_version_tag(task, version, HELD_OUT_TAG, json.dumps(held_out))
    return version


def _log_model(model: ChampionModel, *, example: pd.DataFrame, metadata: dict) -> ModelInfo:
    """Log `model` into the active run and register it as a new version of its task."""
    task = model.task
    if model.booster is not None:
        matrix = pd.DataFrame(model.model_matrix(example.to_numpy()), columns=model.model_features)
        return mlflow.lightgbm.log_model(
            model.booster,
            name=f"{task}_model",
            signature=infer_signature(matrix, model.booster.predict(matrix)),
            input_example=matrix,
            metadata=metadata,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=task,
        )
    return mlflow.pyfunc.log_model(
        name=f"{task}_model",
        python_model=LabelFreePyfunc(metadata),
        signature=infer_signature(example, model.predict_frame(example)),
        input_example=example,
        metadata=metadata,
        pip_requirements=LABEL_FREE_REQUIREMENTS,
        registered_model_name=task,
    )


@contextlib.contextmanager
def _notices_logged() -> Iterator[None]:
    """MLflow prints its registration notices ("Successfully registered model ...",
    "Created version ...") to stderr: within, they go to this module's log instead."""
    with contextlib.redirect_stderr(io.StringIO()) as printed:
        try:
            yield
        finally:
            for line in printed.getvalue().splitlines():
                logger.info("mlflow: %s", line)
