"""Online lookup of customers' feature vectors through Feast's online store API.

`OnlineFeatures` resolves the service's feature views once, then each lookup is one
`Provider.online_read` per view (one SQLite primary-key query per view with the embedded
default, whatever the number of customers), its values converted from Feast's protobuf
`Value`s: plain scalars (numbers, text, booleans, the bulk of every vector) straight from
the message, anything else by Feast's own type map. That is a fraction of what the general
`FeatureStore.get_online_features` spends on request building and validation. Keep one
instance per process; build a new one after `cip features` changes the repo's definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from feast import FeatureStore
from feast.infra.provider import get_provider
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type

__all__ = ["OnlineFeatures", "OnlineRows"]

# Value kinds read as they are; the rest (lists, timestamps, maps, JSON) through Feast.
_SCALARS = frozenset(
    ("int32_val", "int64_val", "float_val", "double_val", "string_val", "bool_val")
)


def _python(value: Value) -> object:
    kind = value.WhichOneof("val")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind is None or kind == "null_val":
        return None
    return feast_value_type_to_python_type(value)


@dataclass(frozen=True)
class OnlineRows:
    """Feature vectors of several customers, and when each was computed."""

    frame: pd.DataFrame
    """`customer_id`, then the service's features in order; nulls for a customer never
    materialized."""
    as_of: list[datetime | None]
    """Per customer, the oldest snapshot time among the views that have a row (UTC)."""


class OnlineFeatures:
    """Latest materialized features of one service, by `customer_id`."""

    def __init__(self, store: FeatureStore, *, service: str = "churn_v1") -> None:
        self.store = store
        self.service = service
        projections = store.get_feature_service(service).feature_view_projections
        self._views = [
            (store.get_feature_view(p.name), [f.name for f in p.features]) for p in projections
        ]
        self.names = [name for _, names in self._views for name in names]
        self._provider = get_provider(store.config)

    def _read(
        self, customer_ids: Sequence[str]
    ) -> tuple[list[dict[str, object]], list[datetime | None]]:
        keys = [
            EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=str(c))])
            for c in customer_ids
        ]
        rows: list[dict[str, object]] = [{} for _ in keys]
        stamps: list[datetime | None] = [None] * len(keys)
        for view, names in self._views:
            found = self._provider.online_read(
                config=self.store.config, table=view, entity_keys=keys, requested_features=names
            )
            for i, (stamp, values) in enumerate(found):
                row, values = rows[i], values or {}
                for name in names:
                    value = values.get(name)
                    row[name] = None if value is None else _python(value)
                if stamp is not None and (stamps[i] is None or stamp < stamps[i]):
                    stamps[i] = stamp
        return rows, stamps

    def get(self, customer_id: str) -> dict[str, object]:
        """The feature vector of one customer, in service order; all None if never materialized."""
        return self._read([customer_id])[0][0]

    def get_many(self, customer_ids: Sequence[str]) -> pd.DataFrame:
        """Feature vectors of many customers: one row each, in the order given."""
        return self.lookup(customer_ids).frame

    def lookup(self, customer_ids: Sequence[str]) -> OnlineRows:
        """Feature vectors of many customers (one row each, in the order given) and when
        each was computed."""
        rows, stamps = self._read(customer_ids)
        frame = pd.DataFrame(rows, columns=self.names)
        frame.insert(0, "customer_id", list(customer_ids))
        return OnlineRows(frame, stamps)
