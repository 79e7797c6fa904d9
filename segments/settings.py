"""Settings for segments and activation (cip segments, cip activate).

Segment definitions are YAML files: the examples shipped in `segments/definitions/`
plus any folders named in `definition_dirs` (a user's definition replaces a shipped
one with the same name). Destinations say where each segment goes, in what form,
and which consent a profile needs to be sent there; each kind (file, webhook, ad
audience, ...) is a class in `segments.destinations`, chosen by its `type`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from segments.destinations import DestinationSetting, FileDestination, RetryPolicy
from segments.journeys.settings import JourneySettings

__all__ = ["SegmentSettings"]


class SegmentSettings(BaseModel):
    """Settings for segments and activation (cip segments, cip activate)."""

    model_config = ConfigDict(extra="forbid")

    definition_dirs: list[Path] = []
    """Folders of the user's segment YAML files, read after the shipped examples."""
    include_examples: bool = True
    """Evaluate the example segments shipped in `segments/definitions/`."""
    as_of: datetime | None = None
    """Time the rules' windows end at; default: the newest event or order in the warehouse."""
    destinations: list[DestinationSetting] = [
        FileDestination(name="files", format="csv", mode="full", consent="email")
    ]
    """Where segments go, each a kind registered in `segments.destinations` by its `type`."""
    retry: RetryPolicy = RetryPolicy()
    journeys: JourneySettings = JourneySettings()
    """Journeys: definitions, templates, channel transports (`segments.journeys`)."""
    report_file: str = "report.html"
    """The marketers' report, written into the exports folder."""
