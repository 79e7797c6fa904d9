"""The LightGBM churn classifier and LTV regressor, as scikit-learn estimators.

Both train a native `lightgbm.Booster` (kept in `booster_`, which is what the
registry logs and the scorer loads), stop early on a validation set passed to
`fit`, and can be tuned by `search`, a small bounded random search. Trees are
depth-limited: exact SHAP reasons cost O(leaves x depth^2) per tree, so
shallow trees make reasons several times cheaper at little loss.

The LTV regressor uses the Tweedie objective: next-period revenue is zero for
many customers and has a long tail for a few, which is exactly the compound
Poisson-Gamma shape Tweedie models (a point mass at zero plus a skewed positive
part), in one model and with a log link, so predictions are never negative and
their sum stays close to the actual total.
"""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from models.settings import SearchSettings

__all__ = ["ChurnClassifier", "LTVRegressor", "OrdersRegressor", "search"]


class _LightGBMModel(BaseEstimator):
    """Shared fit/predict of the two models; subclasses name the objective."""

    def __init__(
        self,
        *,
        num_leaves: int = 31,
        max_depth: int = 6,
        learning_rate: float = 0.05,
        min_child_samples: int = 20,
        feature_fraction: float = 0.9,
        lambda_l2: float = 1.0,
        n_estimators: int = 300,
        early_stopping_rounds: int = 40,
        random_state: int = 7,
        n_jobs: int = 1,
    ) -> None:
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.lambda_l2 = lambda_l2
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _objective(self) -> dict[str, object]:
        raise NotImplementedError

    def lightgbm_params(self) -> dict[str, object]:
        """The native LightGBM parameters this estimator trains with."""
        return {
            **self._objective(),
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": 0.9,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.random_state,
            "num_threads": self.n_jobs,
            "verbosity": -1,
        }

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        *,
        eval_set: tuple[pd.DataFrame, np.ndarray] | None = None,
    ) -> _LightGBMModel:
        """Train; with `eval_set`, stop when its loss has not improved for a while."""
        X = _frame(X)
        train, valid = _datasets(X, y, eval_set)
        return self.fit_datasets(train, valid, columns=list(X.columns))

    def fit_datasets(
        self, train: lgb.Dataset, valid: lgb.Dataset | None, *, columns: list[str]
    ) -> _LightGBMModel:
        """`fit` on LightGBM Datasets built once (`search` reuses them across trials)."""
        valid_sets, callbacks = [], []
        if valid is not None:
            valid_sets = [valid]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        self.booster_ = lgb.train(
            self.lightgbm_params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        if valid is not None:
            self.best_score_ = float(next(iter(self.booster_.best_score["valid_0"].values())))
            best = self.booster_.model_to_string(num_iteration=self.booster_.best_iteration)
            self.booster_ = lgb.Booster(model_str=best)
        self.n_trees_ = self.booster_.num_trees()
        self.feature_names_in_ = np.array(columns)
        self.n_features_in_ = len(columns)
        return self

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "booster_")
        return self.booster_.predict(_frame(X)[list(self.feature_names_in_)])

    def feature_importance(self) -> pd.Series:
        """Total gain per feature, largest first."""
        check_is_fitted(self, "booster_")
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_in_).sort_values(ascending=False)


class ChurnClassifier(ClassifierMixin, _LightGBMModel):
    """Probability that an active customer makes no purchase within the horizon."""

    def _objective(self) -> dict[str, object]:
        return {"objective": "binary", "metric": "binary_logloss"}

    def fit(self, X, y, *, eval_set=None) -> ChurnClassifier:  # noqa: D102
        self.classes_ = np.array([0, 1])
        return super().fit(X, y, eval_set=eval_set)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self._raw(X)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self._raw(X) >= 0.5).astype(int)


class LTVRegressor(RegressorMixin, _LightGBMModel):
    """Revenue within the horizon, trained with the Tweedie objective (see module docstring)."""

    def __init__(
        self,
        *,
        tweedie_variance_power: float = 1.3,
        num_leaves: int = 31,
        max_depth: int = 6,
        learning_rate: float = 0.05,
        min_child_samples: int = 20,
        feature_fraction: float = 0.9,
        lambda_l2: float = 1.0,
        n_estimators: int = 300,
        early_stopping_rounds: int = 40,
        random_state: int = 7,
        n_jobs: int = 1,
    ) -> None:
        super().__init__(
            num_leaves=num_leaves,
            max_depth=max_depth,
            learning_rate=learning_rate,
            min_child_samples=min_child_samples,
            feature_fraction=feature_fraction,
            lambda_l2=lambda_l2,
            n_estimators=n_estimators,
            early_stopping_rounds=early_stopping_rounds,
            random_state=random_state,
            n_jobs=n_jobs,
        )
        self.tweedie_variance_power = tweedie_variance_power

    def _objective(self) -> dict[str, object]:
        return {
            "objective": "tweedie",
            "tweedie_variance_power": self.tweedie_variance_power,
            "metric": "tweedie",
        }

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._raw(X)


