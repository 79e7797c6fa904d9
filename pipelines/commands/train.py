"""`cip train`, `cip models ...` and `cip mlflow-ui`: train, compare, promote, roll back.

`cip train` fits the churn, LTV and expected-orders models for any history
(`pipelines.flows.train`): LightGBM tuned on the validation cutoff and chosen only
when it beats the label-free model (BG/NBD + Gamma-Gamma) on the held-out
cutoff, then refit on the latest labelled cutoffs; the label-free model alone
when the history is too young for labels. It logs everything to one MLflow run,
registers the three models and promotes each one that beats its champion,
saying which won and why. `cip models status` shows the champions, `cip models
rollback churn` undoes a promotion, `cip models promote churn 3` forces one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated

import duckdb
import typer
from rich.table import Table

import features
import models
from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import champions
from pipelines.flows import train as flow
from pipelines.processes import run_server
from pipelines.tracking import tracking_uri

__all__ = ["AsOf", "clear_errors", "command", "register", "stage"]

AsOf = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Train as if today were this date (YYYY-MM-DD): later data stays invisible. "
        "Default: the latest order.",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("train")(command)
    app.command("mlflow-ui")(mlflow_ui)
    group = typer.Typer(help="The registered churn and LTV models: status, promote, roll back.")
    group.command("status")(status)
    group.command("promote")(force_promote)
    group.command("rollback")(roll_back)
    app.add_typer(group, name="models")


def command(ctx: typer.Context, as_of: AsOf = None) -> None:
    """Train the churn, LTV and expected-orders models, compare them with the label-free model,
    the baselines and the champions, promote."""
    with clear_errors():
        stage(ctx.obj, as_of=as_of.date() if as_of else None)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Print what is missing or too short (no traceback) and exit with status 1."""
    try:
        yield
    except (
        models.HorizonError,
        models.NoChampionError,
        features.FeatureInputError,
        duckdb.CatalogException,
    ) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


def stage(settings: Settings, *, as_of: date | None = None) -> flow.TrainOutcome:
    """The train stage of `cip run`; prints each task's comparison and promotion."""
    outcome = run_stage("train", flow.run, settings, as_of=as_of)
    for task, one in outcome.fitted.items():
        if one.result is not None:
            console.print(_comparison(one.result))
        console.print(f"{task}: {one.reason}")
        decision = outcome.decisions[task]
        colour = "green" if decision.promoted else "yellow"
        console.print(f"[{colour}]{task}: {decision.reason}[/]")
    return outcome


def _comparison(result: models.TaskResult) -> Table:
    """The held-out metrics of the model and its baselines, and the lead on `metric`."""
    table = Table(title=f"{result.task}: held-out cutoff", title_justify="left")
    table.add_column("metric")
    for model in result.metrics:
        table.add_column(model, justify="right")
    for name in result.metrics["lightgbm"]:
        cells = (result.metrics[m].get(name) for m in result.metrics)
        table.add_row(name, *("" if v is None else f"{v:,.4g}" for v in cells))
    metric = result.metric
    lead = ", ".join(f"{k} {v:+.4f}" for k, v in result.lead(metric).items())
    skipped = "".join(f"; {k} not fitted: {why}" for k, why in result.skipped.items())
    table.caption = f"LightGBM lead on {metric} (positive: better): {lead}{skipped}"
    return table


Task = Annotated[str, typer.Argument(help="churn, ltv or orders")]


@contextmanager
def _bad_task() -> Iterator[None]:
    try:
        yield
    except ValueError as error:
        if "unknown model" in str(error):
            raise typer.BadParameter(str(error)) from error
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


def status(ctx: typer.Context) -> None:
    """Show every registered version of each model, and which one is champion."""
    table = Table("model", "version", "champion", "created", "promotion")
    for v in champions.versions(ctx.obj):
        mark = "[bold green]yes[/]" if v.champion else ""
        table.add_row(v.task, v.version, mark, f"{v.created:%Y-%m-%d %H:%M}", v.promotion)
    console.print(table)


def force_promote(ctx: typer.Context, task: Task, version: str) -> None:
    """Make VERSION champion without the held-out comparison (recorded as a manual promotion)."""
    with _bad_task():
        reason = champions.promote(ctx.obj, task=task, version=version)
    console.print(f"{task}: {reason}")


def roll_back(
    ctx: typer.Context,
    task: Task,
    to: Annotated[str | None, typer.Option("--to", help="Version to restore.")] = None,
) -> None:
    """Point the champion back at the version the current one replaced (or at --to)."""
    with _bad_task():
        before, after = champions.roll_back(ctx.obj, task=task, to=to)
    console.print(f"{task}: champion rolled back from v{before} to v{after}")


def mlflow_ui(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 5000,
) -> None:
    """Open the MLflow UI on the platform's tracking store."""
    uri = tracking_uri(ctx.obj)
    console.print(f"MLflow UI on http://127.0.0.1:{port} for {uri} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    raise typer.Exit(run_server([*command, "--host", "127.0.0.1", "--port", str(port)]))
