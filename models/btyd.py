"""The label-free models: BG/NBD (or Pareto/NBD) for purchases, Gamma-Gamma for their value.

Buy-till-you-die models need no labels, only each customer's order summary, so they
work on any history, however young: the platform's champion when the history is too
short for supervised cutoffs, a baseline every supervised model must beat, and (their
outputs) features of the supervised models.

The summary comes from the order features of the Feast services (`BTYD_INPUTS`, in
days): frequency = purchase days - 1, T = days since the first order, recency = T -
days since the last order, monetary = mean spend of a repeat purchase day. The
parameters are fitted with `lifetimes` (light: scipy and autograd; `pymc-marketing`
would add PyMC and PyTensor, a C compiler at run time and hundreds of MB for the same
maximum-likelihood fit; see README). Pareto/NBD minimizes lifetimes' own penalized
likelihood on the logarithms of the parameters with L-BFGS-B rather than lifetimes'
Nelder-Mead: the same maximum (to 1e-7 of the log-likelihood) in a quarter of the
likelihood evaluations, each of which costs two Gauss hypergeometric terms per
customer. A fit that does not converge is retried with a stronger penalizer, which
lifetimes' own advice is. Predictions use the papers' closed
forms on the fitted parameters: lifetimes takes the logarithm of the Gauss
hypergeometric term of BG/NBD's conditional expectation, which is negative (NaN) for
the `a + b + x < 1` that short histories fit; the same equation without the logarithm
is finite there.

- expected orders in the horizon: Fader, Hardie and Lee (2005), equation (10);
- probability of any order in the horizon: 1 - P(dead) - P(alive) x P(no purchase |
  alive), where a living customer's rate is Gamma(r + x, alpha + T) a posteriori;
- order value: Gamma-Gamma's conditional expectation (Fader, Hardie, Lee 2005b).
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import _scale_time
from scipy.optimize import minimize
from scipy.special import hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["BTYD_INPUTS", "BTYD_OUTPUTS", "KINDS", "BTYDModel", "summary"]

# Feast order features the models read, in this order.
BTYD_INPUTS = (
    "purchase_days",
    "days_since_first_order",
    "days_since_last_order",
    "repeat_purchase_value",
)
# What `BTYDModel.outputs` adds: features of the supervised models, and the label-free answers.
BTYD_OUTPUTS = (
    "btyd_expected_orders",
    "btyd_p_alive",
    "btyd_p_purchase",
    "btyd_order_value",
    "btyd_revenue",
)
_PENALIZERS = (0.001, 0.01, 0.1, 1.0)
_MIN_VALUE = 0.01  # Gamma-Gamma needs positive spend


def summary(X: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, ...]:
    """(frequency, recency, T, monetary) in days from the `BTYD_INPUTS` columns."""
    if isinstance(X, pd.DataFrame):
        X = X[list(BTYD_INPUTS)].to_numpy(dtype=float)
    days, since_first, since_last, value = (np.nan_to_num(c, nan=0.0) for c in np.asarray(X).T)
    T = np.maximum(since_first, 0.0)
    frequency = np.maximum(days - 1, 0.0)
    recency = np.where(frequency > 0, np.clip(T - since_last, 0.0, T), 0.0)
    return frequency, recency, T, value


# Each kind's name, as the runs and the reasons say it.
KINDS = {"bgnbd": "BG/NBD + Gamma-Gamma", "pnbd": "Pareto/NBD + Gamma-Gamma"}


class BTYDModel(BaseEstimator):
    """BG/NBD (`kind="bgnbd"`) or Pareto/NBD (`"pnbd"`) with Gamma-Gamma, on `BTYD_INPUTS`.

    `fit` takes customers at one cutoff (no labels); `fit_sample` customers at most are
    used for the maximum-likelihood fit (the parameters describe the population).
    """

    def __init__(self, *, kind: str = "bgnbd", fit_sample: int = 30_000, seed: int = 7) -> None:
        self.kind = kind
        self.fit_sample = fit_sample
        self.seed = seed

    @property
    def name(self) -> str:
        """What the model is, in words (`KINDS`)."""
        return KINDS[self.kind]

    def fit(self, X: pd.DataFrame | np.ndarray, y: object = None) -> BTYDModel:
        if self.kind not in KINDS:
            raise ValueError(f"unknown label-free model {self.kind!r}; kinds are {list(KINDS)}")
        x, recency, T, value = summary(X)
        if len(x) > self.fit_sample:
            rows = np.random.default_rng(self.seed).choice(len(x), self.fit_sample, replace=False)
            x, recency, T, value = x[rows], recency[rows], T[rows], value[rows]
        if len(x) < 20 or (x > 0).sum() < 10:
            raise ValueError(
                f"{len(x)} customers, {int((x > 0).sum())} with a repeat purchase: the "
                "label-free model needs at least 20 customers and 10 repeat buyers"
            )
        # Customers with the same (frequency, recency, T) share one likelihood term: fitting
        # the distinct triples with their counts as weights gives the same maximum, 2-4x faster.
        triples, weights = np.unique(np.column_stack([x, recency, T]), axis=0, return_counts=True)
        if self.kind == "bgnbd":
            self.purchases_ = _fit(
                lambda p: BetaGeoFitter(penalizer_coef=p).fit(*triples.T, weights=weights)
            )
        else:
            self.purchases_ = _fit(lambda p: _fit_pareto_nbd(*triples.T, weights, penalizer=p))
        repeat = x > 0
        self.value_ = _fit(
            lambda p: GammaGammaFitter(penalizer_coef=p).fit(
                x[repeat], np.maximum(value[repeat], _MIN_VALUE)
            )
        )
        return self

    @property
    def params(self) -> dict[str, float]:
        check_is_fitted(self, "value_")
        return {
            **{k: float(v) for k, v in self.purchases_.params_.items()},
            **{k: float(v) for k, v in self.value_.params_.items()},
        }

    def to_dict(self) -> dict[str, object]:
        """Kind and parameters, JSON-able (see `from_dict`)."""
        return {"kind": self.kind, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> BTYDModel:
        model = cls(kind=str(data["kind"]))
        params = pd.Series(data["params"], dtype=float)
        fitter = BetaGeoFitter() if model.kind == "bgnbd" else ParetoNBDFitter()
        fitter.params_ = params[
            ["r", "alpha", *(("a", "b") if model.kind == "bgnbd" else ("s", "beta"))]
        ]
        model.purchases_ = fitter
        model.value_ = GammaGammaFitter()
        model.value_.params_ = params[["p", "q", "v"]]
        return model

    def log_likelihood(self, X: pd.DataFrame | np.ndarray) -> float:
        """Mean log-likelihood per customer of their (frequency, recency, T) in days under
        the fitted purchase model, unpenalized: comparable between the two kinds."""
        check_is_fitted(self, "purchases_")
        x, recency, T, _ = summary(X)
        params = self.purchases_.params_
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "bgnbd":
                log_params = np.log(params[["r", "alpha", "a", "b"]].to_numpy(float))
                return -float(
                    BetaGeoFitter._negative_log_likelihood(
                        log_params, x, recency, T, np.ones_like(x), 0.0
                    )
                )
            values = params[["r", "alpha", "s", "beta"]].to_numpy(float)
            return float(
                np.mean(ParetoNBDFitter._conditional_log_likelihood(values, x, recency, T))
            )

    def outputs(self, X: pd.DataFrame | np.ndarray, *, horizon_days: int) -> pd.DataFrame:
        """`BTYD_OUTPUTS` per customer for the next `horizon_days` days."""
        check_is_fitted(self, "value_")
        x, recency, T, value = summary(X)
        t = float(horizon_days)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alive = np.asarray(self.purchases_.conditional_probability_alive(x, recency, T), float)
            if self.kind == "bgnbd":
                expected = self._bgnbd_expected(t, x, recency, T)
            else:
                expected = np.asarray(
                    self.purchases_.conditional_expected_number_of_purchases_up_to_time(
                        t, x, recency, T
                    ),
                    float,
                )
            r, alpha = self.purchases_.params_["r"], self.purchases_.params_["alpha"]
            quiet = ((alpha + T) / (alpha + T + t)) ** (r + x)
            order_value = np.asarray(  # on arrays: pandas' per-call overhead is most of a row
                self.value_.conditional_expected_average_profit(x, np.maximum(value, _MIN_VALUE)),
                float,
            )
        expected = np.nan_to_num(np.maximum(expected, 0.0))
        alive = np.nan_to_num(np.clip(alive, 0.0, 1.0), nan=1.0)
        order_value = np.nan_to_num(order_value, nan=float(np.nanmean(order_value)))
        return pd.DataFrame(
            {
                "btyd_expected_orders": expected,
                "btyd_p_alive": alive,
                "btyd_p_purchase": np.clip(alive * (1 - quiet), 0.0, 1.0),
                "btyd_order_value": order_value,
                "btyd_revenue": expected * order_value,
            },
            index=X.index if isinstance(X, pd.DataFrame) else None,
        )

    def _bgnbd_expected(
        self, t: float, x: np.ndarray, recency: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """BG/NBD's E[purchases in (T, T + t] | x, recency, T], equation (10), without logs."""
        r, alpha, a, b = (self.purchases_.params_[k] for k in ("r", "alpha", "a", "b"))
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        numerator = (
            (a + b + x - 1) / (a - 1) * (1 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x))
        )
        repeat = (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + recency)) ** (r + x)
        return numerator / (1 + repeat)


