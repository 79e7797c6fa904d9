"""Lookalike audiences: who resembles a seed audience (e.g. top-LTV customers) without being in it.

The model is a propensity model in the positive-unlabelled style used for
lookalike audiences: a logistic regression (median-imputed, standardized
features, balanced class weights) learns to tell seed customers from everyone
else using behavioural features only. Each customer's propensity is predicted
out of fold (stratified k-fold, at most 5 folds), so nobody is scored by a model
that saw their own label; the non-seed customers with the highest propensity
are the ones that look most like the seed. A segment takes the `top_percent`
of its candidates (the non-seed customers matching its rule) by propensity.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["lookalike_propensity", "make_lookalike_model", "top_lookalikes"]


def make_lookalike_model(*, c: float = 1.0) -> Pipeline:
    """The unfitted propensity model: impute, standardize, balanced logistic regression."""
    return make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=c, class_weight="balanced", solver="liblinear"),
    )


def lookalike_propensity(*, features: pd.DataFrame, seed: pd.Series, seed_name: str) -> pd.Series:
    """Out-of-fold probability of looking like the seed, for every row of `features`.

    `features` is indexed by customer id; `seed` is a boolean Series on the same index.
    """
    y = seed.reindex(features.index, fill_value=False).astype(int).to_numpy()
    n_seed = int(y.sum())
    if n_seed < 2 or n_seed > len(y) - 2:
        raise ValueError(
            f"lookalike {seed_name!r}: the seed holds {n_seed} of {len(y)} customers; "
            "a propensity model needs at least 2 customers inside the seed and 2 outside"
        )
    folds = StratifiedKFold(n_splits=min(5, n_seed, len(y) - n_seed), shuffle=True, random_state=0)
    x = features.astype(float).to_numpy()
    probability = cross_val_predict(make_lookalike_model(), x, y, cv=folds, method="predict_proba")
    return pd.Series(probability[:, 1], index=features.index, name="propensity")


def top_lookalikes(*, propensity: pd.Series, candidates: pd.Index, top_percent: float) -> pd.Index:
    """The `top_percent` of `candidates` with the highest propensity (ties broken by id)."""
    scores = propensity.reindex(candidates).dropna()
    if scores.empty:
        return scores.index
    keep = math.ceil(len(scores) * top_percent / 100)
    order = np.lexsort((scores.index.astype(str), -scores.to_numpy()))
    return scores.index[order[:keep]]
