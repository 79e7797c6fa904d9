"""Behavioural features: dated snapshots in DuckDB SQL, served point in time and online by Feast.

Typical use (paths and settings come from `pipelines.config.Settings`):

    dates = default_schedule(con, settings=fs)
    report = build_snapshots(con, as_of=dates, feast_dir=d, settings=fs)
    store = open_store(feast_dir=d, settings=fs)
    apply_repo(store, feast_dir=d, settings=fs)
    frame = training_set(store, entity_df=entities, service="churn_v1")
    materialize(store, until=max(snapshot_dates(con)))
    OnlineFeatures(store, service="churn_v1").get("c-123")
"""

from features.definitions import GROUPS, SERVICES
from features.objects import build_objects, feature_names
from features.online import OnlineFeatures
from features.settings import FeatureSettings
from features.snapshots import (
    FeatureInputError,
    SnapshotReport,
    build_snapshots,
    default_schedule,
    snapshot_dates,
)
from features.store import (
    Freshness,
    apply_repo,
    freshness,
    materialize,
    open_store,
    service_features,
    training_set,
)

__all__ = [
    "GROUPS",
    "SERVICES",
    "FeatureInputError",
    "FeatureSettings",
    "Freshness",
    "OnlineFeatures",
    "SnapshotReport",
    "apply_repo",
    "build_objects",
    "build_snapshots",
    "default_schedule",
    "feature_names",
    "freshness",
    "materialize",
    "open_store",
    "service_features",
    "snapshot_dates",
    "training_set",
]
