"""MLflow registry on a real SQLite store: logging, the promotion rule, rollback, scoring."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import warehouse
from models import (
    Champions,
    ModelSettings,
    append_scores,
    build_examples,
    challenge,
    champion_version,
    data_span,
    decide,
    load_champions,
    log_task,
    plan_cutoffs,
    promote,
    rollback,
    train_task,
)
from models.baselines import RFM_COLUMNS
from pipelines.config import Settings
from pipelines.tracking import use_mlflow

TINY = ModelSettings(search={"trials": 1, "max_trees": 30, "early_stopping_rounds": 5})
STRONG = [*RFM_COLUMNS, "btyd_frequency", "btyd_recency", "past_revenue"]
WEAK = ["rfm_monetary"]


class World:
    """Examples of the orders-only history, split per task, and an MLflow store."""

    def __init__(self, settings: Settings, warehouse_path: Path) -> None:
        con = warehouse.connect(warehouse_path)
        first, last = data_span(con)
        self.splits, self.plans = {}, {}
        for task, horizon in (("churn", 90), ("ltv", 180)):
            plan = plan_cutoffs(
                first_order=first,
                as_of=last,
                horizon_days=horizon,
                step_days=30,
                train_cutoffs=4,
                min_history_days=90,
            )
            frame = build_examples(
                con, cutoffs=plan.all, horizon_days=horizon, activity_days=365, min_orders=1
            )
            cutoff = frame["cutoff"]
            self.splits[task] = {
                "train": frame[cutoff.isin(pd.to_datetime(list(plan.train)))],
                "valid": frame[cutoff == pd.Timestamp(plan.valid)],
                "test": frame[cutoff == pd.Timestamp(plan.test)],
            }
            self.plans[task] = plan
        self.scoring = build_examples(
            con, cutoffs=[datetime(2026, 1, 1)], horizon_days=180, activity_days=365,
            min_orders=1, with_labels=False,
        )  # fmt: skip
        con.close()
        self.uri = use_mlflow(settings, "test-models")
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def challenger(self, task: str, features: list[str]):
        """Train, log and register a model on `features`; return its decision (not applied)."""
        result = train_task(task, **self.splits[task], feature_names=features, settings=TINY)
        with mlflow.start_run():
            version = log_task(
                result, plan=self.plans[task], feature_service="test_v1", as_of="2025-12-30"
            )
        metric = "roc_auc" if task == "churn" else "normalized_gini"
        return challenge(
            self.client,
            task=task,
            challenger_version=version,
            challenger_score=result.metrics["lightgbm"][metric],
            test=self.splits[task]["test"],
            metric=metric,
        )


@pytest.fixture
def world(settings: Settings, orders_history: Path) -> World:
    return World(settings, orders_history)


def test_promotion_rule_and_rollback(world: World) -> None:
    first = world.challenger("churn", WEAK)
    assert first.promoted and first.reason.startswith("no champion yet")
    promote(world.client, first)
    assert champion_version(world.client, "churn") == first.challenger_version == "1"

    strong = world.challenger("churn", STRONG)
    assert strong.champion_version == "1"
    assert strong.champion_score == pytest.approx(first.challenger_score)  # same held-out rows
    assert strong.promoted and "beats champion v1" in strong.reason
    promote(world.client, strong)
    assert champion_version(world.client, "churn") == "2"

    weak_again = world.challenger("churn", WEAK)
    assert not weak_again.promoted and "does not beat champion v2" in weak_again.reason
    promote(world.client, weak_again)
    assert champion_version(world.client, "churn") == "2"
    tags = world.client.get_model_version("churn", "3").tags
    assert '"promoted": false' in tags["promotion"]

    assert rollback(world.client, task="churn") == ("2", "1")
    assert champion_version(world.client, "churn") == "1"
    with pytest.raises(ValueError, match="replaced no earlier champion"):
        rollback(world.client, task="churn")
    assert rollback(world.client, task="churn", to_version="2") == ("1", "2")


def test_decide_needs_a_margin() -> None:
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


def test_champions_score_and_the_scores_table(world: World, settings: Settings) -> None:
    for task in ("churn", "ltv"):
        promote(world.client, world.challenger(task, STRONG))
    champions = load_champions(tracking_uri=world.uri)
    assert isinstance(champions, Champions) and champions.versions == {"churn": "1", "ltv": "1"}
    assert champions.churn.feature_names == STRONG and len(champions.churn.decile_cuts) == 9
    assert champions.is_current(tracking_uri=world.uri)

    scores = champions.score(world.scoring, reasons=2, reasons_min_decile=9, reasons_max_rows=5)
    assert len(scores) == len(world.scoring)
    assert scores["churn_probability"].between(0, 1).all() and (scores["predicted_ltv"] > 0).all()
    assert set(scores["churn_decile"]) <= set(range(1, 11))
    explained = scores["churn_reasons"].notna()
    assert 0 < explained.sum() <= 5 and (scores.loc[explained, "churn_decile"] >= 9).all()
    assert {"feature", "value", "effect"} <= set(scores.loc[explained, "churn_reasons"].iloc[0][0])
    one = champions.score(world.scoring.iloc[[3]])  # a single customer alone: same answer
    assert one["churn_decile"].iloc[0] == scores["churn_decile"].iloc[3]
    assert np.isclose(one["predicted_ltv"].iloc[0], scores["predicted_ltv"].iloc[3])

    con = warehouse.connect(settings.paths.warehouse)
    scores.insert(0, "customer_id", world.scoring["customer_id"].to_numpy())
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
    total, current, latest = con.execute(
        "SELECT (SELECT count(*) FROM scores), count(*), bool_and(scoring_id = 's1') "
        "FROM current_scores"
    ).fetchone()
    assert total == 2 * len(scores) and current == len(scores) and latest
    (stored,) = con.execute(
        "SELECT churn_reasons FROM scores WHERE churn_reasons IS NOT NULL LIMIT 1"
    ).fetchone()
    assert '"feature"' in stored
    con.close()

    world.challenger("churn", WEAK)  # registered as v2, not promoted
    assert champions.is_current(tracking_uri=world.uri)
    world.client.set_registered_model_alias("churn", "champion", "2")
    assert not champions.is_current(tracking_uri=world.uri)  # a server would reload now
