"""Settings for feature computation and the Feast repo (cip features)."""

from pydantic import BaseModel


class FeatureSettings(BaseModel):
    """Settings for feature computation and the Feast repo (cip features)."""
