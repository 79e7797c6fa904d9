"""`type: webhook`: batched JSON POSTs with an idempotency key per batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, HttpUrl

from segments.destinations.base import Destination, Parcel, Sent

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["WebhookDestination"]


class WebhookDestination(Destination):
    """Batched JSON POSTs (`{destination, segment, mode, run_id, since_run_id, batch,
    batches, idempotency_key, members}`), retried on connection errors, 429 and 5xx."""

    type: Literal["webhook"] = "webhook"
    mode: Literal["full", "changes"] = "changes"
    url: HttpUrl
    batch_size: int = Field(500, ge=1, le=100_000)
    headers: dict[str, str] = {}

    def send(self, rows: pd.DataFrame, *, parcel: Parcel) -> Sent:
        url = str(self.url)
        batches = self.post(
            rows, parcel=parcel, url=url, batch_size=self.batch_size, headers=self.headers
        )
        return Sent(target=url, batches=batches)
