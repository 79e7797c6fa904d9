"""The Feast feature store of a data folder: open, apply, point-in-time training sets, materialize.

`features/feature_store.yaml` holds the infrastructure; `repo_config` reads it and points the
registry, the SQLite online store (or Redis, by setting) and the sources at the data folder
given, so that every test and deployment has its own store while `feast -c features ...`
keeps working on the embedded default. With a Spark engine (`engine: spark`) the offline
store is Feast's Spark store on the engine's session: training sets and materialization read
the same snapshot files through Spark; the online store is the same either way.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from feast import FeatureStore, RepoConfig

from features.objects import OfflineStore, build_objects, offline_store_of
from features.settings import FeatureSettings
from features.snapshots import FeatureInputError
from warehouse.engine import Engine

__all__ = [
    "REPO_DIR",
    "Freshness",
    "apply_repo",
    "freshness",
    "materialize",
    "open_store",
    "registered_offline",
    "repo_config",
    "service_features",
    "training_set",
]

REPO_DIR = Path(__file__).resolve().parent
_ROW = "__cip_row"


def repo_config(
    *, feast_dir: Path, settings: FeatureSettings, engine: Engine | None = None
) -> RepoConfig:
    """The repo's `feature_store.yaml` with its stores moved into `feast_dir`, and Spark's
    offline store for a Spark `engine`."""
    raw = yaml.safe_load((REPO_DIR / "feature_store.yaml").read_text())
    feast_dir = feast_dir.resolve()
    raw["project"] = settings.project
    raw["registry"]["path"] = str(feast_dir / "registry.db")
    if settings.online_store == "redis":
        raw["online_store"] = {
            "type": "redis",
            "connection_string": settings.redis_connection_string,
        }
    else:
        raw["online_store"] = {"type": "sqlite", "path": str(feast_dir / "online.db")}
    if engine is not None and engine.name == "spark":
        raw["offline_store"] = {"type": "spark", "staging_location": _staging(engine)}
    return RepoConfig(repo_path=REPO_DIR, **raw)


def _staging(engine: Engine) -> str | None:
    """Where Feast's Spark store writes a result for this process to read as Parquet (the
    engine's scratch space in a local lake, removed by its `cleanup`) rather than collect it
    through the driver; None (collected) for an object-store lake."""
    folder = engine.path(engine.scratch("feast"))  # type: ignore[attr-defined]  # SparkEngine
    return folder if folder.startswith("/") else None


def open_store(
    *, feast_dir: Path, settings: FeatureSettings, engine: Engine | None = None
) -> FeatureStore:
    """The feature store whose registry, online store and sources live in `feast_dir`.

    With a Spark `engine`, its session starts here (or is already running): Feast's Spark
    offline store takes the active session, so it runs on ours (`spark.*` settings, clear
    errors) rather than on a default one of its own.
    """
    if engine is not None and engine.name == "spark":
        engine.session()  # type: ignore[attr-defined]  # SparkEngine
    feast_dir.mkdir(parents=True, exist_ok=True)
    config = repo_config(feast_dir=feast_dir, settings=settings, engine=engine)
    return FeatureStore(repo_path=str(REPO_DIR), config=config)


def apply_repo(
    store: FeatureStore,
    *,
    feast_dir: Path,
    settings: FeatureSettings,
    offline: OfflineStore | None = None,
) -> list[str]:
    """Register the entity, sources, views and services (like `feast apply`), removing views
    and services no longer defined; returns the names of the feature views. The sources are
    those of `offline` (default: the store's offline store)."""
    offline = offline or _offline(store)
    objects = build_objects(feast_dir=feast_dir, settings=settings, offline=offline)
    view_names = {v.name for v in objects.views.values()}
    stale = [v for v in store.list_feature_views() if v.name not in view_names] + [
        s for s in store.list_feature_services() if s.name not in objects.services
    ]
    store.apply(objects.all(), objects_to_delete=stale, partial=not stale)
    return sorted(view_names)


def training_set(
    store: FeatureStore, *, entity_df: pd.DataFrame, service: str = "churn_v1"
) -> pd.DataFrame:
    """Features of `service` as known at each row's `event_timestamp`, point in time.

    `entity_df` needs `customer_id` and `event_timestamp` (naive means UTC); other columns
    (labels) pass through. Rows come back in the input order, one per input row; a customer
    without a snapshot at or before the timestamp (within the TTL) gets nulls.
    """
    missing = {"customer_id", "event_timestamp"} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df lacks column(s) {sorted(missing)}")
    timestamps = pd.to_datetime(entity_df["event_timestamp"], utc=True)
    for column, values in (
        ("customer_id", entity_df["customer_id"]),
        ("event_timestamp", timestamps),
    ):
        if values.isna().any():
            raise ValueError(f"entity_df has {int(values.isna().sum())} null {column}(s)")
    names = service_features(store, service)
    _check_sources(store, service)
    if entity_df.empty:
        return entity_df.assign(**{name: pd.Series(dtype=object) for name in names})
    frame = pd.DataFrame(
        {
            "customer_id": entity_df["customer_id"].astype(str).to_numpy(),
            "event_timestamp": timestamps.reset_index(drop=True),
            _ROW: np.arange(len(entity_df)),
        }
    )
    with _entity_input(store, frame) as entities:
        job = store.get_historical_features(
            entity_df=entities, features=store.get_feature_service(service)
        )
        found = job.to_df().sort_values(_ROW)
    if len(found) != len(entity_df):
        raise RuntimeError(f"Feast returned {len(found)} rows for {len(entity_df)} entity rows")
    features = found[names].reset_index(drop=True)
    features.index = entity_df.index
    return pd.concat([entity_df, features], axis=1)


@contextlib.contextmanager
def _entity_input(store: FeatureStore, frame: pd.DataFrame) -> Iterator[Any]:
    """The entity rows as the offline store takes them: Spark's reads them from Parquet in
    its staging folder, timestamps as naive UTC like the snapshots' (given as pandas, they
    would become a local relation in the driver's plans, copied by its optimizer: out of
    memory at training-set sizes)."""
    staging = getattr(store.config.offline_store, "staging_location", None)
    if _offline(store) != "spark" or staging is None:
        yield frame
        return
    from pyspark.sql import SparkSession

    folder = Path(staging) / f"entities-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    naive = frame.assign(event_timestamp=frame["event_timestamp"].dt.tz_convert(None))
    naive.to_parquet(folder / "part-0.parquet", index=False, coerce_timestamps="us")
    try:
        yield SparkSession.builder.getOrCreate().read.parquet(str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _offline(store: FeatureStore) -> OfflineStore:
    return "spark" if store.config.offline_store.type == "spark" else "duckdb"


def registered_offline(store: FeatureStore) -> OfflineStore | None:
    """The offline store whose sources the registry holds (None before `apply_repo`)."""
    views = store.list_feature_views()
    return offline_store_of(views[0].batch_source) if views else None


def _check_sources(store: FeatureStore, service: str) -> None:
    """Refuse, saying what to run, a service whose sources another offline store registered
    (the repo was applied with the other engine)."""
    offline = _offline(store)
    for view in store.get_feature_service(service).feature_view_projections:
        registered = offline_store_of(store.get_feature_view(view.name).batch_source)
        if registered != offline:
            raise FeatureInputError(
                f"the Feast repo in {Path(store.config.registry.path).parent} was applied "
                f"with engine: {registered} and this run has engine: {offline}; run "
                "`cip features` with this engine, or set engine (CIP_ENGINE) back"
            )


def service_features(store: FeatureStore, service: str = "churn_v1") -> list[str]:
    """The features a registered service returns, in order."""
    registered = store.get_feature_service(service)
    return [f.name for view in registered.feature_view_projections for f in view.features]


@dataclass(frozen=True)
class Freshness:
    """How fresh a feature view is online: data up to `until`, materialized at `at` (UTC)."""

    view: str
    until: datetime | None
    at: datetime | None


def freshness(store: FeatureStore) -> list[Freshness]:
    """Per feature view, the end of the last materialized interval and when it ran."""
    out = []
    for view in sorted(store.list_feature_views(), key=lambda v: v.name):
        ends = [end for _, end in view.materialization_intervals]
        out.append(
            Freshness(
                view=view.name,
                until=max(ends) if ends else None,
                at=_utc(view.last_updated_timestamp) if ends else None,
            )
        )
    return out


def materialize(
    store: FeatureStore, *, until: datetime, incremental: bool = False
) -> list[Freshness]:
    """Load each customer's latest snapshot up to `until` into the online store.

    Full: everything before `until`. Incremental: only what is newer than each view's last
    materialization (views never materialized are loaded in full). Returns the freshness.
    """
    end = _utc(until) + timedelta(seconds=1)
    done = {f.view: f.until for f in freshness(store)}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    starts: dict[datetime, list[str]] = {}
    for view, last in done.items():
        start = _utc(last) if incremental and last is not None else epoch
        if start < end:
            starts.setdefault(start, []).append(view)
    for start, views in starts.items():
        store.materialize(start_date=start, end_date=end, feature_views=views)
    return freshness(store)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
