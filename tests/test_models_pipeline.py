"""`cip train`, `cip score`, `cip models` on an orders-only history, through a real Feast repo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import features
import warehouse
from models import ModelSettings, examples_with_features
from pipelines import flows
from pipelines.cli import app
from pipelines.config import Settings

TINY = {"trials": "1", "max_trees": "30", "early_stopping_rounds": "5"}


@pytest.fixture
def cli_env(settings: Settings, orders_history: Path) -> dict[str, str]:
    """Environment for the CLI on the orders-only history, features built, tiny search."""
    flows.features.run(settings)
    env = {"CIP_DATA_DIR": str(settings.data_dir)}
    env.update({f"CIP_MODELS__SEARCH__{k.upper()}": v for k, v in TINY.items()})
    return env


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Exit code and output with whitespace collapsed (rich wraps long lines)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_train_score_status_and_rollback(cli_env: dict[str, str], settings: Settings) -> None:
    code, output = invoke(cli_env, "train")
    assert code == 0, output
    for task in ("churn", "ltv", "orders"):
        assert f"{task}: no champion yet" in output
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    builds = con.execute("SELECT count(DISTINCT built_at) FROM feature_snapshot_builds").fetchone()
    con.close()
    assert builds == (1,)  # training's month starts are those `cip features` built: reused
    assert "rfm_logistic" in output and "past_revenue" in output and "btyd" in output

    assert invoke(cli_env, "score")[0] == 0
    assert invoke(cli_env, "score", "--as-of", "2025-06-30")[0] == 0
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    by_scoring = con.execute(
        "SELECT as_of, count(*), count(churn_reasons), min(churn_model_version), "
        "count(expected_orders), min(orders_model_version), count(DISTINCT churn_decile), "
        "count(*) FILTER (WHERE churn_decile = 10) FROM scores GROUP BY ALL ORDER BY as_of"
    ).fetchall()
    everyone, quiet = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE last < $at - INTERVAL 365 DAY) FROM ("
        "  SELECT m.customer_id, max(o.ordered_at) AS last FROM raw_orders o JOIN identity_map m"
        "  ON m.source = 'orders' AND m.record_key = o.order_id WHERE o.ordered_at < $at"
        "  GROUP BY 1)",
        {"at": by_scoring[1][0]},
    ).fetchone()
    quiet_scored = con.execute(
        "SELECT count(*) FROM current_scores s WHERE customer_id IN (SELECT m.customer_id FROM "
        "raw_orders o JOIN identity_map m ON m.source = 'orders' AND m.record_key = o.order_id "
        "GROUP BY 1 HAVING max(o.ordered_at) < TIMESTAMP '2024-12-31')"
    ).fetchone()[0]
    con.close()
    assert [str(row[0].date()) for row in by_scoring] == ["2025-07-01", "2025-12-31"]
    assert by_scoring[1][1] == everyone  # everyone with an order before, once
    assert quiet > 0 and quiet_scored == quiet  # a year without orders is no reason to skip
    for _, rows, reasons, churn_version, orders, orders_version, deciles, top in by_scoring:
        assert 0 < reasons < rows and churn_version == "1" and orders_version == "1"
        assert orders == rows and deciles == 10  # deciles cut on the scored population itself
        assert 0.05 * rows <= top <= 0.15 * rows

    code, output = invoke(cli_env, "models", "status")
    assert code == 0 and "no champion yet" in output
    code, output = invoke(cli_env, "models", "rollback", "churn")
    assert code == 1 and "replaced no earlier champion" in output

    # the same data again: the champion, refit on this held-out cutoff, is judged by its
    # score there before the refit, which the same recipe on the same data only ties
    retrain = invoke(cli_env, "train")[1]
    for task in ("churn", "ltv", "orders"):
        said = re.search(rf"{task}: v2 does not beat champion v1 .*?: \S+ (\S+) vs (\S+) ", retrain)
        assert said and said[1] == said[2], retrain
    code, output = invoke(cli_env, "models", "promote", "churn", "2")
    assert code == 0 and "v2 promoted by hand over v1" in output
    code, output = invoke(cli_env, "models", "rollback", "churn")
    assert code == 0 and "from v2 to v1" in output


def test_a_young_history_gets_a_label_free_champion_and_scores_for_everyone(
    cli_env: dict[str, str], settings: Settings
) -> None:
    code, output = invoke(cli_env, "score")
    assert code == 1 and "run `cip train` first" in output
    code, output = invoke(cli_env, "train", "--as-of", "2024-06-30")  # six months of orders
    assert code == 0, output
    assert "ltv: the label-free model (" in output and "describes the history best" in output
    assert "no labelled 180-day window" in output
    assert "ltv: no champion yet: label-free v1 becomes champion" in output
    assert "orders: no champion yet: label-free v1 becomes champion" in output
    code, output = invoke(cli_env, "score", "--as-of", "2024-06-30")
    assert code == 0, output
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    scored, everyone, values = con.execute(
        "SELECT (SELECT count(*) FROM current_scores), (SELECT count(DISTINCT m.customer_id) "
        "FROM raw_orders o JOIN identity_map m ON m.record_key = o.order_id "
        "WHERE o.ordered_at < TIMESTAMP '2024-07-01'), (SELECT count(*) FROM current_scores "
        "WHERE predicted_ltv >= 0 AND expected_orders >= 0 AND churn_probability BETWEEN 0 AND 1)"
    ).fetchone()
    con.close()
    assert scored == everyone == values > 50


def test_bad_horizons_and_dates_are_refused_clearly(cli_env: dict[str, str]) -> None:
    long = {**cli_env, "CIP_MODELS__LTV_HORIZON_DAYS": "400"}
    code, output = invoke(long, "train", "--as-of", "2024-09-30")
    assert code == 1 and "ltv horizon of 400 days (models.ltv_horizon_days) is longer" in output
    code, output = invoke(cli_env, "backtest", "--as-of", "2023-05-01", "--horizon", "90")
    assert code == 1 and "--as-of 2023-05-01 is outside the order history" in output
    code, output = invoke(cli_env, "backtest", "--as-of", "2025-11-01", "--horizon", "90")
    assert code == 1 and "runs past the last order" in output
    code, output = invoke(cli_env, "backtest", "--as-of", "2024-02-20", "--horizon", "90")
    assert code == 1 and "--horizon) is longer than the history" in output
    assert "Traceback" not in output


def test_backtest_compares_the_models_and_logs_to_mlflow(
    cli_env: dict[str, str], settings: Settings
) -> None:
    code, output = invoke(cli_env, "backtest", "--as-of", "2025-06-30", "--horizon", "90")
    assert code == 0, output
    for name in ("champion", "supervised", "bgnbd", "pnbd", "revenue MAE", "any-purchase ROC-AUC"):
        assert name in output
    assert "total revenue error" in output and "expected-orders MAE" in output
    for task in ("churn", "ltv", "orders"):  # which model each task chose, by kind, and why
        assert re.search(rf"\b{task}: (lightgbm|bgnbd|pnbd): ", output), task
    from mlflow import MlflowClient

    from pipelines.tracking import tracking_uri

    client = MlflowClient(tracking_uri(settings))
    (run,) = client.search_runs([client.get_experiment_by_name("cip-backtests").experiment_id])
    assert run.data.params["horizon_days"] == "90"
    assert {"champion.revenue_mae", "bgnbd.any_purchase_roc_auc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "backtest_deciles.png" in artifacts


def test_feast_features_agree_with_the_labels_point_in_time(
    cli_env: dict[str, str], settings: Settings
) -> None:
    """Counted by the features package through Feast and by the labels from raw orders,
    the orders before each cutoff must agree: nothing after a cutoff leaks into its row."""
    from datetime import datetime

    con = warehouse.connect(settings.paths.warehouse)
    store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
    examples = examples_with_features(
        con,
        store=store,
        feast_dir=settings.paths.feast,
        feature_settings=settings.features,
        services=["churn_v1"],
        cutoffs=[datetime(2025, 3, 17), datetime(2025, 8, 2)],
        horizon_days=90,
        settings=ModelSettings(),
    )
    con.close()
    frame = examples.frame
    assert len(frame) > 100 and "orders_total" in examples.feature_names
    assert (frame["orders_total"] == frame["rfm_frequency"]).all()
    assert (frame["days_since_last_order"] == frame["rfm_recency_days"]).all()
