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

Names are imported on first use (lazy_loader), so that reading the settings
(which every command does) does not load LightGBM and MLflow.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "baselines": ["BTYDRegressor", "past_revenue", "rfm_logistic"],
        "calibration": ["PlattCalibrator"],
        "champions": [
            "ChampionModel",
            "Champions",
            "NoChampionError",
            "load_champion",
            "load_champions",
        ],
        "datasets": ["ExampleSet", "examples_with_features"],
        "estimators": ["ChurnClassifier", "LTVRegressor", "search"],
        "explanations": ["top_reasons"],
        "labels": [
            "CutoffPlan",
            "HorizonError",
            "ORDERS_SQL",
            "build_examples",
            "data_span",
            "plan_cutoffs",
            "visible_until",
        ],
        "metrics": ["assign_deciles", "churn_metrics", "decile_table", "ltv_metrics"],
        "promotion": ["Decision", "challenge", "decide", "promote", "rollback"],
        "registry": ["CHAMPION", "champion_version", "log_task"],
        "scoring": ["append_scores", "ensure_scores_table"],
        "settings": ["ModelSettings"],
        "training": ["TASKS", "TaskResult", "train_task"],
    },
)
