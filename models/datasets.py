"""Point-in-time example frames: labels from the orders, features from a Feast service.

For a list of cutoffs, `examples_with_features` builds the population and labels
(`models.labels.build_examples`), makes sure the feature snapshots exist at
exactly those cutoffs (`features.build_snapshots`, which only sees data strictly
before each one), joins the service's features point in time through Feast, and
fits the label-free model (`models.btyd`) at each cutoff on that cutoff's own
customers, adding its outputs for the horizon (`BTYD_OUTPUTS`) as columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from features import FeatureSettings, build_snapshots, service_features, training_set
from models.btyd import BTYD_INPUTS, BTYD_OUTPUTS, BTYDModel
from models.labels import ORDERS_SQL, CutoffPlan, build_examples
from models.settings import ModelSettings
from models.training import numeric_features

if TYPE_CHECKING:
    from feast import FeatureStore  # imported by `features`, after its typeguard switch

__all__ = ["ExampleSet", "examples_with_features"]


@dataclass(frozen=True)
class ExampleSet:
    """Examples with features, the numeric features the models use, and those dropped
    (not numeric: LightGBM and the float-matrix scorer take numbers only)."""

    frame: pd.DataFrame
    feature_names: list[str]
    dropped: list[str]
    services: tuple[str, ...]
    btyd: dict[pd.Timestamp, BTYDModel]
    btyd_failures: dict[pd.Timestamp, str]

    @property
    def model_features(self) -> list[str]:
        """What the supervised models read: the services' features and the BTYD outputs."""
        return [*self.feature_names, *BTYD_OUTPUTS]

    def at(self, cutoff: datetime) -> pd.DataFrame:
        """The rows of one cutoff."""
        return self.frame[self.frame["cutoff"] == pd.Timestamp(cutoff)]

    def split(self, plan: CutoffPlan) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(train, valid, test) rows of the plan's cutoffs (and customers, `by_customer`)."""
        cutoff = self.frame["cutoff"]
        if plan.by_customer:
            bucket = pd.util.hash_pandas_object(self.frame["customer_id"], index=False) % 5
            at_train = cutoff.isin(pd.to_datetime(list(plan.train)))
            return (
                self.frame[at_train & (bucket < 3)],
                self.frame[at_train & (bucket == 3)],
                self.frame[(cutoff == pd.Timestamp(plan.test)) & (bucket == 4)],
            )
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
    label_free: bool = True,
    build: bool = True,
    fitted: dict[pd.Timestamp, BTYDModel] | None = None,
) -> ExampleSet:
    """Customers at each cutoff with their labels, the services' features then, and the
    label-free model's outputs for `horizon_days` (fitted per cutoff).

    Snapshots at the cutoffs are built unless fresh (`features.fresh_dates`); `build=False`
    uses snapshots already built at those cutoffs; `fitted` holds label-free
    models already fitted at some cutoffs (on the same orders), and receives the new ones.
    """
    examples = build_examples(
        con,
        cutoffs=cutoffs,
        horizon_days=horizon_days,
        min_orders=settings.min_orders,
        orders=orders,
        with_labels=with_labels,
    )
    if build:
        build_snapshots(
            con, as_of=list(cutoffs), feast_dir=feast_dir, settings=feature_settings, reuse=True
        )
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
    missing = [n for n in BTYD_INPUTS if n not in kept]
    if missing:
        raise ValueError(f"feature services {list(services)} lack the order features {missing}")
    fitted = {} if fitted is None else fitted
    failures, outputs = {}, []
    for cutoff, rows in frame.groupby("cutoff", sort=True) if label_free else ():
        try:
            if cutoff not in fitted:
                model = BTYDModel(fit_sample=settings.btyd_fit_sample, seed=settings.seed)
                fitted[cutoff] = model.fit(rows)
            outputs.append(fitted[cutoff].outputs(rows, horizon_days=horizon_days))
        except ValueError as error:
            failures[cutoff] = str(error)
            outputs.append(pd.DataFrame(index=rows.index, columns=list(BTYD_OUTPUTS), dtype=float))
    if outputs:
        frame = frame.join(pd.concat(outputs).reindex(frame.index))
    return ExampleSet(
        frame=frame,
        feature_names=kept,
        dropped=dropped,
        services=tuple(services),
        btyd={c: fitted[c] for c in frame["cutoff"].unique() if c in fitted},
        btyd_failures=failures,
    )
