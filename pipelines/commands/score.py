"""`cip score`: score every customer with the champions and append to `scores`.

Everyone with an order before the as-of date is scored, however long ago (recency
is a feature); fragments (no email, phone or user id) only with
`models.include_fragments`.

Features come point in time from Feast at the as-of date (default: the latest
order), so a past date backtests the platform: compare its scores with what
then happened. Reasons are computed for the top deciles only (settings
`models.reasons_min_decile`, `models.reasons_max_rows`); the API computes the
rest on demand.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import typer

import features
import models
import warehouse
from pipelines.commands.train import AsOf, clear_errors
from pipelines.config import Settings
from pipelines.console import console
from pipelines.console import stage as stage_report
from pipelines.tracking import tracking_uri

__all__ = ["ScoreOutcome", "command", "register", "score", "stage"]


@dataclass(frozen=True)
class ScoreOutcome:
    """What one scoring wrote."""

    scoring_id: str
    as_of: date
    rows: int
    versions: dict[str, str]
    seconds: dict[str, float]


def register(app: typer.Typer) -> None:
    app.command("score")(command)


def command(ctx: typer.Context, as_of: AsOf = None) -> None:
    """Score every customer with the champion models; keeps every earlier scoring."""
    with clear_errors():
        score(ctx.obj, as_of=as_of.date() if as_of else None)


def stage(settings: Settings) -> None:
    score(settings)


def score(settings: Settings, *, as_of: date | None = None) -> ScoreOutcome:
    """Score every customer with an order before `as_of` (default: the latest order) into
    `scores`: churn probability, LTV and expected orders, with deciles and reasons."""
    ms = settings.models
    with stage_report("score") as report:
        began = time.perf_counter()
        champions = models.load_champions(tracking_uri=tracking_uri(settings))
        con = warehouse.connect(settings.paths.warehouse)
        try:
            orders = models.orders_sql(include_fragments=ms.include_fragments)
            as_of = as_of or models.data_span(con, orders=orders)[1]
            cutoff = models.visible_until(as_of)
            with console.status("features at the as-of date (Feast, point in time)"):
                store = features.open_store(
                    feast_dir=settings.paths.feast, settings=settings.features
                )
                services = dict.fromkeys(m.feature_service for m in champions.models)
                examples = models.examples_with_features(
                    con,
                    store=store,
                    feast_dir=settings.paths.feast,
                    feature_settings=settings.features,
                    services=list(services),
                    cutoffs=[cutoff],
                    horizon_days=champions.ltv.horizon_days,
                    settings=ms,
                    with_labels=False,
                    orders=orders,
                    label_free=False,
                )
                population = models.population_counts(con, before=cutoff)
            loaded = time.perf_counter()
            with console.status(f"scoring {len(examples.frame):,} customers"):
                scores = champions.score(
                    examples.frame,
                    reasons=ms.top_reasons,
                    reasons_min_decile=ms.reasons_min_decile,
                    reasons_max_rows=ms.reasons_max_rows,
                )
                scores.insert(0, "customer_id", examples.frame["customer_id"].to_numpy())
                scored = time.perf_counter()
                scoring_id = uuid.uuid4().hex[:12]
                rows = models.append_scores(
                    con,
                    scores,
                    scoring_id=scoring_id,
                    versions=champions.versions,
                    feature_service="+".join(services),
                    as_of=cutoff,
                    scored_at=datetime.now(UTC).replace(tzinfo=None),
                )
        finally:
            con.close()
        seconds = {
            "models and features": loaded - began,
            "scoring and reasons": scored - loaded,
            "writing": time.perf_counter() - scored,
        }
        report.add("as of", f"{as_of} (data before {cutoff:%Y-%m-%d %H:%M} UTC)")
        report.add("customers scored", rows)
        if not ms.include_fragments:
            report.add("fragments not scored (models.include_fragments)", population["fragments"])
        report.add("with churn reasons", int(scores["churn_reasons"].notna().sum()))
        report.add("models", ", ".join(f"{k} v{v}" for k, v in champions.versions.items()))
        report.add("scoring id", scoring_id)
        for step, took in seconds.items():
            report.add(step, f"{took:.1f} s")
    return ScoreOutcome(scoring_id, as_of, rows, champions.versions, seconds)
