"""`cip train`, `cip models ...` and `cip mlflow-ui`: train, compare, promote, roll back.

`cip train` builds point-in-time training sets for the churn and LTV models,
tunes LightGBM on the validation cutoff, trains the baselines on the same
split, logs everything to one MLflow run, registers both models and promotes
each one that beats its champion on the held-out cutoff, saying which won and
why. `cip models status` shows the champions, `cip models rollback churn`
undoes a promotion, `cip models promote churn 3` forces one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import duckdb
import lazy_loader
import typer
from rich.progress import Progress
from rich.table import Table

import features
import models
import warehouse
from pipelines.config import Settings
from pipelines.console import console, progress
from pipelines.console import stage as stage_report
from pipelines.processes import run_server
from pipelines.tracking import tracking_uri, use_mlflow

if TYPE_CHECKING:
    from feast import FeatureStore

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = [
    "EXPERIMENT",
    "TrainOutcome",
    "clear_errors",
    "command",
    "register",
    "stage",
    "train",
]

EXPERIMENT = "cip-models"

AsOf = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        help="Train as if today were this date (YYYY-MM-DD): later data stays invisible. "
        "Default: the latest order.",
    ),
]


@dataclass
class TrainOutcome:
    """What one `cip train` did: the MLflow run, each task's result and promotion decision."""

    run_id: str
    as_of: date
    results: dict[str, models.TaskResult]
    decisions: dict[str, models.Decision]


def register(app: typer.Typer) -> None:
    app.command("train")(command)
    app.command("mlflow-ui")(mlflow_ui)
    group = typer.Typer(help="The registered churn and LTV models: status, promote, roll back.")
    group.command("status")(status)
    group.command("promote")(force_promote)
    group.command("rollback")(roll_back)
    app.add_typer(group, name="models")


