"""Fitting for any history, the refit, the MLflow registry and promotion, on a real store.

The orders-only history of `orders_history` goes through a real Feast repo and a real
SQLite MLflow store: `fit_models` as of its end (labelled cutoffs: LightGBM candidates,
refit) and as of its sixth month (too young for a 180-day label: the label-free model).
"""

from __future__ import annotations

from datetime import date, datetime

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import features
import warehouse
from models import (
    Champions,
    Fitted,
    ModelSettings,
    append_scores,
    challenge,
    champion_version,
    decide,
    fit_models,
    load_champion,
    load_champions,
    log_task,
    promote,
    rollback,
)
from pipelines.config import Settings
from pipelines.tracking import use_mlflow

TINY = ModelSettings(search={"trials": 2, "max_trees": 30, "early_stopping_rounds": 5})


class World:
    """The orders-only history with features, fitted as of two dates, and an MLflow store."""

    def __init__(self, settings: Settings) -> None:
        con = warehouse.connect(settings.paths.warehouse)
        store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
        common = {
            "store": store,
            "feast_dir": settings.paths.feast,
            "feature_settings": settings.features,
            "settings": TINY,
        }
        self.grown = fit_models(con, as_of=date(2025, 12, 30), **common)
        self.young = fit_models(con, as_of=date(2024, 6, 30), **common)
        con.close()
        self.uri = use_mlflow(settings, "test-models")
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def register(self, fitted: Fitted) -> str:
        with mlflow.start_run():
            return log_task(fitted, as_of="2025-12-30")


@pytest.fixture(scope="module")
def world(orders_features: Settings) -> World:
    return World(orders_features)


def test_a_grown_history_refits_the_chosen_hyperparameters_on_the_latest_cutoffs(
    world: World,
) -> None:
    ltv = world.grown["ltv"]
    assert ltv.plan is not None and not ltv.plan.by_customer and ltv.result is not None
    end = datetime(2025, 12, 31)
    assert ltv.refit_cutoffs[-1] == datetime(2025, 7, 1) == ltv.plan.test  # a month start
    assert ltv.plan.test + pd.Timedelta(days=180) <= end
    assert ltv.refit_cutoffs[-1] > ltv.plan.train[-1]  # later cutoffs than the search saw
    refit, searched = ltv.supervised.booster, ltv.result.model.booster_
    assert refit.num_trees() == searched.num_trees()  # the trees early stopping chose
    assert refit.params["max_depth"] == ltv.result.model.max_depth
    X = ltv.test_rows[ltv.result.feature_names].astype(float).to_numpy()
    assert not np.allclose(refit.predict(X), searched.predict(X))  # retrained, not copied
    # deciles from the scored population: its own cut points, ten parts as equal as its
    # ties allow (a score equal to a cut point goes up)
    raw = ltv.supervised.raw(ltv.population[ltv.supervised.feature_names].to_numpy(float))
    assert np.allclose(ltv.supervised.decile_cuts, np.quantile(raw, np.linspace(0.1, 0.9, 9)))
    counts = np.bincount(ltv.supervised.deciles(raw), minlength=11)[1:]
    assert counts.min() > 0.05 * len(raw) and counts.max() < 0.15 * len(raw)
    for task, fitted in world.grown.items():
        candidates = {"lightgbm": fitted.supervised, "btyd": fitted.label_free, "pnbd": fitted.pnbd}
        assert fitted.model is candidates[fitted.result.chosen], task  # the best of three
        assert fitted.reason.startswith(("LightGBM beats", "the label-free model")), task
        assert fitted.pnbd.btyd.kind == "pnbd" and "pnbd" in fitted.result.metrics, task
    # the calendar features only where the training cutoffs cover a year: churn's 90-day
    # cutoffs do in these two years of orders, LTV's 180-day ones do not
    assert {"as_of_year_sin", "as_of_year_cos"} <= set(world.grown["churn"].model.feature_names)
    assert "as_of_year_sin" not in world.grown["ltv"].supervised.feature_names


def test_a_young_history_gets_the_label_free_model(world: World) -> None:
    ltv = world.young["ltv"]
    assert ltv.plan is None and ltv.supervised is None and ltv.model.kind == "btyd"
    assert "no labelled 180-day window" in ltv.reason
    churn = world.young["churn"]  # 90 days fit once after 90 days of history: customers split
    assert churn.plan is not None and churn.plan.by_customer
    population = ltv.population
    assert len(population) == population["customer_id"].nunique() > 50
    predicted = ltv.model.predict_frame(population)
    assert np.isfinite(predicted).all() and (predicted >= 0).all()
    assert np.isfinite(world.young["orders"].model.predict_frame(population)).all()


def test_registry_round_trip_of_both_kinds(world: World) -> None:
    label_free = world.young["ltv"]
    version = world.register(label_free)
    loaded = load_champion(world.client, task="ltv", version=version)
    assert loaded.kind == "btyd" and loaded.booster is None
    frame = label_free.population
    assert np.allclose(loaded.predict_frame(frame), label_free.model.predict_frame(frame))
    assert loaded.reasons(frame[loaded.feature_names].to_numpy(float)[:3]) == [[], [], []]
    pyfunc = mlflow.pyfunc.load_model(f"models:/ltv/{version}")
    inputs = frame[loaded.feature_names].astype(float)
    assert np.allclose(pyfunc.predict(inputs), loaded.predict_frame(frame))

    supervised = world.grown["churn"]
    supervised.model = supervised.supervised  # register the LightGBM candidate, chosen or not
    version = world.register(supervised)
    loaded = load_champion(world.client, task="churn", version=version)
    assert loaded.kind == "lightgbm" and loaded.calibrator is not None
    assert np.allclose(
        loaded.predict_frame(supervised.population),
        supervised.supervised.predict_frame(supervised.population),
    )
    why = loaded.reasons(supervised.population[loaded.feature_names].to_numpy(float)[:5], k=2)
    assert all({"feature", "value", "effect"} <= set(r) for found in why for r in found)


