"""The score flow: every customer scored by the champions into the append-only `scores`.

Everyone with an order before the as-of date is scored, however long ago (recency
is a feature); fragments (no email, phone or user id) only with
`models.include_fragments`. Features come point in time from Feast at the as-of date
(default: the latest order), so a past date backtests the platform. Reasons are
computed for the top deciles only (`models.reasons_min_decile`,
`models.reasons_max_rows`); the API computes the rest on demand.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import features
import models
import warehouse
from pipelines.config import Settings
from pipelines.engines import engine_for
from pipelines.flows.progress import Progress, silent
from pipelines.tracking import tracking_uri

__all__ = ["ScoreOutcome", "run"]


@dataclass(frozen=True)
class ScoreOutcome:
    """What one scoring wrote."""

    scoring_id: str
    as_of: date
    cutoff: datetime
    rows: int
    with_reasons: int
    fragments_not_scored: int | None
    versions: dict[str, str]
    seconds: dict[str, float]

    @property
    def figures(self) -> dict[str, object]:
        figures: dict[str, object] = {
            "as of": f"{self.as_of} (data before {self.cutoff:%Y-%m-%d %H:%M} UTC)",
            "customers scored": self.rows,
        }
        if self.fragments_not_scored is not None:
            figures["fragments not scored (models.include_fragments)"] = self.fragments_not_scored
        figures |= {
            "with churn reasons": self.with_reasons,
            "models": ", ".join(f"{k} v{v}" for k, v in self.versions.items()),
            "scoring id": self.scoring_id,
        }
        return figures | {step: f"{took:.1f} s" for step, took in self.seconds.items()}


def run(
    settings: Settings, *, as_of: date | None = None, progress: Progress = silent
) -> ScoreOutcome:
    """Score every customer with an order before `as_of` (default: the latest order) into
    `scores`: churn probability, LTV and expected orders, with deciles and reasons."""
    ms = settings.models
    began = time.perf_counter()
    progress("loading the champions", done=0, total=3)
    champions = models.load_champions(tracking_uri=tracking_uri(settings))
    engine = engine_for(settings)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        orders = models.orders_sql(include_fragments=ms.include_fragments)
        as_of = as_of or models.data_span(con, orders=orders)[1]
        cutoff = models.visible_until(as_of)
        progress("features at the as-of date (Feast, point in time)", done=1, total=3)
        store = features.open_store(
            feast_dir=settings.paths.feast, settings=settings.features, engine=engine
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
        progress(f"scoring {len(examples.frame):,} customers", done=2, total=3)
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
        progress("scored", done=3, total=3)
    finally:
        con.close()
        if engine is not None:
            engine.cleanup()  # the training sets Spark staged in the lake
    return ScoreOutcome(
        scoring_id=scoring_id,
        as_of=as_of,
        cutoff=cutoff,
        rows=rows,
        with_reasons=int(scores["churn_reasons"].notna().sum()),
        fragments_not_scored=None if ms.include_fragments else population["fragments"],
        versions=champions.versions,
        seconds={
            "models and features": loaded - began,
            "scoring and reasons": scored - loaded,
            "writing": time.perf_counter() - scored,
        },
    )
