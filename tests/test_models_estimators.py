"""Estimators, baselines, calibration, metrics and reasons on small synthetic data."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from models import (
    BTYD_INPUTS,
    BTYDModel,
    ChurnClassifier,
    HorizonError,
    LTVRegressor,
    ModelSettings,
    assign_deciles,
    churn_metrics,
    decile_table,
    ltv_metrics,
    search,
    top_reasons,
    train_task,
)
from models.btyd import _PENALIZERS, _fit, summary
from models.calibration import PlattCalibrator
from models.metrics import decile_cuts, normalized_gini
from models.training import capped

FAST = {"n_estimators": 40, "num_leaves": 7, "early_stopping_rounds": 5}


def churn_data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"recency": rng.exponential(60, n), "orders": rng.poisson(3, n)})
    X["noise"] = rng.normal(size=n)
    logit = 0.03 * X["recency"] - 0.5 * X["orders"]
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def test_churn_classifier_is_a_scikit_learn_estimator() -> None:
    X, y = churn_data(600, 0)
    X_val, y_val = churn_data(300, 1)
    model = ChurnClassifier(**FAST)
    assert model.fit(X, y, eval_set=(X_val, y_val)) is model
    assert clone(model).get_params() == model.get_params()
    assert model.n_trees_ <= 40 and list(model.feature_names_in_) == list(X.columns)
    proba = model.predict_proba(X_val)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert churn_metrics(churned=y_val, probability=proba[:, 1])["roc_auc"] > 0.7
    assert model.feature_importance().index[-1] == "noise"


def test_tweedie_ltv_regressor_fits_zeros_and_a_long_tail() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"spend": rng.lognormal(3, 1, 800), "recency": rng.exponential(60, 800)})
    buys = rng.random(800) < np.exp(-X["recency"] / 60)
    y = np.where(buys, X["spend"] * rng.lognormal(0, 0.3, 800), 0.0)
    model = LTVRegressor(**FAST).fit(X[:600], y[:600], eval_set=(X[600:], y[600:]))
    predicted = model.predict(X[600:])
    assert (predicted > 0).all()  # log link: never negative
    assert 0.7 < predicted.sum() / y[600:].sum() < 1.4
    assert ltv_metrics(actual=y[600:], predicted=predicted)["normalized_gini"] > 0.5


def test_search_stays_in_bounds_and_keeps_the_best_trial() -> None:
    X, y = churn_data(400, 3)
    X_val, y_val = churn_data(200, 4)
    bounds = ModelSettings(search={"trials": 3, "max_trees": 30, "num_leaves": (4, 8)}).search
    seen = []
    best, trials = search(
        ChurnClassifier(num_leaves=5),
        X=X,
        y=y,
        X_val=X_val,
        y_val=y_val,
        bounds=bounds,
        seed=0,
        on_trial=seen.append,
    )
    assert len(trials) == 3 and seen == trials
    assert all(4 <= t["num_leaves"] <= 8 and t["trees"] <= 30 for t in trials)
    assert all(3 <= t["max_depth"] <= 5 for t in trials)  # never LightGBM's defaults
    assert (trials[0]["num_leaves"], trials[0]["max_depth"]) == (6, 4)  # the middle first
    assert best.best_score_ == min(t["valid_loss"] for t in trials)


def test_search_ranks_on_a_sample_and_trains_the_best_on_every_row() -> None:
    X, y = churn_data(3000, 5)
    X_val, y_val = churn_data(500, 6)
    settings = {"trials": 3, "max_trees": 30, "rows": 1000}
    common = {"X_val": X_val, "y_val": y_val, "seed": 0}
    bounds = ModelSettings(search=settings).search
    best, trials = search(ChurnClassifier(), X=X, y=y, bounds=bounds, **common)
    winner = min(trials, key=lambda t: t["valid_loss"])
    assert all(best.get_params()[k] == v for k, v in winner.items() if k in best.get_params())
    on_all = ChurnClassifier(**{**best.get_params(), "n_estimators": 30}).fit(
        X, y, eval_set=(X_val, y_val)
    )
    assert best.best_score_ == pytest.approx(on_all.best_score_)  # trained on all 3,000
    unsampled = ModelSettings(search={**settings, "rows": 5000}).search
    _, same = search(ChurnClassifier(), X=X, y=y, bounds=unsampled, **common)
    assert [t["num_leaves"] for t in same] == [t["num_leaves"] for t in trials]


def test_platt_calibration_keeps_the_ranking_and_fixes_the_level() -> None:
    rng = np.random.default_rng(5)
    truth = rng.uniform(0.05, 0.6, 4000)
    churned = (rng.random(4000) < truth).astype(int)
    overconfident = truth**0.5  # too high everywhere
    calibrator = PlattCalibrator().fit(overconfident, churned)
    calibrated = calibrator.transform(overconfident)
    assert np.array_equal(np.argsort(calibrated), np.argsort(overconfident))
    assert abs(calibrated.mean() - churned.mean()) < 0.01
    restored = PlattCalibrator.from_dict(calibrator.to_dict())
    assert np.allclose(restored.transform(overconfident), calibrated)


def test_metrics_on_known_answers() -> None:
    actual = np.array([0, 0, 10, 0, 50, 5.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) < 0
    churned = np.array([0] * 90 + [1] * 10)
    perfect = churned.astype(float)
    m = churn_metrics(churned=churned, probability=perfect)
    assert m["roc_auc"] == 1.0 and m["top_decile_lift"] == pytest.approx(10.0)
    assert m["top_decile_capture"] == 1.0
    with pytest.raises(ValueError, match="both churners and non-churners"):
        churn_metrics(churned=np.zeros(5), probability=np.full(5, 0.5))


def test_deciles_are_fixed_cut_points() -> None:
    scores = np.arange(1000, dtype=float)
    cuts = decile_cuts(scores)
    deciles = assign_deciles(scores, cuts)
    assert np.bincount(deciles)[1:].tolist() == [100] * 10
    assert assign_deciles(np.array([-5.0, 5000.0]), cuts).tolist() == [1, 10]  # one at a time
    table = decile_table(actual=scores, predicted=scores)
    assert table.index[0] == 10 and table["capture"].sum() == pytest.approx(1.0)


def bgnbd_history(n: int, *, r: float, alpha: float, a: float, b: float, seed: int):
    """A BG/NBD process: (summary after `T` days as BTYD_INPUTS, purchases in the next 180)."""
    rng = np.random.default_rng(seed)
    rate, death = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    T = rng.uniform(60, 360, n)
    rows, future = [], np.zeros(n)
    for i in range(n):
        t, times, alive = 0.0, [0.0], True
        while alive:
            t += rng.exponential(1 / rate[i])
            if t >= T[i] + 180:
                break
            if t < T[i]:
                times.append(t)
            else:
                future[i] += 1
            alive = rng.random() > death[i]
        days = len(set(np.floor(times)))
        rows.append((days, T[i], T[i] - np.floor(max(times)), 25.0 if days > 1 else 0.0))
    return pd.DataFrame(rows, columns=list(BTYD_INPUTS)), future


def test_label_free_model_recovers_a_bgnbd_process_and_stays_finite() -> None:
    X, future = bgnbd_history(3000, r=0.8, alpha=40.0, a=0.6, b=2.5, seed=6)
    model = BTYDModel().fit(X)
    params = model.params
    assert 0.5 < params["r"] < 1.2 and 25 < params["alpha"] < 60
    out = model.outputs(X, horizon_days=180)
    assert out.notna().all().all() and (out["btyd_p_purchase"].between(0, 1)).all()
    assert 0.85 < out["btyd_expected_orders"].sum() / future.sum() < 1.15  # calibrated
    assert roc_auc_score(future > 0, out["btyd_p_purchase"]) > 0.7
    again = BTYDModel.from_dict(model.to_dict()).outputs(X.to_numpy(), horizon_days=180)
    assert np.allclose(again.to_numpy(), out.to_numpy())
    # lifetimes' own formula agrees where its logarithm is defined ...
    x, recency, T, _ = summary(X)
    theirs = model.purchases_.conditional_expected_number_of_purchases_up_to_time(
        180, x, recency, T
    )
    assert np.allclose(theirs, out["btyd_expected_orders"])
    # ... and is NaN where a + b + x < 1, which young histories fit; ours is not
    young, _ = bgnbd_history(3000, r=0.9, alpha=70.0, a=0.04, b=0.6, seed=7)
    model = BTYDModel().fit(young)
    x, recency, T, _ = summary(young)
    if model.params["a"] + model.params["b"] < 1:
        with np.errstate(all="ignore"):
            theirs = model.purchases_.conditional_expected_number_of_purchases_up_to_time(
                180, x, recency, T
            )
        assert np.isnan(theirs).any()
    assert np.isfinite(model.outputs(young, horizon_days=180).to_numpy()).all()
    with pytest.raises(ValueError, match="10 repeat buyers"):
        BTYDModel().fit(X.assign(purchase_days=1))


def test_a_fit_that_does_not_converge_is_retried_stronger_and_quietly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lifetimes.utils import ConvergenceError

    tried = []

    def fit(penalizer: float) -> None:
        tried.append(penalizer)
        print("     message: Desired error not necessarily achieved")  # as lifetimes does
        raise ConvergenceError("The model did not converge.\nTry a penalizer.")

    with pytest.raises(ValueError, match=r"did not converge \(penalizer 0.001: The model"):
        _fit(fit)
    assert tried == list(_PENALIZERS) and capsys.readouterr().out == ""


def test_the_weighted_fit_is_lifetimes_own_fit_and_pareto_nbd_answers_too() -> None:
    from lifetimes import BetaGeoFitter

    X, future = bgnbd_history(2000, r=0.8, alpha=40.0, a=0.6, b=2.5, seed=3)
    x, recency, T, _ = summary(X)
    plain = BetaGeoFitter(penalizer_coef=0.001).fit(x, recency, T).params_
    ours = BTYDModel().fit(X).purchases_.params_  # distinct (x, recency, T) with counts
    assert np.allclose(ours[plain.index], plain, rtol=1e-3)
    pareto = BTYDModel(kind="pnbd").fit(X)
    assert pareto.name == "Pareto/NBD + Gamma-Gamma"
    out = pareto.outputs(X, horizon_days=180)
    assert np.isfinite(out.to_numpy()).all() and out["btyd_p_alive"].between(0, 1).all()
    assert 0.7 < out["btyd_expected_orders"].sum() / future.sum() < 1.3
    again = BTYDModel.from_dict(pareto.to_dict()).outputs(X, horizon_days=180)
    assert np.allclose(again.to_numpy(), out.to_numpy())
    # the history is likelier under the model that generated it (BG/NBD here)
    assert BTYDModel().fit(X).log_likelihood(X) > pareto.log_likelihood(X)
    with pytest.raises(ValueError, match="unknown label-free model 'bg'"):
        BTYDModel(kind="bg").fit(X)


def test_pareto_nbd_reaches_lifetimes_own_maximum() -> None:
    from lifetimes import ParetoNBDFitter

    X, _ = bgnbd_history(1500, r=0.8, alpha=40.0, a=0.6, b=2.5, seed=4)
    x, recency, T, _ = summary(X)
    theirs = ParetoNBDFitter(penalizer_coef=0.001).fit(x, recency, T)  # Nelder-Mead
    ours = BTYDModel(kind="pnbd", fit_sample=len(x)).fit(X)  # L-BFGS-B on log-parameters
    params = ours.purchases_.params_[theirs.params_.index]
    assert np.allclose(params[["r", "alpha"]], theirs.params_[["r", "alpha"]], rtol=0.02)
    loglik = [
        ParetoNBDFitter._conditional_log_likelihood(p.to_numpy(), x, recency, T).sum()
        for p in (params, theirs.params_)
    ]
    assert loglik[0] >= loglik[1] - 1e-3 * abs(loglik[1])


def test_the_best_candidate_on_the_held_out_rows_is_chosen_label_free_ones_included() -> None:
    X, y = churn_data(600, 9)
    frame = X.assign(churned=y, btyd_p_purchase=0.5)  # BG/NBD that knows nothing
    frame[["rfm_recency_days", "rfm_frequency", "rfm_monetary", "rfm_tenure_days"]] = 1.0
    train, valid, test = frame.iloc[:300], frame.iloc[300:450], frame.iloc[450:]
    common = {"train": train, "valid": valid, "test": test, "feature_names": list(X.columns)}
    settings = ModelSettings(search={"trials": 1, "max_trees": 20, "early_stopping_rounds": 5})
    result = train_task("churn", settings=settings, **common)
    assert result.chosen == "lightgbm" and result.reason.startswith("LightGBM beats")
    oracle = pd.DataFrame({"btyd_p_purchase": 1 - test["churned"] * 0.9}, index=test.index)
    result = train_task("churn", settings=settings, label_free={"pnbd": oracle}, **common)
    assert result.chosen == "pnbd" and result.metrics["pnbd"]["roc_auc"] == 1.0
    assert "(Pareto/NBD + Gamma-Gamma) is the model" in result.reason


def test_training_rows_are_capped_by_a_seeded_sample() -> None:
    rows = pd.DataFrame({"a": np.arange(5000)})
    settings = ModelSettings(max_train_rows=1000)
    kept = capped(rows, settings)
    assert len(kept) == 1000 and kept.index.is_monotonic_increasing
    assert kept.equals(capped(rows, settings)) and capped(kept, settings) is kept


def test_reasons_are_exact_shap_contributions_ranked() -> None:
    X, y = churn_data(500, 7)
    booster = ChurnClassifier(**FAST).fit(X, y).booster_
    reasons = top_reasons(booster, X.to_numpy()[:20], feature_names=list(X.columns), k=1)
    contributions = booster.predict(X.to_numpy()[:20], pred_contrib=True)
    margin = booster.predict(X.to_numpy()[:20], raw_score=True)
    assert np.allclose(contributions.sum(axis=1), margin)  # SHAP adds up to the score
    for row, found in enumerate(reasons):
        assert 1 <= len(found) <= 2
        up = [r for r in found if r["effect"] > 0]
        if up:
            assert up[0]["feature"] == X.columns[np.argmax(contributions[row, :-1])]
            assert up[0]["value"] == pytest.approx(X.iloc[row][up[0]["feature"]])
    assert top_reasons(booster, np.zeros((0, 3)), feature_names=list(X.columns), k=2) == []
    assert isinstance(booster, lgb.Booster)


def test_a_split_with_one_outcome_only_is_refused_clearly() -> None:
    X, y = churn_data(50, 8)
    rows = X.assign(churned=1)
    with pytest.raises(HorizonError, match="training cutoff.*50 customers and 1 distinct"):
        train_task(
            "churn",
            train=rows,
            valid=rows,
            test=rows,
            feature_names=list(X.columns),
            settings=ModelSettings(),
        )
