"""Champion versus challenger: the promotion rule, promotion itself, and rollback.

A challenger becomes champion only when it beats the current champion on the
same held-out cutoff: the champion is loaded from the registry and scored on
the challenger's test rows with the same metric. A champion whose own held-out
cutoff was that one was refit on those very rows, so there its score is the one
it had before the refit (`HELD_OUT_TAG`), not a score on rows it learned from.
A label-free challenger fitted on a history too young for held-out labels
replaces no supervised champion, only a label-free one (it saw more of the
history). Every promotion records the version it replaced, so rolling back is
one call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd
from mlflow import MlflowClient

from models.champions import load_champion
from models.metrics import better
from models.registry import CHAMPION, HELD_OUT_TAG, champion_version
from models.training import TASKS, task_metrics

__all__ = ["Decision", "challenge", "decide", "promote", "rollback"]


@dataclass(frozen=True)
class Decision:
    """Which model won on the held-out cutoff, and why."""

    task: str
    metric: str
    challenger_version: str
    challenger_score: float
    champion_version: str | None
    champion_score: float | None
    promoted: bool
    reason: str


def decide(
    *,
    task: str,
    metric: str,
    challenger_version: str,
    challenger_score: float,
    champion_version: str | None,
    champion_score: float | None,
    min_improvement: float = 0.0,
) -> Decision:
    """The rule: the challenger wins only by beating the champion's score by more than
    `min_improvement` on the same held-out cutoff, or when there is no champion to beat."""
    if champion_version is None or champion_score is None:
        why = (
            "no champion yet"
            if champion_version is None
            else f"champion v{champion_version} cannot read this feature set"
        )
        promoted = True
        reason = f"{why}: v{challenger_version} ({metric} {challenger_score:.4f}) becomes champion"
    else:
        margin = better(metric, challenger_score, champion_score)
        promoted = margin > min_improvement
        verdict = "beats" if promoted else "does not beat"
        reason = (
            f"v{challenger_version} {verdict} champion v{champion_version} on the held-out "
            f"cutoff: {metric} {challenger_score:.4f} vs {champion_score:.4f} "
            f"({margin:+.4f}, needs > {min_improvement:+.4f})"
        )
    return Decision(
        task=task,
        metric=metric,
        challenger_version=challenger_version,
        challenger_score=challenger_score,
        champion_version=champion_version,
        champion_score=champion_score,
        promoted=promoted,
        reason=reason,
    )


def challenge(
    client: MlflowClient,
    *,
    task: str,
    challenger_version: str,
    challenger_score: float | None,
    test: pd.DataFrame | None,
    metric: str,
    min_improvement: float = 0.0,
) -> Decision:
    """Score the current champion on the challenger's held-out rows (`cutoff`, labels,
    features) and apply `decide`.

    Without held-out rows (`test` None: a label-free challenger on a young history) the
    challenger replaces no champion but a label-free one."""
    current = champion_version(client, task)
    if test is None or challenger_score is None:
        return _label_free_challenge(client, task, challenger_version, current)
    champion_score = None
    if current is not None and current != challenger_version:
        recorded = _held_out(client, task, current)
        cutoff = f"{pd.Timestamp(test['cutoff'].max()):%Y-%m-%d}"
        if recorded.get("cutoff") == cutoff and metric in recorded:
            champion_score = float(recorded[metric])
        else:
            champion = load_champion(client, task=task, version=current)
            if set(champion.feature_names) <= set(test.columns):
                predicted = champion.predict_frame(test)
                labels = test[TASKS[task]].to_numpy(dtype=float)
                champion_score = task_metrics(task, labels, predicted)[metric]
    return decide(
        task=task,
        metric=metric,
        challenger_version=challenger_version,
        challenger_score=challenger_score,
        champion_version=current,
        champion_score=champion_score,
        min_improvement=min_improvement,
    )


def _held_out(client: MlflowClient, task: str, version: str) -> dict[str, object]:
    """What `version` recorded of its held-out cutoff before its refit (empty if nothing)."""
    tag = client.get_model_version(task, version).tags.get(HELD_OUT_TAG)
    return json.loads(tag) if tag else {}


def _label_free_challenge(
    client: MlflowClient, task: str, version: str, current: str | None
) -> Decision:
    kind = None if current is None else client.get_model_version(task, current).tags.get("kind")
    promoted = current is None or kind == "btyd"
    if current is None:
        reason = f"no champion yet: label-free v{version} becomes champion (no held-out labels)"
    elif promoted:
        reason = f"label-free v{version} replaces label-free v{current}, fitted on less history"
    else:
        reason = (
            f"label-free v{version} keeps supervised champion v{current}: without held-out "
            "labels in this history the two cannot be compared"
        )
    return Decision(
        task=task,
        metric="none",
        challenger_version=version,
        challenger_score=float("nan"),
        champion_version=current,
        champion_score=None,
        promoted=promoted,
        reason=reason,
    )


def promote(client: MlflowClient, decision: Decision) -> None:
    """Record the decision on the challenger version; move the alias if it won."""
    task, version = decision.task, decision.challenger_version
    client.set_model_version_tag(task, version, "promotion", json.dumps(asdict(decision)))
    if decision.promoted:
        if decision.champion_version is not None:
            client.set_model_version_tag(task, version, "replaced", decision.champion_version)
        client.set_registered_model_alias(task, CHAMPION, version)


def rollback(client: MlflowClient, *, task: str, to_version: str | None = None) -> tuple[str, str]:
    """Point `champion` back at the version it replaced (or at `to_version`); returns (from, to)."""
    current = champion_version(client, task)
    if current is None:
        raise ValueError(f"model {task!r} has no champion to roll back")
    if to_version is None:
        to_version = client.get_model_version(task, current).tags.get("replaced")
        if to_version is None:
            raise ValueError(
                f"{task} v{current} replaced no earlier champion; name a version to roll back to"
            )
    client.get_model_version(task, to_version)  # raises when that version does not exist
    client.set_model_version_tag(task, current, "rolled_back_to", to_version)
    client.set_registered_model_alias(task, CHAMPION, to_version)
    return current, to_version
