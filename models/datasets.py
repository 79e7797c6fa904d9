"""Point-in-time example frames: labels from the orders, features from a Feast service.

For a list of cutoffs, `examples_with_features` builds the population and labels
(`models.labels.build_examples`), makes sure the feature snapshots exist at
exactly those cutoffs (`features.build_snapshots`, which only sees data strictly
before each one) and joins the service's features point in time through Feast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
from feast import FeatureStore

from features import FeatureSettings, build_snapshots, service_features, training_set
from models.labels import ORDERS_SQL, CutoffPlan, build_examples
from models.settings import ModelSettings
from models.training import numeric_features

__all__ = ["ExampleSet", "examples_with_features"]


@dataclass(frozen=True)
class ExampleSet:
    """Examples with features, the numeric features the models use, and those dropped
    (not numeric: LightGBM and the float-matrix scorer take numbers only)."""

    frame: pd.DataFrame
    feature_names: list[str]
    dropped: list[str]
    services: tuple[str, ...]

    def split(self, plan: CutoffPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(train, valid, test) rows of the plan's cutoffs."""
        cutoff = self.frame["cutoff"]
        return (
            self.frame[cutoff.isin(pd.to_datetime(list(plan.train)))],
            self.frame[cutoff == pd.Timestamp(plan.valid)],
            self.frame[cutoff == pd.Timestamp(plan.test)],
        )


def examples_with_features(
    con: duckdb.DuckDBPyConnection,
    *,
    store: FeatureStore,
    feast_dir: Path,
    feature_settings: FeatureSettings,
    services: list[str] | tuple[str, ...],
    cutoffs: list[datetime] | tuple[datetime, ...],
    horizon_days: int,
    settings: ModelSettings,
    with_labels: bool = True,
    orders: str = ORDERS_SQL,
) -> ExampleSet:
    """Active customers at each cutoff with their labels and the services' features then."""
    examples = build_examples(
        con,
        cutoffs=cutoffs,
        horizon_days=horizon_days,
        activity_days=settings.activity_days,
        min_orders=settings.min_orders,
        orders=orders,
        with_labels=with_labels,
    )
    build_snapshots(con, as_of=list(cutoffs), feast_dir=feast_dir, settings=feature_settings)
    frame = examples.rename(columns={"cutoff": "event_timestamp"})
    names: list[str] = []
    for service in services:
        new = [n for n in service_features(store, service) if n not in names]
        clash = sorted(set(new) & set(frame.columns))
        if clash:
            raise ValueError(f"feature service {service!r} reuses example column names {clash}")
        found = training_set(
            store, entity_df=frame[["customer_id", "event_timestamp"]], service=service
        )
        frame = pd.concat([frame, found[new]], axis=1)
        names += new
    frame = frame.rename(columns={"event_timestamp": "cutoff"})
    kept, dropped = numeric_features(frame, names)
    return ExampleSet(frame=frame, feature_names=kept, dropped=dropped, services=tuple(services))
