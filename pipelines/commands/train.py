"""`cip train`, `cip models ...` and `cip mlflow-ui`: train, compare, promote, roll back.

`cip train` fits the churn, LTV and expected-orders models for any history
(`models.fit_models`): LightGBM tuned on the validation cutoff and chosen only
when it beats the label-free model (BG/NBD + Gamma-Gamma) on the held-out
cutoff, then refit on the latest labelled cutoffs; the label-free model alone
when the history is too young for labels. It logs everything to one MLflow run,
registers the three models and promotes each one that beats its champion,
saying which won and why. `cip models status` shows the champions, `cip models
rollback churn` undoes a promotion, `cip models promote churn 3` forces one.
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
    pass

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
    fitted: dict[str, models.Fitted]
    decisions: dict[str, models.Decision]
    population: dict[str, float]


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
        train(ctx.obj, as_of=as_of.date() if as_of else None)


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


def stage(settings: Settings) -> None:
    train(settings)


def train(settings: Settings, *, as_of: date | None = None) -> TrainOutcome:
    """Fit every task as of `as_of` (default: the latest order) in one MLflow run, register
    the models and promote those that beat their champions."""
    ms = settings.models
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # our report says what matters
    with stage_report("train") as report:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
            with progress() as bar:
                job = bar.add_task("train", total=None)
                fitted = models.fit_models(
                    con,
                    store=store,
                    feast_dir=settings.paths.feast,
                    feature_settings=settings.features,
                    settings=ms,
                    as_of=as_of,
                    on_step=lambda step: bar.update(job, description=step),
                    on_trial=lambda _: bar.advance(job),
                )
                bar.update(job, description="trained")
            as_of = as_of or models.data_span(con, orders=models.orders_sql())[1]
            population = models.population_counts(con, before=models.visible_until(as_of))
        finally:
            con.close()
        uri = use_mlflow(settings, EXPERIMENT)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        decisions = {}
        with mlflow.start_run(run_name=f"train as of {as_of}") as run:
            mlflow.log_params(
                {
                    "as_of": str(as_of),
                    "min_orders": ms.min_orders,
                    "include_fragments": ms.include_fragments,
                    "search_trials": ms.search.trials,
                }
            )
            mlflow.log_metrics({f"population.{k}": v for k, v in population.items()})
            for task, one in fitted.items():
                decisions[task] = _register(client, one, settings=ms, as_of=as_of)
        for task, one in fitted.items():
            report.add(f"{task} model", f"{one.model.kind} ({len(one.population):,} customers)")
            if one.plan is not None:
                report.add(f"{task} cutoffs", one.plan.describe())
                report.add(f"{task} rows (train/valid/test)", _sizes(one.result))
        report.add("customers (people) / fragments", _population(population, ms))
        report.add("MLflow run", run.info.run_id)
    for task, one in fitted.items():
        if one.result is not None:
            console.print(_comparison(one.result))
        console.print(f"{task}: {one.reason}")
        decision = decisions[task]
        colour = "green" if decision.promoted else "yellow"
        console.print(f"[{colour}]{task}: {decision.reason}[/]")
    return TrainOutcome(run.info.run_id, as_of, fitted, decisions, population)


def _population(population: dict[str, float], ms: models.ModelSettings) -> str:
    scored = "scored too" if ms.include_fragments else "not modelled"
    return (
        f"{population['people']:,} / {population['fragments']:,} "
        f"({population['fragment_order_share']:.0%} of orders, "
        f"{population['fragment_revenue_share']:.0%} of revenue, {scored}: "
        "models.include_fragments)"
    )


def _register(
    client: mlflow.MlflowClient,
    fitted: models.Fitted,
    *,
    settings: models.ModelSettings,
    as_of: date,
) -> models.Decision:
    """Log and register one task inside the open run; challenge the champion; promote."""
    task, result = fitted.task, fitted.result
    version = models.log_task(fitted, as_of=str(as_of))
    metric = models.metric_of(settings, task)
    decision = models.challenge(
        client,
        task=task,
        challenger_version=version,
        challenger_score=None if result is None else result.metrics[result.chosen][metric],
        test=fitted.test_rows,
        metric=metric,
        min_improvement=settings.min_improvement,
    )
    models.promote(client, decision)
    mlflow.log_dict(asdict(decision), f"{task}_promotion.json")
    mlflow.set_tag(f"{task}.promoted", str(decision.promoted).lower())
    return decision


def _sizes(result: models.TaskResult) -> str:
    return " / ".join(f"{result.sizes[k]:,}" for k in ("train_rows", "valid_rows", "test_rows"))


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