class OrdersRegressor(RegressorMixin, _LightGBMModel):
    """Number of orders within the horizon: Poisson objective (a count, log link)."""

    def _objective(self) -> dict[str, object]:
        return {"objective": "poisson", "metric": "poisson"}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self._raw(X)


def _frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _datasets(
    X: pd.DataFrame, y: np.ndarray, eval_set: tuple[pd.DataFrame, np.ndarray] | None
) -> tuple[lgb.Dataset, lgb.Dataset | None]:
    """Binned training (and validation) Datasets, reusable with any tree parameters."""
    train = lgb.Dataset(
        X,
        label=np.asarray(y, dtype=float),
        params={"feature_pre_filter": False, "verbosity": -1},
        free_raw_data=False,
    )
    if eval_set is None:
        return train, None
    X_val, y_val = eval_set
    return train, lgb.Dataset(_frame(X_val), label=np.asarray(y_val, float), reference=train)


def search(
    estimator: _LightGBMModel,
    *,
    X: pd.DataFrame,
    y: np.ndarray,
    X_val: pd.DataFrame,
    y_val: np.ndarray,
    bounds: SearchSettings,
    seed: int,
    on_trial: Callable[[dict[str, float]], None] | None = None,
) -> tuple[_LightGBMModel, list[dict[str, float]]]:
    """Random search within `bounds`, each candidate early-stopped on the validation set.

    Candidates train on at most `bounds.rows` of the rows (a random sample); the best of
    them is then trained on all the rows, early-stopped the same way, and returned with
    every trial's parameters, `valid_loss` and `trees`. The first trial is the middle of
    every bound (geometric for the learning rate), the others are drawn within them,
    so that every candidate respects the bounds. `on_trial` is called after each trial.
    """
    rng = np.random.default_rng(seed)
    trials: list[dict[str, float]] = []
    best: _LightGBMModel | None = None
    X, y = _frame(X), np.asarray(y, dtype=float)
    sampled = len(X) > bounds.rows
    sample = np.random.default_rng([seed, 1])  # its own stream: the trials stay the same
    rows = np.sort(sample.choice(len(X), bounds.rows, replace=False)) if sampled else None
    train, valid = _datasets(
        X.iloc[rows] if sampled else X, y[rows] if sampled else y, (X_val, y_val)
    )
    for i in range(bounds.trials):
        params = {
            "num_leaves": int(np.mean(bounds.num_leaves)),
            "max_depth": int(np.mean(bounds.max_depth)),
            "learning_rate": float(np.sqrt(np.prod(bounds.learning_rate))),
            "min_child_samples": int(np.mean(bounds.min_child_samples)),
            "feature_fraction": float(np.mean(bounds.feature_fraction)),
            "lambda_l2": float(np.mean(bounds.lambda_l2)),
        }
        if i > 0:
            params = {
                "num_leaves": int(rng.integers(*bounds.num_leaves, endpoint=True)),
                "max_depth": int(rng.integers(*bounds.max_depth, endpoint=True)),
                "learning_rate": float(np.exp(rng.uniform(*np.log(bounds.learning_rate)))),
                "min_child_samples": int(rng.integers(*bounds.min_child_samples, endpoint=True)),
                "feature_fraction": float(rng.uniform(*bounds.feature_fraction)),
                "lambda_l2": float(rng.uniform(*bounds.lambda_l2)),
            }
        candidate = clone(estimator).set_params(
            **params,
            n_estimators=bounds.max_trees,
            early_stopping_rounds=bounds.early_stopping_rounds,
        )
        candidate.fit_datasets(train, valid, columns=list(X.columns))
        trials.append({**params, "valid_loss": candidate.best_score_, "trees": candidate.n_trees_})
        if best is None or candidate.best_score_ < best.best_score_:
            best = candidate
        if on_trial is not None:
            on_trial(trials[-1])
    if sampled:
        best = clone(best).fit_datasets(*_datasets(X, y, (X_val, y_val)), columns=list(X.columns))
    return best, trials
