"""Settings for churn and LTV models (cip train, cip score)."""

from pydantic import BaseModel


class ModelSettings(BaseModel):
    """Settings for churn and LTV models (cip train, cip score)."""

    tracking_uri: str | None = None
    """MLflow tracking URI; default: a SQLite database in the data folder."""
