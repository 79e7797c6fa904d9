"""Settings for churn and LTV models (cip train, cip score)."""

from pydantic import BaseModel


class ModelSettings(BaseModel):
    """Settings for churn and LTV models (cip train, cip score)."""