def test_promotion_rules(world: World) -> None:
    young, grown = world.young["orders"], world.grown["orders"]
    first = challenge(
        world.client, task="orders", challenger_version=world.register(young),
        challenger_score=None, test=None, metric="mae",
    )  # fmt: skip
    assert first.promoted and "no champion yet: label-free" in first.reason
    promote(world.client, first)
    second = challenge(
        world.client, task="orders", challenger_version=world.register(young),
        challenger_score=None, test=None, metric="mae",
    )  # fmt: skip
    assert second.promoted and "replaces label-free" in second.reason
    promote(world.client, second)
    grown.model = grown.supervised
    score = grown.result.metrics["lightgbm"]["mae"]
    supervised = challenge(
        world.client, task="orders", challenger_version=world.register(grown),
        challenger_score=score, test=grown.test_rows, metric="mae",
    )  # fmt: skip
    # the label-free champion (fitted on the young history) is measured on the same rows
    assert supervised.champion_score is not None and supervised.metric == "mae"
    assert supervised.promoted == (score < supervised.champion_score)
    promote(world.client, supervised)
    if supervised.promoted:
        kept = challenge(
            world.client, task="orders", challenger_version=world.register(young),
            challenger_score=None, test=None, metric="mae",
        )  # fmt: skip
        assert not kept.promoted and "keeps supervised champion" in kept.reason
    current = champion_version(world.client, "orders")
    assert rollback(world.client, task="orders")[0] == current


def test_decide_needs_a_margin_in_the_metric_direction() -> None:
    common = {"task": "ltv", "metric": "normalized_gini", "challenger_version": "4"}
    tie = decide(**common, challenger_score=0.5, champion_version="3", champion_score=0.5)
    assert not tie.promoted
    small = decide(
        **common,
        challenger_score=0.51,
        champion_version="3",
        champion_score=0.5,
        min_improvement=0.02,
    )
    assert not small.promoted and "needs > +0.0200" in small.reason
    unreadable = decide(**common, challenger_score=0.4, champion_version="3", champion_score=None)
    assert unreadable.promoted and "cannot read this feature set" in unreadable.reason
    mae = {**common, "metric": "mae"}
    assert decide(**mae, challenger_score=9.0, champion_version="3", champion_score=10.0).promoted
    assert not decide(
        **mae, challenger_score=11.0, champion_version="3", champion_score=10.0
    ).promoted


def test_champions_score_and_the_scores_table(world: World, settings: Settings) -> None:
    for task, fitted in world.grown.items():
        version = world.register(fitted)
        world.client.set_registered_model_alias(task, "champion", version)
    champions = load_champions(tracking_uri=world.uri)
    assert isinstance(champions, Champions) and set(champions.versions) == {
        "churn", "ltv", "orders",
    }  # fmt: skip
    assert champions.is_current(tracking_uri=world.uri)
    population = world.grown["churn"].population
    scores = champions.score(population, reasons=2, reasons_min_decile=9, reasons_max_rows=5)
    assert len(scores) == len(population)
    assert scores["churn_probability"].between(0, 1).all() and (scores["predicted_ltv"] > 0).all()
    assert (scores["expected_orders"] >= 0).all()
    assert set(scores["churn_decile"]) <= set(range(1, 11))  # ties may leave a decile empty
    assert scores["ltv_decile"].nunique() >= 8
    for model, column in (
        (champions.churn, "churn_probability"),
        (champions.ltv, "predicted_ltv"),
        (champions.orders, "expected_orders"),
    ):  # label-free outputs shared between models: the same as each model's own
        np.testing.assert_allclose(scores[column], model.predict_frame(population), rtol=1e-9)
    one = champions.score(population.iloc[[3]])  # a single customer alone: same answer
    assert one["churn_decile"].iloc[0] == scores["churn_decile"].iloc[3]
    assert np.isclose(one["predicted_ltv"].iloc[0], scores["predicted_ltv"].iloc[3])

    con = warehouse.connect(settings.paths.warehouse)
    scores.insert(0, "customer_id", population["customer_id"].to_numpy())
    common = {"versions": champions.versions, "feature_service": "test_v1"}
    for n, as_of in enumerate((date(2025, 12, 1), date(2026, 1, 1))):
        rows = append_scores(
            con,
            scores.assign(predicted_ltv=scores["predicted_ltv"] + n),
            scoring_id=f"s{n}",
            as_of=datetime.combine(as_of, datetime.min.time()),
            scored_at=datetime(2026, 1, 1, n),
            **common,
        )
        assert rows == len(scores)
    total, current, latest, orders = con.execute(
        "SELECT (SELECT count(*) FROM scores), count(*), bool_and(scoring_id = 's1'), "
        "count(expected_orders) FROM current_scores"
    ).fetchone()
    assert total == 2 * len(scores) and current == orders == len(scores) and latest
    con.close()

    other = world.register(world.grown["churn"])
    assert champions.is_current(tracking_uri=world.uri)  # registered, not promoted
    world.client.set_registered_model_alias("churn", "champion", other)
    assert not champions.is_current(tracking_uri=world.uri)  # a server would reload now
