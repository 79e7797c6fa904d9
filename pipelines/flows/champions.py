"""The registered models by hand: every version and which is champion, a forced
promotion, a rollback (`cip models ...`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import lazy_loader

import models
from pipelines.config import Settings
from pipelines.tracking import tracking_uri

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = ["ModelVersion", "promote", "roll_back", "versions"]


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: when it came, whether it is champion, why it was promoted."""

    task: str
    version: str
    champion: bool
    created: datetime
    promotion: str


def _client(settings: Settings, task: str | None = None) -> mlflow.MlflowClient:
    if task is not None and task not in models.TASKS:
        raise ValueError(f"unknown model {task!r}; models are {', '.join(models.TASKS)}")
    uri = tracking_uri(settings)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def versions(settings: Settings) -> list[ModelVersion]:
    """Every registered version of every task, oldest first."""
    client = _client(settings)
    found = []
    for task in models.TASKS:
        champion = models.champion_version(client, task)
        registered = client.search_model_versions(f"name = '{task}'")
        for v in sorted(registered, key=lambda v: int(v.version)):
            found.append(
                ModelVersion(
                    task=task,
                    version=str(v.version),
                    champion=str(v.version) == champion,
                    created=datetime.fromtimestamp(v.creation_timestamp / 1000),
                    promotion=_promotion_note(v.tags),
                )
            )
    return found


def _promotion_note(tags: dict[str, str]) -> str:
    if "rolled_back_to" in tags:
        return f"rolled back to v{tags['rolled_back_to']}"
    return json.loads(tags["promotion"])["reason"] if "promotion" in tags else ""


def promote(settings: Settings, *, task: str, version: str) -> str:
    """Make `version` champion without the held-out comparison (recorded as a manual
    promotion); the reason recorded."""
    client = _client(settings, task)
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
    return reason


def roll_back(settings: Settings, *, task: str, to: str | None = None) -> tuple[str, str]:
    """Point the champion back at the version the current one replaced (or at `to`);
    (version before, version after). ValueError when there is nothing to roll back to."""
    return models.rollback(_client(settings, task), task=task, to_version=to)
