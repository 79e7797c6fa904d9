"""`cip backtest`: fit as of a past date, predict the next horizon, compare with what happened.

Prints the champion, the supervised model and the label-free baselines (BG/NBD and
Pareto/NBD with Gamma-Gamma) side by side, says which model each task chose and why,
and logs the metrics and a plot of predicted against actual revenue by decile to MLflow
(experiment `cip-backtests`). Nothing is registered or promoted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

import models
from pipelines.commands.train import clear_errors
from pipelines.console import console, run_stage
from pipelines.flows import backtest as flow

__all__ = ["command", "register", "table"]


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
        outcome = run_stage("backtest", flow.run, ctx.obj, as_of=as_of.date(), horizon_days=horizon)
    console.print(table(outcome.backtest))
    for task, why in outcome.backtest.choices.items():
        console.print(f"{task}: {why}")


def table(result: models.Backtest) -> Table:
    """The metrics, one column per model, the best of each row in bold."""
    out = Table(
        title=f"backtest as of {result.as_of}, {result.horizon_days} days", title_justify="left"
    )
    out.add_column("metric")
    for name in result.metrics.index:
        out.add_column(name, justify="right")
    from models.backtests import METRICS  # imported here: `cip --help` stays quick

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
