"""Settings for identity resolution (cip resolve)."""

from pydantic import BaseModel


class ResolutionSettings(BaseModel):
    """Settings for identity resolution (cip resolve)."""
