"""Behavioural features: dated snapshots in DuckDB SQL, served point in time and online by Feast.

Typical use (paths and settings come from `pipelines.config.Settings`):

    dates = default_schedule(con, settings=fs)
    report = build_snapshots(con, as_of=dates, feast_dir=d, settings=fs)
    store = open_store(feast_dir=d, settings=fs)
    apply_repo(store, feast_dir=d, settings=fs)
    frame = training_set(store, entity_df=entities, service="churn_v1")
    materialize(store, until=max(snapshot_dates(con)))
    OnlineFeatures(store, service="churn_v1").get("c-123")

Names are imported on first use (lazy_loader), so that reading the settings
(which every command does) does not load Feast.
"""

import lazy_loader
import typeguard

# Feast is the only library here that uses typeguard: its `@typechecked` classes re-parse
# their modules' source at every import, about 6 s of CPU per process (half of `cip
# train`'s imports, measured in benchmarks/RESULTS.md). Its checks only catch callers'
# type errors, which our tests of the Feast repo do; so Feast imports unchecked.
typeguard.typechecked = lambda target=None, **_: target if target else (lambda t: t)

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "definitions": ["GROUPS", "SERVICES"],
        "objects": ["OfflineStore", "build_objects", "feature_names"],
        "online": ["OnlineFeatures", "OnlineRows"],
        "settings": ["FeatureSettings"],
        "snapshots": [
            "FeatureInputError",
            "SnapshotReport",
            "build_snapshots",
            "default_schedule",
            "fresh_dates",
            "snapshot_dates",
        ],
        "store": [
            "Freshness",
            "apply_repo",
            "freshness",
            "materialize",
            "open_store",
            "registered_offline",
            "service_features",
            "training_set",
        ],
    },
)
