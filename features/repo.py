"""The Feast repo's declarations, as `feast -c features plan/apply/ui` reads them.

Feast imports every module of this folder not listed in `.feastignore`; this is the one it
reads. The objects come from the definitions in `features/definitions.py` with the default
settings and the embedded data folder (`data/feast`, next to `feature_store.yaml`'s registry).
`cip features` applies the same objects built for the configured data folder and settings.
"""

from __future__ import annotations

from pathlib import Path

from features.objects import build_objects
from features.settings import FeatureSettings

FEAST_DIR = Path(__file__).resolve().parent.parent / "data" / "feast"

_objects = build_objects(feast_dir=FEAST_DIR, settings=FeatureSettings())

customer = _objects.customer

customer_order_features = _objects.views["order"]
customer_web_features = _objects.views["web"]
customer_email_features = _objects.views["email"]
customer_support_features = _objects.views["support"]
customer_profile_features = _objects.views["profile"]

churn_v1 = _objects.services["churn_v1"]
ltv_v1 = _objects.services["ltv_v1"]
