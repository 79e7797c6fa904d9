"""Settings for the HTTP services (cip serve)."""

from pydantic import BaseModel


class ServingSettings(BaseModel):
    """Settings for the HTTP services (cip serve)."""
