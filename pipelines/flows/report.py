"""The marketers' report flow: the HTML page in the exports folder, with the churn model's
lift measured on realised outcomes, or else read from the champion's MLflow run, and the
journeys' funnels and lift once the runner has run."""

from __future__ import annotations

from pathlib import Path

import lazy_loader

import models
import segments
import warehouse
from pipelines.config import Settings
from pipelines.flows.segments import definitions
from pipelines.tracking import tracking_uri
from segments import journeys as jn

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = ["champion_lift", "write"]

CAPTURE = "top_decile_capture"
"""The held-out metric the report states the lift with."""


def write(settings: Settings) -> Path:
    """Write the report (`segments.report_file` in the exports folder); its path."""
    exports = settings.paths.exports
    journeys = _journeys(settings)
    with warehouse.connect(settings.paths.warehouse) as con:
        lift = segments.realised_lift(con, horizon_days=settings.models.churn_horizon_days)
        downloads = {
            segment: path.resolve().relative_to(exports.resolve()).as_posix()
            for segment, path in segments.latest_exports(con).items()
            if path.resolve().is_relative_to(exports.resolve())  # not a copied folder's
        }
        return segments.write_report(
            con,
            path=exports / settings.segments.report_file,
            definitions=definitions(settings),
            downloads=downloads,
            lift=lift or champion_lift(settings),
            value_lift=champion_lift(settings, task="ltv"),
            journeys=journeys,
        )


def _journeys(settings: Settings) -> list[jn.Journey]:
    """The journeys whose funnels the report shows (none while their files are broken:
    `cip journeys validate` says why)."""
    config = settings.segments.journeys
    folders = [jn.EXAMPLES_DIR] if config.include_examples else []
    try:
        return jn.load_journeys(folders=[*folders, *config.definition_dirs])
    except jn.JourneyError:
        return []


def champion_lift(settings: Settings, *, task: str = "churn") -> segments.Lift | None:
    """The `task` champion's held-out top-decile capture (`churn` or `ltv`), from its MLflow
    run, with what a perfect model would reach (churn: from the base rate; value: its
    ranking against a perfect one); None when there is no champion or it was chosen without
    a held-out test."""
    if not settings.models.tracking_uri and not (settings.paths.mlflow / "mlflow.db").exists():
        return None
    uri = tracking_uri(settings)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = models.champion_version(client, task)
    if version is None:
        return None
    registered = client.get_model_version(task, version)
    run = client.get_run(registered.run_id)
    kind = registered.tags.get("kind", "lightgbm")  # the model the champion is
    metrics = run.data.metrics
    capture = metrics.get(models.metric_name(task, kind, CAPTURE))
    if capture is None:
        return None
    params = run.data.params
    test_cutoff = params.get(models.param_name(task, "test_cutoff"), "the test cutoff")
    default = getattr(settings.models, f"{task}_horizon_days")
    horizon = params.get(models.param_name(task, "horizon_days"), default)
    if task == "ltv":
        basis = (
            f"From the value model's held-out test (model version {version}: what customers "
            f"active on {test_cutoff} spent in the {horizon} days after)."
        )
        ranking = metrics.get(models.metric_name(task, kind, "normalized_gini"))
        return segments.Lift(capture=capture, basis=basis, task=task, ranking=ranking)
    basis = (
        f"From the churn model's held-out test (model version {version}: customers active on "
        f"{test_cutoff}, and who of them bought nothing in the {horizon} days after). No scoring "
        "of ours is older than the churn horizon yet, so it cannot be measured on our own scores."
    )
    base_rate = metrics.get(models.metric_name(task, kind, "base_rate"))
    best = min(1.0, 0.1 / base_rate) if base_rate else None
    return segments.Lift(capture=capture, basis=basis, best=best)
