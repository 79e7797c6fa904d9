"""MLflow set-up at the edge: every stage that logs runs calls `use_mlflow` first."""

from __future__ import annotations

import lazy_loader

from pipelines.config import Settings

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick


def tracking_uri(settings: Settings) -> str:
    """The configured tracking URI, or the embedded SQLite store in the data folder."""
    if settings.models.tracking_uri:
        return settings.models.tracking_uri
    folder = settings.paths.mlflow.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def use_mlflow(settings: Settings, experiment: str) -> str:
    """Point MLflow at the platform's store and select `experiment`; returns the URI."""
    uri = tracking_uri(settings)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = (settings.paths.mlflow / "artifacts" / experiment).resolve()
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment)
    return uri