def command(ctx: typer.Context, as_of: AsOf = None) -> None:
    """Train the churn and LTV models, compare them with baselines and the champions, promote."""
    with clear_errors():
        train(ctx.obj, as_of=as_of.date() if as_of else None)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Print what is missing or too short (no traceback) and exit with status 1."""
    try:
        yield
    except (models.HorizonError, models.NoChampionError, features.FeatureInputError) as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error


def stage(settings: Settings) -> None:
    train(settings)


def _metric(settings: models.ModelSettings, task: str) -> str:
    return settings.churn_metric if task == "churn" else settings.ltv_metric


def train(settings: Settings, *, as_of: date | None = None) -> TrainOutcome:
    """Train both tasks as of `as_of` (default: the latest order) in one MLflow run."""
    ms = settings.models
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # our report says what matters
    horizons = {"churn": ms.churn_horizon_days, "ltv": ms.ltv_horizon_days}
    with stage_report("train") as report:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            first, last = models.data_span(con, as_of=as_of)
            as_of = as_of or last
            plans = {
                task: models.plan_cutoffs(
                    first_order=first,
                    as_of=as_of,
                    horizon_days=horizons[task],
                    step_days=ms.cutoff_step_days,
                    train_cutoffs=ms.train_cutoffs,
                    min_history_days=ms.min_history_days,
                    what=task,
                )
                for task in models.TASKS
            }
            store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
            uri = use_mlflow(settings, EXPERIMENT)
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            results, decisions = {}, {}
            with mlflow.start_run(run_name=f"train as of {as_of}") as run, progress() as bar:
                mlflow.log_params(
                    {
                        "as_of": str(as_of),
                        "first_order": str(first),
                        "activity_days": ms.activity_days,
                        "min_orders": ms.min_orders,
                        "search_trials": ms.search.trials,
                    }
                )
                for task in models.TASKS:
                    results[task], decisions[task] = _train_one(
                        task, con=con, store=store, client=client, plan=plans[task],
                        settings=settings, as_of=as_of, bar=bar,
                    )  # fmt: skip
        finally:
            con.close()
        for task in models.TASKS:
            report.add(f"{task} cutoffs", plans[task].describe())
            report.add(f"{task} rows (train/valid/test)", _sizes(results[task]))
        report.add("MLflow run", run.info.run_id)
    for task in models.TASKS:
        console.print(_comparison(results[task], _metric(ms, task)))
        decision = decisions[task]
        colour = "green" if decision.promoted else "yellow"
        console.print(f"[{colour}]{task}: {decision.reason}[/]")
    return TrainOutcome(run_id=run.info.run_id, as_of=as_of, results=results, decisions=decisions)


def _train_one(
    task: str,
    *,
    con: duckdb.DuckDBPyConnection,
    store: FeatureStore,
    client: mlflow.MlflowClient,
    plan: models.CutoffPlan,
    settings: Settings,
    as_of: date,
    bar: Progress,
) -> tuple[models.TaskResult, models.Decision]:
    """One task inside the open MLflow run: training set, search, log, challenge, promote."""
    ms = settings.models
    service = ms.churn_service if task == "churn" else ms.ltv_service
    job = bar.add_task(f"{task}: training set", total=ms.search.trials + 2)
    examples = models.examples_with_features(
        con,
        store=store,
        feast_dir=settings.paths.feast,
        feature_settings=settings.features,
        services=[service],
        cutoffs=plan.all,
        horizon_days=plan.horizon_days,
        settings=ms,
    )
    if examples.dropped:
        mlflow.log_param(f"{task}.dropped_features", ",".join(examples.dropped))
    bar.update(job, advance=1, description=f"{task}: search")
    train_rows, valid_rows, test_rows = examples.split(plan)
    result = models.train_task(
        task,
        train=train_rows,
        valid=valid_rows,
        test=test_rows,
        feature_names=examples.feature_names,
        settings=ms,
        on_trial=lambda _: bar.update(job, advance=1),
    )
    bar.update(job, description=f"{task}: log, register, challenge")
    version = models.log_task(result, plan=plan, feature_service=service, as_of=str(as_of))
    metric = _metric(ms, task)
    decision = models.challenge(
        client,
        task=task,
        challenger_version=version,
        challenger_score=result.metrics["lightgbm"][metric],
        test=test_rows,
        metric=metric,
        min_improvement=ms.min_improvement,
    )
    models.promote(client, decision)
    mlflow.log_dict(asdict(decision), f"{task}_promotion.json")
    mlflow.set_tag(f"{task}.promoted", str(decision.promoted).lower())
    bar.update(job, advance=1, description=f"{task}: done")
    return result, decision


def _sizes(result: models.TaskResult) -> str:
    return " / ".join(f"{result.sizes[k]:,}" for k in ("train_rows", "valid_rows", "test_rows"))


def _comparison(result: models.TaskResult, metric: str) -> Table:
    """The held-out metrics of the model and its baselines, and the lead on `metric`."""
    table = Table(title=f"{result.task}: held-out cutoff", title_justify="left")
    table.add_column("metric")
    for model in result.metrics:
        table.add_column(model, justify="right")
    for name in result.metrics["lightgbm"]:
        cells = (result.metrics[m].get(name) for m in result.metrics)
        table.add_row(name, *("" if v is None else f"{v:,.4g}" for v in cells))
    lead = ", ".join(f"{k} {v:+.4f}" for k, v in result.lead(metric).items())
    skipped = "".join(f"; {k} not fitted: {why}" for k, why in result.skipped.items())
    table.caption = f"LightGBM lead on {metric}: {lead}{skipped}"
    return table


Task = Annotated[str, typer.Argument(help="churn or ltv")]


def _client(settings: Settings, task: str | None = None) -> mlflow.MlflowClient:
    if task is not None and task not in models.TASKS:
        raise typer.BadParameter(f"unknown model {task!r}; models are {', '.join(models.TASKS)}")
    uri = tracking_uri(settings)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def status(ctx: typer.Context) -> None:
    """Show every registered version of churn and LTV, and which one is champion."""
    client = _client(ctx.obj)
    table = Table("model", "version", "champion", "created", "promotion")
    for task in models.TASKS:
        champion = models.champion_version(client, task)
        versions = client.search_model_versions(f"name = '{task}'")
        for v in sorted(versions, key=lambda v: int(v.version)):
            created = datetime.fromtimestamp(v.creation_timestamp / 1000).strftime("%Y-%m-%d %H:%M")
            mark = "[bold green]yes[/]" if str(v.version) == champion else ""
            table.add_row(task, str(v.version), mark, created, _promotion_note(v.tags))
    console.print(table)


def _promotion_note(tags: dict[str, str]) -> str:
    if "rolled_back_to" in tags:
        return f"rolled back to v{tags['rolled_back_to']}"
    return json.loads(tags["promotion"])["reason"] if "promotion" in tags else ""


def force_promote(ctx: typer.Context, task: Task, version: str) -> None:
    """Make VERSION champion without the held-out comparison (recorded as a manual promotion)."""
    client = _client(ctx.obj, task)
    client.get_model_version(task, version)  # raises when that version does not exist
    current = models.champion_version(client, task)
    reason = f"v{version} promoted by hand over v{current}"
    models.promote(
        client,
        models.Decision(
            task=task,
            metric="manual",
            challenger_version=version,
            challenger_score=float("nan"),
            champion_version=current,
            champion_score=None,
            promoted=True,
            reason=reason,
        ),
    )
    console.print(f"{task}: {reason}")


def roll_back(
    ctx: typer.Context,
    task: Task,
    to: Annotated[str | None, typer.Option("--to", help="Version to restore.")] = None,
) -> None:
    """Point the champion back at the version the current one replaced (or at --to)."""
    client = _client(ctx.obj, task)
    try:
        before, after = models.rollback(client, task=task, to_version=to)
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from error
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
