"""The lean champion scorer: both champion Boosters loaded natively, plus plain numpy state.

`load_champions(tracking_uri=...)` downloads the `churn` and `ltv` versions the
`champion` alias points at and keeps, per model, the Booster, the feature names
in order, the decile cut points and (churn) the Platt calibrator. Scoring a
float matrix costs microseconds per row; reasons (SHAP) 0.5 to 3.5 ms, so
they are asked for explicitly. `Champions.is_current` tells a long-lived server
that an alias moved, so that it can reload without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import Model

from models.calibration import PlattCalibrator
from models.explanations import top_reasons
from models.metrics import assign_deciles
from models.registry import CHAMPION, champion_version

__all__ = ["ChampionModel", "Champions", "NoChampionError", "load_champion", "load_champions"]


class NoChampionError(LookupError):
    """A registered model has no `champion` alias (run `cip train` first)."""


@dataclass(frozen=True)
class ChampionModel:
    """One registered model version, ready to score a float matrix in `feature_names` order."""

    task: str
    version: str
    booster: lgb.Booster
    feature_names: list[str]
    decile_cuts: np.ndarray
    calibrator: PlattCalibrator | None
    feature_service: str
    horizon_days: int

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The Booster's own output (uncalibrated probability, or revenue)."""
        return self.booster.predict(np.asarray(X, dtype=float), num_threads=0)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """Raw scores to what is served: calibrated churn probability, or revenue as is."""
        return self.calibrator.transform(raw) if self.calibrator else raw

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated churn probability, or predicted revenue over the horizon."""
        return self.calibrate(self.raw(X))

    def deciles(self, raw: np.ndarray) -> np.ndarray:
        """Decile 1..10 of raw scores, from the cut points fixed at training."""
        return assign_deciles(raw, self.decile_cuts)

    def reasons(self, X: np.ndarray, *, k: int = 3) -> list[list[dict[str, object]]]:
        """Top `k` features pushing each row's score up and down (exact SHAP, ms a row)."""
        return top_reasons(self.booster, X, feature_names=self.feature_names, k=k)


@dataclass(frozen=True)
class Champions:
    """The churn and LTV champions together."""

    churn: ChampionModel
    ltv: ChampionModel

    @property
    def versions(self) -> dict[str, str]:
        return {"churn": self.churn.version, "ltv": self.ltv.version}

    @property
    def feature_names(self) -> list[str]:
        """Every feature either model reads, churn's first, in order."""
        return list(dict.fromkeys([*self.churn.feature_names, *self.ltv.feature_names]))

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
        """Score a frame holding both models' feature columns (nulls allowed).

        Returns `churn_probability`, `churn_decile`, `predicted_ltv` and
        `ltv_decile` and, with `reasons=k`, `churn_reasons` and `ltv_reasons`:
        lists of `{feature, value, effect}` for rows in `reasons_min_decile` or
        above (at most `reasons_max_rows` per model, highest scores first),
        None for the others.
        """
        out = pd.DataFrame(index=features.index)
        for model, value in ((self.churn, "churn_probability"), (self.ltv, "predicted_ltv")):
            X = features[model.feature_names].astype(float).to_numpy()
            raw = model.raw(X)
            deciles = model.deciles(raw)
            out[value] = model.calibrate(raw)
            out[f"{model.task}_decile"] = deciles
            if reasons:
                rows = np.flatnonzero(deciles >= reasons_min_decile)
                rows = rows[np.argsort(-raw[rows], kind="stable")][:reasons_max_rows]
                explained: list[object] = [None] * len(X)
                for row, found in zip(rows, model.reasons(X[rows], k=reasons), strict=True):
                    explained[row] = found
                out[f"{model.task}_reasons"] = explained
        return out


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
    return ChampionModel(
        task=task,
        version=str(version),
        booster=lgb.Booster(model_file=str(local / "model.lgb")),
        feature_names=list(meta["feature_names"]),
        decile_cuts=np.asarray(meta["decile_cuts"], dtype=float),
        calibrator=PlattCalibrator.from_dict(calibrator) if calibrator else None,
        feature_service=meta["feature_service"],
        horizon_days=int(meta["horizon_days"]),
    )


def load_champions(*, tracking_uri: str) -> Champions:
    """Both champions from the registry at `tracking_uri`."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return Champions(
        churn=load_champion(client, task="churn"), ltv=load_champion(client, task="ltv")
    )
