"""The Feast objects of the repo, derived from the feature definitions.

One entity (`customer`, joined on `customer_id`), one source over the group's snapshot
Parquet file and one `FeatureView` per feature group, and the versioned feature services. They
are built by a function of the data folder because every test and deployment has its own;
`features/repo.py` calls it once with the embedded default so that the `feast` CLI sees
module-level objects. The source is the one difference between the offline stores: a
`FileSource` for DuckDB's, a `SparkSource` over the same file for Spark's (`engine: spark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_source import DataSource
from feast.protos.feast.core.DataSource_pb2 import DataSource as DataSourceProto
from feast.types import Bool, Float64, Int64, String

from features.definitions import GROUPS, SERVICES, expand
from features.settings import FeatureSettings

__all__ = ["FeastObjects", "OfflineStore", "build_objects", "feature_names", "offline_store_of"]

OfflineStore = Literal["duckdb", "spark"]
"""Feast's offline store that reads the snapshots: the embedded default, or Spark's."""

FEAST_TYPES = {"int": Int64, "float": Float64, "string": String, "bool": Bool}


@dataclass(frozen=True)
class FeastObjects:
    """Everything `feast apply` registers, by name."""

    customer: Entity
    sources: dict[str, DataSource]
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


def build_objects(
    *, feast_dir: Path, settings: FeatureSettings, offline: OfflineStore = "duckdb"
) -> FeastObjects:
    """The entity, sources, views and services reading snapshots from `feast_dir`, with
    the sources of the `offline` store."""
    customer = Entity(
        name="customer",
        join_keys=["customer_id"],
        value_type=ValueType.STRING,
        description="A resolved person (resolution's customer_id).",
    )
    sources, views = {}, {}
    for group in GROUPS.values():
        sources[group.name] = _source(
            offline,
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


def _source(offline: OfflineStore, **fields: str) -> DataSource:
    """A snapshot file as `offline` reads it (Spark's store takes only `SparkSource`s)."""
    if offline == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(file_format="parquet", **fields)
    return FileSource(**fields)


def offline_store_of(source: DataSource) -> OfflineStore:
    """The offline store a registered source was built for."""
    return "spark" if source.source_type() == DataSourceProto.BATCH_SPARK else "duckdb"
