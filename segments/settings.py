"""Settings for segments and activation (cip segments, cip activate)."""

from pydantic import BaseModel


class SegmentSettings(BaseModel):
    """Settings for segments and activation (cip segments, cip activate)."""
