"""Live scores for the API: one online read of the features, then the champions.

The features come through `features.OnlineFeatures.vectors` (one online-store read per
feature view, whatever the number of customers, straight into a float matrix) for the one
feature service that covers every champion's inputs; the scores through
`models.Champions.score_matrix`, the code under `cip score`: probabilities, values,
deciles, expected orders and, when asked for, the reasons (SHAP: a fraction of a
millisecond a customer, so only on request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from feast import FeatureStore

from features import OnlineFeatures, service_features
from models import Champions

__all__ = ["FeaturesMismatch", "LiveScorer"]

_REASONS = ("churn_reasons", "ltv_reasons")


class FeaturesMismatch(RuntimeError):
    """The online feature services do not provide what a champion model reads."""


@dataclass(frozen=True)
class LiveScorer:
    """Champions plus the online reader of the feature service that feeds them all."""

    champions: Champions
    features: OnlineFeatures
    top_reasons: int

    @classmethod
    def build(
        cls, *, champions: Champions, store: FeatureStore, top_reasons: int, cache_rows: int = 0
    ) -> LiveScorer:
        """Pick the champions' feature service that covers every model (one read a call);
        `cache_rows`: see `OnlineFeatures`."""
        needed = set(champions.feature_names)
        offered: dict[str, set[str]] = {}
        for model in champions.models:
            offered[model.feature_service] = set(service_features(store, model.feature_service))
            if needed <= offered[model.feature_service]:
                reader = OnlineFeatures(store, service=model.feature_service, cache_rows=cache_rows)
                return cls(champions, reader, top_reasons)
        missing = sorted(needed - set().union(*offered.values()))
        raise FeaturesMismatch(
            f"no feature service among {sorted(offered)} offers every feature of the champions "
            f"({', '.join(f'{t} v{v}' for t, v in champions.versions.items())})"
            + (f"; missing: {', '.join(missing[:5])}" if missing else "")
        )

    @property
    def feature_service(self) -> str:
        """The models' feature services, as `cip score` records them (`churn_v1+ltv_v1`);
        the lookup reads `self.features.service`, which covers them all."""
        return "+".join(dict.fromkeys(m.feature_service for m in self.champions.models))

    def score(self, customer_ids: Sequence[str], *, reasons: bool) -> list[dict[str, Any]]:
        """One row per customer, in order: probabilities, values, deciles, expected orders,
        reasons (None without them), model versions and the features' time."""
        found = self.features.vectors(customer_ids, names=self.champions.feature_names)
        scores = self.champions.score_matrix(
            found.values, reasons=self.top_reasons if reasons else 0
        )
        columns = {
            name: values.tolist() if isinstance(values, np.ndarray) else values
            for name, values in scores.items()
        }
        for name in _REASONS:
            columns.setdefault(name, [None] * len(customer_ids))
        versions = self.champions.versions
        common = {
            "churn_model_version": versions["churn"],
            "ltv_model_version": versions["ltv"],
            "orders_model_version": versions["orders"],
            "feature_service": self.feature_service,
            "scored_at": datetime.now(UTC),
        }
        return [
            {**common, **{name: values[i] for name, values in columns.items()}, "features_as_of": t}
            for i, t in enumerate(found.as_of)
        ]
