"""The classic baselines every model is measured against, on the same split.

- churn: logistic regression on RFM (recency, frequency, monetary, tenure);
- LTV: the customer's revenue in the previous horizon ("next period = last period").

The label-free buy-till-you-die models (BG/NBD, Pareto/NBD, Gamma-Gamma) are in
`models.btyd`. The inputs are the columns `models.labels.build_examples` computes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

__all__ = ["RFM_COLUMNS", "past_revenue", "rfm_logistic"]

RFM_COLUMNS = ["rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_tenure_days"]


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
