"""Churn and lifetime-value models: labels, LightGBM estimators, baselines, MLflow registry, scores.

Typical use (the CLI in `pipelines/commands/train.py` and `score.py` does this):

    plan = plan_cutoffs(first_order=..., as_of=..., horizon_days=90, ...)
    examples = examples_with_features(con, store=store, services=["churn_v1"],
                                      cutoffs=plan.all, ...)
    train, valid, test = examples.split(plan)
    result = train_task("churn", train=train, valid=valid, test=test,
                        feature_names=examples.feature_names, settings=model_settings)
    version = log_task(result, plan=plan, feature_service="churn_v1", as_of="2025-06-30")
    promote(client, challenge(client, task="churn", challenger_version=version, ...))

    champions = load_champions(tracking_uri=uri)       # lean scorer for batch and HTTP
    champions.score(features_frame, reasons=3)
"""

from models.baselines import BTYDRegressor, past_revenue, rfm_logistic
from models.calibration import PlattCalibrator
from models.champions import (
    ChampionModel,
    Champions,
    NoChampionError,
    load_champion,
    load_champions,
)
from models.datasets import ExampleSet, examples_with_features
from models.estimators import ChurnClassifier, LTVRegressor, search
from models.explanations import top_reasons
from models.labels import (
    ORDERS_SQL,
    CutoffPlan,
    HorizonError,
    build_examples,
    data_span,
    plan_cutoffs,
    visible_until,
)
from models.metrics import assign_deciles, churn_metrics, decile_table, ltv_metrics
from models.promotion import Decision, challenge, decide, promote, rollback
from models.registry import CHAMPION, champion_version, log_task
from models.scoring import append_scores, ensure_scores_table
from models.settings import ModelSettings
from models.training import TASKS, TaskResult, train_task

__all__ = [
    "CHAMPION",
    "ORDERS_SQL",
    "TASKS",
    "BTYDRegressor",
    "ChampionModel",
    "Champions",
    "ChurnClassifier",
    "CutoffPlan",
    "Decision",
    "ExampleSet",
    "HorizonError",
    "PlattCalibrator",
    "LTVRegressor",
    "ModelSettings",
    "NoChampionError",
    "TaskResult",
    "append_scores",
    "assign_deciles",
    "build_examples",
    "challenge",
    "champion_version",
    "churn_metrics",
    "data_span",
    "decide",
    "decile_table",
    "ensure_scores_table",
    "examples_with_features",
    "load_champion",
    "load_champions",
    "log_task",
    "ltv_metrics",
    "past_revenue",
    "plan_cutoffs",
    "promote",
    "rfm_logistic",
    "rollback",
    "search",
    "top_reasons",
    "train_task",
    "visible_until",
]