def _fit_pareto_nbd(
    x: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray, *, penalizer: float
) -> ParetoNBDFitter:
    """Pareto/NBD's maximum-likelihood parameters: lifetimes' penalized negative
    log-likelihood on its own time scale (`_scale_time`), minimized with L-BFGS-B over the
    logarithms of (r, alpha, s, beta) from lifetimes' starting point (all ones)."""
    scale = _scale_time(T)
    data = (x.astype(int), recency * scale, T * scale, weights, penalizer)
    found = minimize(
        lambda log_params: ParetoNBDFitter._negative_log_likelihood(np.exp(log_params), *data),
        np.zeros(4),
        method="L-BFGS-B",
    )
    if not (found.success and np.isfinite(found.fun)):
        raise ValueError(f"Pareto/NBD did not converge: {found.message}")
    r, alpha, s, beta = np.exp(found.x)
    fitter = ParetoNBDFitter(penalizer_coef=penalizer)
    fitter.params_ = pd.Series(
        {"r": r, "alpha": alpha / scale, "s": s, "beta": beta / scale}, dtype=float
    )
    return fitter


def _fit(fit):  # noqa: ANN001, ANN202
    """Call `fit(penalizer)` with stronger penalizers until lifetimes reports convergence
    (lifetimes prints scipy's whole result before raising: kept off the console)."""
    failures = []
    for penalizer in _PENALIZERS:
        with (
            warnings.catch_warnings(),
            np.errstate(all="ignore"),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            try:
                return fit(penalizer)
            except Exception as error:  # lifetimes raises ConvergenceError and bare others
                failures.append(f"penalizer {penalizer}: {str(error).strip().splitlines()[0]}")
    raise ValueError("the label-free model did not converge (" + "; ".join(failures) + ")")
