"""The Feast objects of the repo, derived from the feature definitions.

One entity (`customer`, joined on `customer_id`), one parquet `FileSource` and one
`FeatureView` per feature group, and the versioned feature services. They are built by a
function of the data folder because every test and deployment has its own; `features/repo.py`
calls it once with the embedded default so that the `feast` CLI sees module-level objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Bool, Float64, Int64, String

from features.definitions import GROUPS, SERVICES, expand
from features.settings import FeatureSettings

__all__ = ["FeastObjects", "build_objects", "feature_names"]

FEAST_TYPES = {"int": Int64, "float": Float64, "string": String, "bool": Bool}


@dataclass(frozen=True)
class FeastObjects:
    """Everything `feast apply` registers, by name."""

    customer: Entity
    sources: dict[str, FileSource]
    views: dict[str, FeatureView]
    services: dict[str, FeatureService]

    def all(self) -> list[object]:
        return [
            self.customer,
            *self.sources.values(),
            *self.views.values(),
            *self.services.values(),
        ]


def feature_names(*, service: str = "churn_v1", settings: FeatureSettings) -> list[str]:
    """The features a service returns, in order (columns of `training_set`)."""
    if service not in SERVICES:
        raise KeyError(f"unknown feature service {service!r}; services are {sorted(SERVICES)}")
    return [f.name for group in SERVICES[service] for f in expand(GROUPS[group], settings.windows)]


def build_objects(*, feast_dir: Path, settings: FeatureSettings) -> FeastObjects:
    """The entity, sources, views and services reading snapshots from `feast_dir`."""
    customer = Entity(
        name="customer",
        join_keys=["customer_id"],
        value_type=ValueType.STRING,
        description="A resolved person (resolution's customer_id).",
    )
    sources, views = {}, {}
    for group in GROUPS.values():
        sources[group.name] = FileSource(
            name=group.table,
            path=str(feast_dir.resolve() / f"{group.table}.parquet"),
            timestamp_field="event_timestamp",
            description=f"Dated snapshots of the {group.name} features (cip features).",
        )
        views[group.name] = FeatureView(
            name=group.table,
            entities=[customer],
            ttl=timedelta(days=settings.ttl_days),
            schema=[
                Field(name=f.name, dtype=FEAST_TYPES[f.dtype], description=f.description)
                for f in expand(group, settings.windows)
            ],
            source=sources[group.name],
            online=True,
            tags={"group": group.name},
        )
    services = {
        name: FeatureService(name=name, features=[views[g] for g in groups])
        for name, groups in SERVICES.items()
    }
    return FeastObjects(customer=customer, sources=sources, views=views, services=services)
