"""The train flow: fit every task, log one MLflow run, register, challenge, promote.

`models.fit_models` fits the churn, LTV and expected-orders models for any history
(LightGBM chosen only when it beats the label-free model on the held-out cutoff, else the
label-free model); this flow logs everything to one MLflow run (experiment `cip-models`),
registers the three models and promotes each one that beats its champion.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
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

__all__ = ["EXPERIMENT", "TrainOutcome", "run"]

EXPERIMENT = "cip-models"


@dataclass
class TrainOutcome:
    """What one training did: the MLflow run, each task's result and promotion decision."""

    run_id: str
    as_of: date
    fitted: dict[str, models.Fitted]
    decisions: dict[str, models.Decision]
    population: dict[str, float]
    include_fragments: bool = False

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {}
        for task, one in self.fitted.items():
            figures[f"{task} model"] = f"{one.model.kind} ({len(one.population):,} customers)"
            if one.plan is not None:
                figures[f"{task} cutoffs"] = one.plan.describe()
                sizes = one.result.sizes
                figures[f"{task} rows (train/valid/test)"] = " / ".join(
                    f"{sizes[k]:,}" for k in ("train_rows", "valid_rows", "test_rows")
                )
        population = self.population
        scored = "scored too" if self.include_fragments else "not modelled"
        figures["customers (people) / fragments"] = (
            f"{population['people']:,} / {population['fragments']:,} "
            f"({population['fragment_order_share']:.0%} of orders, "
            f"{population['fragment_revenue_share']:.0%} of revenue, {scored}: "
            "models.include_fragments)"
        )
        return figures | {"MLflow run": self.run_id}


def run(
    settings: Settings, *, as_of: date | None = None, progress: Progress = silent
) -> TrainOutcome:
    """Fit every task as of `as_of` (default: the latest order) in one MLflow run, register
    the models and promote those that beat their champions."""
    ms = settings.models
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # the outcome says what matters
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
        fitted = models.fit_models(
            con,
            store=store,
            feast_dir=settings.paths.feast,
            feature_settings=settings.features,
            settings=ms,
            as_of=as_of,
            on_step=lambda step: progress(step, done=trials),
            on_trial=on_trial,
        )
        progress("trained", done=trials)
        as_of = as_of or models.data_span(con, orders=models.orders_sql())[1]
        population = models.population_counts(con, before=models.visible_until(as_of))
    finally:
        con.close()
        if engine is not None:
            engine.cleanup()  # the training sets Spark staged in the lake
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
    return TrainOutcome(run.info.run_id, as_of, fitted, decisions, population, ms.include_fragments)


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
