"""Online lookup of a customer's feature vector through the Feast API.

`OnlineFeatures` resolves the feature service once and then answers one Feast
`get_online_features` call per lookup (about a millisecond on the SQLite store), so serving
keeps one instance per process.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from feast import FeatureStore

from features.store import service_features

__all__ = ["OnlineFeatures"]


class OnlineFeatures:
    """Latest materialized features of one service, by `customer_id`."""

    def __init__(self, store: FeatureStore, *, service: str = "churn_v1") -> None:
        self.store = store
        self.service = service
        self.names = service_features(store, service)
        self._service = store.get_feature_service(service)

    def _read(self, customer_ids: Sequence[str]) -> dict[str, list[object]]:
        return self.store.get_online_features(
            features=self._service, entity_rows={"customer_id": list(customer_ids)}
        ).to_dict()

    def get(self, customer_id: str) -> dict[str, object]:
        """The feature vector of one customer, in service order; all None if never materialized."""
        found = self._read([customer_id])
        return {name: found[name][0] for name in self.names}

    def get_many(self, customer_ids: Sequence[str]) -> pd.DataFrame:
        """Feature vectors of many customers: one row each, in the order given."""
        found = self._read(customer_ids)
        return pd.DataFrame({"customer_id": list(customer_ids)} | {n: found[n] for n in self.names})
