"""Churn, LTV and expected-orders models: labels, label-free and LightGBM models, MLflow, scores.

Typical use (the CLI in `pipelines/commands/train.py`, `score.py` and `backtest.py`
does this):

    fitted = fit_models(con, store=store, feast_dir=..., feature_settings=...,
                        settings=model_settings, as_of=date(2025, 6, 30))
    for task, f in fitted.items():          # churn, ltv, orders
        version = log_task(f, as_of="2025-06-30")      # inside an MLflow run
        promote(client, challenge(client, task=task, challenger_version=version, ...))

    champions = load_champions(tracking_uri=uri)       # lean scorer for batch and HTTP
    champions.score(features_frame, reasons=3)

    report = run_backtest(con, ..., as_of=date(2025, 6, 30), horizon_days=180)

Names are imported on first use (lazy_loader), so that reading the settings
(which every command does) does not load LightGBM and MLflow.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "backtests": ["Backtest", "run_backtest"],
        "baselines": ["past_revenue", "rfm_logistic"],
        "btyd": ["BTYD_INPUTS", "BTYD_OUTPUTS", "BTYDModel"],
        "calibration": ["PlattCalibrator"],
        "champions": [
            "TASK_NAMES",
            "ChampionModel",
            "Champions",
            "NoChampionError",
            "load_champion",
            "load_champions",
        ],
        "datasets": ["ExampleSet", "examples_with_features"],
        "estimators": ["ChurnClassifier", "LTVRegressor", "OrdersRegressor", "search"],
        "explanations": ["top_reasons"],
        "labels": [
            "CutoffPlan",
            "HorizonError",
            "ORDERS_SQL",
            "build_examples",
            "data_span",
            "orders_sql",
            "plan_cutoffs",
            "population_counts",
            "visible_until",
        ],
        "metrics": [
            "assign_deciles",
            "better",
            "churn_metrics",
            "decile_table",
            "ltv_metrics",
            "orders_metrics",
        ],
        "promotion": ["Decision", "challenge", "decide", "promote", "rollback"],
        "registry": ["CHAMPION", "champion_version", "log_task", "metric_name", "param_name"],
        "scoring": ["append_scores", "ensure_scores_table"],
        "settings": ["ModelSettings"],
        "training": ["TASKS", "TaskResult", "metric_of", "train_task"],
        "workflow": ["Fitted", "fit_models"],
    },
)
