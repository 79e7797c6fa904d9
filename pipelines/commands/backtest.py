"""`cip backtest`: fit as of a past date, predict the next horizon, compare with what happened.

Prints the champion, the supervised model and the label-free baselines (BG/NBD and
Pareto/NBD with Gamma-Gamma) side by side, says which model each task chose and why,
and logs the metrics and a plot of predicted against actual revenue by decile to MLflow
(experiment `cip-backtests`). Nothing is registered or promoted.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

import lazy_loader
import typer
from rich.table import Table

import features
import models
import warehouse
from pipelines.commands.train import clear_errors
from pipelines.config import Settings
from pipelines.console import console, progress
from pipelines.console import stage as stage_report
from pipelines.tracking import use_mlflow

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = ["EXPERIMENT", "backtest", "command", "register"]

EXPERIMENT = "cip-backtests"


def register(app: typer.Typer) -> None:
    app.command("backtest")(command)


def command(
    ctx: typer.Context,
    as_of: Annotated[
        datetime,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="Fit on the orders up to this day (YYYY-MM-DD); compare with what came after.",
        ),
    ],
    horizon: Annotated[
        int,
        typer.Option("--horizon", min=1, help="Days after the as-of date to predict and compare."),
    ],
) -> None:
    """Backtest the champion, the supervised model and the label-free baselines."""
    with clear_errors():
        backtest(ctx.obj, as_of=as_of.date(), horizon_days=horizon)


def backtest(settings: Settings, *, as_of, horizon_days: int) -> models.Backtest:  # noqa: ANN001
    """Run one backtest, print it and log it to MLflow."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with stage_report("backtest") as report:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
            with progress() as bar:
                job = bar.add_task("backtest", total=None)
                result = models.run_backtest(
                    con,
                    store=store,
                    feast_dir=settings.paths.feast,
                    feature_settings=settings.features,
                    settings=settings.models,
                    as_of=as_of,
                    horizon_days=horizon_days,
                    on_step=lambda step: bar.update(job, description=step),
                    on_trial=lambda _: bar.advance(job),
                )
                bar.update(job, description="measured")
        finally:
            con.close()
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
        report.add("as of / horizon", f"{as_of} / {horizon_days} days")
        report.add("customers", result.customers)
        report.add("actual revenue in the horizon", f"{result.actual_revenue:,.0f}")
        report.add("MLflow run", run.info.run_id)
    console.print(table(result))
    for task, why in result.choices.items():
        console.print(f"{task}: {why}")
    return result


def table(result: models.Backtest) -> Table:
    """The metrics, one column per model, the best of each row in bold."""
    out = Table(
        title=f"backtest as of {result.as_of}, {result.horizon_days} days", title_justify="left"
    )
    out.add_column("metric")
    for name in result.metrics.index:
        out.add_column(name, justify="right")
    from models.backtests import METRICS

    for key, (label, lower) in METRICS.items():
        values = result.metrics[key]
        best = (
            values.abs().idxmin()
            if lower is None
            else (values.idxmin() if lower else values.idxmax())
        )
        cells = [
            f"[bold]{_cell(key, v)}[/]" if name == best else _cell(key, v)
            for name, v in values.items()
        ]
        out.add_row(label, *cells)
    return out


def _cell(key: str, value: float) -> str:
    return f"{value:+.1%}" if key == "revenue_total_error" else f"{value:,.4g}"
