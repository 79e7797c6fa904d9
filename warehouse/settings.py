"""Settings for the synthetic customer universe (cip generate)."""

from pydantic import BaseModel


class GenerateSettings(BaseModel):
    """Settings for the synthetic customer universe (cip generate)."""
