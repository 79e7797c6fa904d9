"""Settings for segments and activation (cip segments, cip activate).

Segment definitions are YAML files: the examples shipped in `segments/definitions/`
plus any folders named in `definition_dirs` (a user's definition replaces a shipped
one with the same name). Destinations say where each segment goes, in what form,
and which consent a profile needs to be sent there.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, HttpUrl

Consent = Literal["email", "sms", "ads"]
"""The consent a destination requires: the profile flag `consent_<email|sms|ads>`."""


class RetryPolicy(BaseModel):
    """How often and how patiently a failing HTTP batch is retried."""

    attempts: int = Field(4, ge=1, le=20)
    """Tries per batch, the first included."""
    backoff_seconds: float = Field(0.5, ge=0)
    """Wait before the second try; doubled before each further try."""
    max_backoff_seconds: float = Field(30.0, ge=0)
    timeout_seconds: float = Field(10.0, gt=0)
    """Per request."""


class _Destination(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    segments: list[str] | None = None
    """Segments sent there; default: all."""
    consent: Consent = "email"
    mode: Literal["full", "changes"] = "full"
    """`full`: every current member; `changes`: who entered and exited since the last delivery."""


class FileDestination(_Destination):
    """CSV or Parquet files in `exports/<name>/`, one per segment."""

    type: Literal["file"] = "file"
    format: Literal["csv", "parquet"] = "csv"


class WebhookDestination(_Destination):
    """Batched JSON POSTs with an idempotency key per batch."""

    type: Literal["webhook"] = "webhook"
    mode: Literal["full", "changes"] = "changes"
    url: HttpUrl
    batch_size: int = Field(500, ge=1, le=100_000)
    headers: dict[str, str] = {}


class AdAudienceDestination(_Destination):
    """A customer-list upload: normalized identifiers, SHA-256 hashed, never raw.

    Written as a CSV in `exports/<name>/` and, with `url`, also POSTed in batches.
    `platform` picks the upload format: `google` (Customer Match: `Email`,
    `Phone` with the E.164 `+`) or `meta` (custom audiences: `EMAIL`, `PHONE`
    as digits with country code, no `+`).
    """

    type: Literal["ad_audience"] = "ad_audience"
    consent: Consent = "ads"
    platform: Literal["google", "meta"] = "google"
    url: HttpUrl | None = None
    batch_size: int = Field(10_000, ge=1, le=100_000)
    headers: dict[str, str] = {}


Destination = Annotated[
    FileDestination | WebhookDestination | AdAudienceDestination, Field(discriminator="type")
]


class SegmentSettings(BaseModel):
    """Settings for segments and activation (cip segments, cip activate)."""

    definition_dirs: list[Path] = []
    """Folders of the user's segment YAML files, read after the shipped examples."""
    include_examples: bool = True
    """Evaluate the example segments shipped in `segments/definitions/`."""
    as_of: datetime | None = None
    """Time the rules' windows end at; default: the newest event or order in the warehouse."""
    destinations: list[Destination] = [
        FileDestination(name="files", format="csv", mode="full", consent="email")
    ]
    retry: RetryPolicy = RetryPolicy()
    report_file: str = "report.html"
    """The marketers' report, written into the exports folder."""
