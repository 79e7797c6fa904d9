"""The one interface every destination kind implements, and what a delivery hands it.

A destination is a pydantic model: its fields are its settings (the YAML a user writes
under `segments.destinations`, chosen by `type`), its two methods the behaviour. `rows`
says what it receives of a segment's audience (by default the customer id, the change,
the first name and the one contact identifier its consent allows); `send` delivers them
and says where they went. Activation (`segments.activation`) does the rest for every kind
alike: which run to send, consent filtering, retries of what failed, the sync logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from segments.delivery import BatchResult

__all__ = ["CONTACT_COLUMN", "Consent", "Destination", "Parcel", "RetryPolicy", "Sent"]

Consent = Literal["email", "sms", "ads"]
"""The consent a destination requires: the profile flag `consent_<email|sms|ads>`."""

CONTACT_COLUMN: dict[str, str | None] = {"email": "email", "sms": "phone", "ads": None}
"""The contact identifier a destination may receive, by the consent it requires."""


class RetryPolicy(BaseModel):
    """How often and how patiently a failing HTTP batch is retried."""

    attempts: int = Field(4, ge=1, le=20)
    """Tries per batch, the first included."""
    backoff_seconds: float = Field(0.5, ge=0)
    """Wait before the second try; doubled before each further try."""
    max_backoff_seconds: float = Field(30.0, ge=0)
    timeout_seconds: float = Field(10.0, gt=0)
    """Per request."""


@dataclass(frozen=True)
class Parcel:
    """One delivery as a destination sees it: which segment and runs, and the means to send."""

    segment: str
    run_id: str
    since_run_id: str | None
    exports: Path
    """The exports folder (file destinations write under `exports/<name>/`)."""
    retry: RetryPolicy
    client: httpx.Client
    """One HTTP client for the whole activation (connection reuse)."""


@dataclass
class Sent:
    """Where a delivery went; `batches` for HTTP deliveries (a failed one fails it)."""

    target: str
    batches: list[BatchResult] = field(default_factory=list)


class Destination(BaseModel):
    """A place segments go. A kind subclasses this with `type: Literal["<kind>"] =
    "<kind>"`, its own settings as fields, and `send` (and `rows`, if it receives something
    else than contacts); `segments.destinations.register` makes it known by its type."""

    model_config = ConfigDict(extra="forbid")

    type: str
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    segments: list[str] | None = None
    """Segments sent there; default: all."""
    consent: Consent = "email"
    mode: Literal["full", "changes"] = "full"
    """`full`: every current member; `changes`: who entered and exited since the last delivery."""

    def rows(self, audience: pd.DataFrame, *, phone_region: str) -> pd.DataFrame:  # noqa: ARG002
        """What this destination receives of a segment's consented audience (`customer_id`,
        [`change`], `first_name`, `email`, `phone`): here the customer id, the change, the
        first name and the contact identifier its consent is for."""
        keep = [c for c in ("customer_id", "change") if c in audience.columns]
        contact = CONTACT_COLUMN[self.consent]
        return audience[[*keep, "first_name", *([contact] if contact else [])]]

    def send(self, rows: pd.DataFrame, *, parcel: Parcel) -> Sent:
        """Deliver `rows`; raise (or return failed batches) when the delivery failed."""
        raise NotImplementedError(f"destination type {self.type!r} cannot send")

    def file_path(self, parcel: Parcel, *, suffix: str) -> Path:
        """`exports/<name>/<segment>[_changes_<run>].<suffix>`: one file per segment (full)
        or per delivery (changes)."""
        changes = "" if self.mode == "full" else f"_changes_{parcel.run_id}"
        return parcel.exports / self.name / f"{parcel.segment}{changes}.{suffix}"

    def post(
        self,
        rows: pd.DataFrame,
        *,
        parcel: Parcel,
        url: str,
        batch_size: int,
        headers: dict[str, str],
    ) -> list[BatchResult]:
        """POST `rows` to `url` in batches, each with the delivery's envelope and an
        idempotency key (`segments.delivery.post_batches`)."""
        from segments.delivery import post_batches

        envelope = {
            "destination": self.name,
            "segment": parcel.segment,
            "mode": self.mode,
            "run_id": parcel.run_id,
            "since_run_id": parcel.since_run_id,
        }
        return post_batches(
            rows, client=parcel.client, url=url, envelope=envelope, batch_size=batch_size,
            retry=parcel.retry, headers=headers,
        )  # fmt: skip
