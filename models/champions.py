"""The lean champion scorer: the champions loaded natively, plus plain numpy state.

`load_champions(tracking_uri=...)` downloads the `churn`, `ltv` and `orders`
versions the `champion` alias points at and keeps, per model, its kind (a
LightGBM Booster, or the label-free model alone), the label-free model's
parameters, the feature names in order, the decile cut points and (churn) the
Platt calibrator. Scoring a float matrix costs microseconds per row; reasons
(SHAP) 0.15 to 3.5 ms, so they are asked for explicitly. `Champions.is_current`
tells a long-lived server that an alias moved, so that it can reload without a
restart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import Model

from models.btyd import BTYD_INPUTS, BTYD_OUTPUTS, BTYDModel
from models.calibration import PlattCalibrator
from models.explanations import predict_threads, top_reasons
from models.metrics import assign_deciles
from models.registry import CHAMPION, champion_version

__all__ = [
    "LABEL_FREE",
    "TASK_NAMES",
    "ChampionModel",
    "Champions",
    "NoChampionError",
    "load_champion",
    "load_champions",
]

# The registered models, and the label-free output that answers each on its own (churn is
# one minus the probability of a purchase).
TASK_NAMES = ("churn", "ltv", "orders")
LABEL_FREE = {"churn": "btyd_p_purchase", "ltv": "btyd_revenue", "orders": "btyd_expected_orders"}


class NoChampionError(LookupError):
    """A registered model has no `champion` alias (run `cip train` first)."""


@dataclass(frozen=True)
class ChampionModel:
    """One model, ready to score a float matrix in `feature_names` order.

    `kind` is `lightgbm` (a Booster over the features and the label-free model's outputs)
    or `btyd` (the label-free model alone: BG/NBD or Pareto/NBD, with Gamma-Gamma, on the
    order summary). Both carry the fitted label-free model, whose outputs are computed
    from the matrix.
    """

    task: str
    version: str
    kind: str
    btyd: BTYDModel
    booster: lgb.Booster | None
    feature_names: list[str]
    decile_cuts: np.ndarray
    calibrator: PlattCalibrator | None
    feature_service: str
    horizon_days: int

    @property
    def model_features(self) -> list[str]:
        """The columns of `model_matrix`: the features, then the label-free outputs."""
        return [*self.feature_names, *BTYD_OUTPUTS]

    @functools.cached_property
    def label_free(self) -> tuple[object, ...]:
        """What the label-free outputs depend on: the model's kind and parameters, and the
        horizon (equal for champions that can share one computation of them)."""
        return (self.btyd.kind, *sorted(self.btyd.params.items()), self.horizon_days)

    def label_free_outputs(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """The label-free model's outputs for the horizon (`BTYD_OUTPUTS`), per row of `X`."""
        inputs = X[:, [self.feature_names.index(n) for n in BTYD_INPUTS]]
        return self.btyd.output_arrays(inputs, horizon_days=self.horizon_days)

    def model_matrix(
        self, X: np.ndarray, *, outputs: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """The features and the label-free model's outputs for the horizon, side by side
        (`outputs`: those outputs if already computed, see `label_free`)."""
        X = np.asarray(X, dtype=float)
        outputs = self.label_free_outputs(X) if outputs is None else outputs
        return np.column_stack([X, *(outputs[name] for name in BTYD_OUTPUTS)])

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The model's own output: uncalibrated churn probability, revenue or orders."""
        return self.raw_from(self.model_matrix(X))

    def raw_from(self, matrix: np.ndarray) -> np.ndarray:
        """`raw` of a `model_matrix` already computed."""
        if self.booster is not None:
            return self.booster.predict(matrix, num_threads=predict_threads(len(matrix)))
        column = matrix[:, len(self.feature_names) + BTYD_OUTPUTS.index(LABEL_FREE[self.task])]
        return 1 - column if self.task == "churn" else column

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores to what is served: calibrated churn probability, or the value as is."""
        return self.calibrator.transform(raw) if self.calibrator else raw

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Churn probability, predicted revenue or expected orders over the horizon."""
        return self.calibrate(self.raw(X))

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """`predict` on a frame holding the `feature_names` columns (nulls allowed)."""
        return self.predict(frame[self.feature_names].astype(float).to_numpy())

    def deciles(self, raw: np.ndarray) -> np.ndarray:
        """Decile 1..10 of raw scores, from the cut points fixed on the scored population."""
        return assign_deciles(raw, self.decile_cuts)

    def reasons(self, X: np.ndarray, *, k: int = 3) -> list[list[dict[str, object]]]:
        """Top `k` features pushing each row's score up and down (exact SHAP, ms a row).

        The label-free model has no trees to explain: its rows get no reasons (empty lists).
        """
        return self.reasons_from(self.model_matrix(X), k=k)

    def reasons_from(self, matrix: np.ndarray, *, k: int = 3) -> list[list[dict[str, object]]]:
        """`reasons` of a `model_matrix` already computed."""
        if self.booster is None:
            return [[] for _ in range(len(matrix))]
        return top_reasons(self.booster, matrix, feature_names=self.model_features, k=k)


@dataclass(frozen=True)
class Champions:
    """The churn, LTV and expected-orders champions together."""

    churn: ChampionModel
    ltv: ChampionModel
    orders: ChampionModel

    @property
    def models(self) -> tuple[ChampionModel, ...]:
        return (self.churn, self.ltv, self.orders)

    @property
    def versions(self) -> dict[str, str]:
        return {m.task: m.version for m in self.models}

    @property
    def feature_names(self) -> list[str]:
        """Every feature the models read, churn's first, in order."""
        return list(dict.fromkeys(n for m in self.models for n in m.feature_names))

    def is_current(self, *, tracking_uri: str) -> bool:
        """False when a `champion` alias has moved since these models were loaded."""
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        return all(champion_version(client, task) == v for task, v in self.versions.items())

    def score(
        self,
        features: pd.DataFrame,
        *,
        reasons: int = 0,
        reasons_min_decile: int = 1,
        reasons_max_rows: int | None = None,
    ) -> pd.DataFrame:
        """Score a frame holding the models' feature columns (nulls allowed): the columns
        of `score_matrix`, on the frame's index."""
        X = features[self.feature_names].astype(float).to_numpy()
        scores = self.score_matrix(
            X,
            reasons=reasons,
            reasons_min_decile=reasons_min_decile,
            reasons_max_rows=reasons_max_rows,
        )
        return pd.DataFrame(scores, index=features.index)

    def score_matrix(
        self,
        X: np.ndarray,
        *,
        reasons: int = 0,
        reasons_min_decile: int = 1,
        reasons_max_rows: int | None = None,
    ) -> dict[str, np.ndarray | list[object]]:
        """Score a float matrix whose columns are `feature_names` (NaN for nulls).

        Returns `churn_probability`, `churn_decile`, `predicted_ltv`, `ltv_decile` and
        `expected_orders` and, with `reasons=k`, `churn_reasons` and `ltv_reasons`:
        lists of `{feature, value, effect}` for rows in `reasons_min_decile` or
        above (at most `reasons_max_rows` per model, highest scores first),
        None for the others. Models with the same label-free model and horizon share
        one computation of its outputs.
        """
        X = np.asarray(X, dtype=float)
        out: dict[str, np.ndarray | list[object]] = {}
        outputs: dict[tuple[object, ...], dict[str, np.ndarray]] = {}

        def matrix(model: ChampionModel) -> np.ndarray:
            own = X[:, self._columns[model.task]]
            if model.label_free not in outputs:
                outputs[model.label_free] = model.label_free_outputs(own)
            return model.model_matrix(own, outputs=outputs[model.label_free])

        for model, value in ((self.churn, "churn_probability"), (self.ltv, "predicted_ltv")):
            M = matrix(model)  # once for the score and its reasons
            raw = model.raw_from(M)
            deciles = model.deciles(raw)
            out[value] = model.calibrate(raw)
            out[f"{model.task}_decile"] = deciles
            if reasons:
                rows = np.flatnonzero(deciles >= reasons_min_decile)
                rows = rows[np.argsort(-raw[rows], kind="stable")][:reasons_max_rows]
                explained: list[object] = [None] * len(M)
                for row, found in zip(rows, model.reasons_from(M[rows], k=reasons), strict=True):
                    explained[row] = found
                out[f"{model.task}_reasons"] = explained
        out["expected_orders"] = self.orders.calibrate(self.orders.raw_from(matrix(self.orders)))
        return out

    @functools.cached_property
    def _columns(self) -> dict[str, list[int]]:
        """Per task, the positions of its model's features among `feature_names`."""
        position = {name: i for i, name in enumerate(self.feature_names)}
        return {m.task: [position[n] for n in m.feature_names] for m in self.models}


def load_champion(client: MlflowClient, *, task: str, version: str | None = None) -> ChampionModel:
    """Load `version` of the registered model `task` (default: its champion)."""
    version = version or champion_version(client, task)
    if version is None:
        raise NoChampionError(f"model {task!r} has no {CHAMPION!r}: run `cip train` first")
    source = client.get_model_version_download_uri(task, version)
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=client.tracking_uri)
    )
    meta = Model.load(local).metadata
    calibrator = meta.get("calibrator")
    kind = meta.get("kind", "lightgbm")
    return ChampionModel(
        task=task,
        version=str(version),
        kind=kind,
        btyd=BTYDModel.from_dict(meta["btyd"]),
        booster=lgb.Booster(model_file=str(local / "model.lgb")) if kind == "lightgbm" else None,
        feature_names=list(meta["feature_names"]),
        decile_cuts=np.asarray(meta["decile_cuts"], dtype=float),
        calibrator=PlattCalibrator.from_dict(calibrator) if calibrator else None,
        feature_service=meta["feature_service"],
        horizon_days=int(meta["horizon_days"]),
    )


def load_champions(*, tracking_uri: str) -> Champions:
    """The three champions from the registry at `tracking_uri`."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return Champions(**{task: load_champion(client, task=task) for task in TASK_NAMES})
