"""The backtest flow: fit as of a past date, predict the next horizon, compare with what
happened, log the metrics and a plot to MLflow (experiment `cip-backtests`). Nothing is
registered or promoted."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import lazy_loader

import features
import models
import warehouse
from pipelines.config import Settings
from pipelines.engines import engine_for
from pipelines.flows.progress import Progress, silent
from pipelines.tracking import use_mlflow

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = ["EXPERIMENT", "BacktestOutcome", "run"]

EXPERIMENT = "cip-backtests"


@dataclass(frozen=True)
class BacktestOutcome:
    """The backtest and its MLflow run."""

    backtest: models.Backtest
    run_id: str

    @property
    def figures(self) -> dict[str, object]:
        b = self.backtest
        return {
            "as of / horizon": f"{b.as_of} / {b.horizon_days} days",
            "customers": b.customers,
            "actual revenue in the horizon": f"{b.actual_revenue:,.0f}",
            "MLflow run": self.run_id,
        }


def run(
    settings: Settings, *, as_of: date, horizon_days: int, progress: Progress = silent
) -> BacktestOutcome:
    """Backtest the champion, the supervised model and the label-free baselines as of
    `as_of` over `horizon_days`, and log it to MLflow."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    trials = 0

    def on_trial(_: object) -> None:
        nonlocal trials
        trials += 1
        progress("search", done=trials)

    engine = engine_for(settings)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        store = features.open_store(
            feast_dir=settings.paths.feast, settings=settings.features, engine=engine
        )
        result = models.run_backtest(
            con,
            store=store,
            feast_dir=settings.paths.feast,
            feature_settings=settings.features,
            settings=settings.models,
            as_of=as_of,
            horizon_days=horizon_days,
            on_step=lambda step: progress(step, done=trials),
            on_trial=on_trial,
        )
        progress("measured", done=trials)
    finally:
        con.close()
        if engine is not None:
            engine.cleanup()  # the training sets Spark staged in the lake
    use_mlflow(settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"backtest {as_of} + {horizon_days} d") as run:
        mlflow.log_params(
            {"as_of": str(as_of), "horizon_days": horizon_days, "customers": result.customers}
        )
        for name, row in result.metrics.iterrows():
            mlflow.log_metrics({f"{name}.{k}": float(v) for k, v in row.items()})
        mlflow.log_metric("actual_revenue", result.actual_revenue)
        for task, why in result.choices.items():
            mlflow.set_tag(f"{task}.choice", why[:5000])
        mlflow.log_table(result.metrics.reset_index(names="model"), "backtest_metrics.json")
        mlflow.log_figure(result.figure(), "backtest_deciles.png")
    return BacktestOutcome(result, run.info.run_id)
