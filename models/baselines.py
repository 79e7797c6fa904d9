"""The baselines every LightGBM model must beat, trained and scored on the same split.

- churn: logistic regression on RFM (recency, frequency, monetary, tenure);
- LTV: the customer's revenue in the previous horizon ("next period = last
  period"), and the probabilistic buy-till-you-die model, BG/NBD for the number
  of purchases with Gamma-Gamma for their value (the `lifetimes` package).

The inputs are the columns `models.labels.build_examples` computes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

__all__ = ["RFM_COLUMNS", "BTYDRegressor", "past_revenue", "rfm_logistic"]

RFM_COLUMNS = ["rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_tenure_days"]
BTYD_COLUMNS = ["btyd_frequency", "btyd_recency", "btyd_t", "btyd_monetary"]


def rfm_logistic(*, C: float = 1.0) -> Pipeline:
    """Logistic regression on log-scaled, standardized RFM columns (`RFM_COLUMNS`)."""
    return make_pipeline(
        FunctionTransformer(_log1p),
        StandardScaler(),
        LogisticRegression(C=C, max_iter=1000),
    )


def past_revenue(examples: pd.DataFrame) -> np.ndarray:
    """Predict next-horizon revenue as the revenue of the horizon before the cutoff."""
    return examples["past_revenue"].to_numpy(dtype=float)


def _log1p(X: np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(np.asarray(X, dtype=float), 0, None))


class BTYDRegressor(RegressorMixin, BaseEstimator):
    """BG/NBD x Gamma-Gamma: expected purchases in the horizon times expected order value.

    `fit` takes the `lifetimes` summary columns (`BTYD_COLUMNS`, in days) of
    customers at one cutoff; it needs no labels, so it may be fitted on the
    held-out cutoff's own history. Raises `ValueError` when the models cannot
    be fitted (too few repeat buyers, no convergence).
    """

    def __init__(self, *, horizon_days: int = 180, penalizer: float = 0.001) -> None:
        self.horizon_days = horizon_days
        self.penalizer = penalizer

    def fit(self, X: pd.DataFrame, y: object = None) -> BTYDRegressor:
        frequency, recency, t, monetary = (X[c].to_numpy(dtype=float) for c in BTYD_COLUMNS)
        repeat = frequency > 0
        if repeat.sum() < 20:
            raise ValueError(f"only {int(repeat.sum())} repeat buyers; BTYD needs at least 20")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.bgnbd_ = BetaGeoFitter(penalizer_coef=self.penalizer).fit(
                    frequency, recency, t
                )
                self.gamma_gamma_ = GammaGammaFitter(penalizer_coef=self.penalizer).fit(
                    frequency[repeat], np.maximum(monetary[repeat], 0.01)
                )
            except Exception as error:  # lifetimes raises bare ConvergenceError and friends
                raise ValueError(f"BTYD models did not fit: {error}") from error
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "gamma_gamma_")
        frequency, recency, t, monetary = (X[c].to_numpy(dtype=float) for c in BTYD_COLUMNS)
        purchases = self.bgnbd_.conditional_expected_number_of_purchases_up_to_time(
            self.horizon_days, frequency, recency, t
        )
        value = self.gamma_gamma_.conditional_expected_average_profit(
            pd.Series(frequency), pd.Series(np.maximum(monetary, 0.01))
        ).to_numpy()
        return np.nan_to_num(np.asarray(purchases, dtype=float) * value, nan=0.0)
