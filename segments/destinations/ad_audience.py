"""`type: ad_audience`: a customer-list upload of hashed identifiers, never raw ones."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, HttpUrl

from segments.destinations.base import Consent, Destination, Parcel, Sent

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AdAudienceDestination"]


class AdAudienceDestination(Destination):
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

    def rows(self, audience: pd.DataFrame, *, phone_region: str) -> pd.DataFrame:
        from segments.hashing import hashed_identifiers

        keep = tuple(c for c in ("change",) if c in audience.columns)
        return hashed_identifiers(audience, platform=self.platform, region=phone_region, keep=keep)

    def send(self, rows: pd.DataFrame, *, parcel: Parcel) -> Sent:
        from segments.delivery import write_file

        path = write_file(rows, path=self.file_path(parcel, suffix="csv"), format="csv")
        if self.url is None:
            return Sent(target=str(path))
        url = str(self.url)
        batches = self.post(
            rows, parcel=parcel, url=url, batch_size=self.batch_size, headers=self.headers
        )
        return Sent(target=url, batches=batches)
