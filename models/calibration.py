"""Calibrated churn probabilities: Platt scaling fitted on the validation cutoff.

A logistic regression on the logit of LightGBM's raw probability maps it to the
observed churn rate. The map is strictly increasing, so it keeps the model's
ranking (ROC-AUC, deciles) exactly, unlike isotonic regression whose plateaus
create ties. It is two numbers (`slope_`, `intercept_`) applied with numpy, so
the scorer and the HTTP service need nothing else, and it fits in the
registered model's metadata.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

__all__ = ["PlattCalibrator"]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class PlattCalibrator(TransformerMixin, BaseEstimator):
    """Probability = sigmoid(slope * logit(raw) + intercept), fitted by maximum likelihood."""

    def fit(self, scores: np.ndarray, churned: np.ndarray) -> PlattCalibrator:
        logistic = LogisticRegression(C=1e6, max_iter=1000)
        logistic.fit(_logit(scores).reshape(-1, 1), np.asarray(churned, dtype=int))
        self.slope_ = float(logistic.coef_[0, 0])
        self.intercept_ = float(logistic.intercept_[0])
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "slope_")
        return 1 / (1 + np.exp(-(self.slope_ * _logit(scores) + self.intercept_)))

    def to_dict(self) -> dict[str, float]:
        """The two parameters, JSON-able (see `from_dict`)."""
        check_is_fitted(self, "slope_")
        return {"slope": self.slope_, "intercept": self.intercept_}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> PlattCalibrator:
        calibrator = cls()
        calibrator.slope_ = float(data["slope"])
        calibrator.intercept_ = float(data["intercept"])
        return calibrator
