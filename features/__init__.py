"""Behavioural features: dated snapshots in DuckDB SQL, served point in time and online by Feast.

Typical use (paths and settings come from `pipelines.config.Settings`):

    dates = default_schedule(con, settings=fs)
    report = build_snapshots(con, as_of=dates, feast_dir=d, settings=fs)
    store = open_store(feast_dir=d, settings=fs)
    apply_repo(store, feast_dir=d, settings=fs)
    frame = training_set(store, entity_df=entities, service="churn_v1")
    materialize(store, until=max(snapshot_dates(con)))
    OnlineFeatures(store, service="churn_v1").get("c-123")

Names are imported on first use, so that reading the settings (which every
command does) does not load Feast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GROUPS": "features.definitions",
    "SERVICES": "features.definitions",
    "build_objects": "features.objects",
    "feature_names": "features.objects",
    "OnlineFeatures": "features.online",
    "FeatureSettings": "features.settings",
    "FeatureInputError": "features.snapshots",
    "SnapshotReport": "features.snapshots",
    "build_snapshots": "features.snapshots",
    "default_schedule": "features.snapshots",
    "snapshot_dates": "features.snapshots",
    "Freshness": "features.store",
    "apply_repo": "features.store",
    "freshness": "features.store",
    "materialize": "features.store",
    "open_store": "features.store",
    "service_features": "features.store",
    "training_set": "features.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'features' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
