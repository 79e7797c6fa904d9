"""What the marketers' workspace is built from: paths, the segment settings, session length."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from segments.settings import SegmentSettings

__all__ = ["WorkspaceConfig"]


class WorkspaceConfig(BaseModel):
    """Everything the workspace needs, resolved by the top layer."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    users_file: Path
    """The accounts `cip users add` writes (hashes only, owner-only)."""
    warehouse: Path
    """The DuckDB warehouse (read-only but to run an evaluation and log a delivery)."""
    exports: Path
    """Where deliveries write their files."""
    definition_folders: list[Path]
    """The folders `cip segments` reads definitions from, in order (a later one wins)."""
    save_folder: Path
    """Where the builder saves a definition (one of `definition_folders`)."""
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    """Destinations, retry policy and evaluation time, as `cip activate` uses them."""
    phone_region: str = "US"
    """Region phone numbers are read in (ad audiences hash normalized numbers)."""
    session_hours: float = Field(default=12.0, gt=0)
    """How long a sign-in lasts."""
