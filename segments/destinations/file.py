"""`type: file`: CSV or Parquet files in `exports/<name>/`, one per segment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from segments.destinations.base import Destination, Parcel, Sent

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FileDestination"]


class FileDestination(Destination):
    """CSV or Parquet files in `exports/<name>/`, one per segment (per delivery in
    `changes` mode), written atomically."""

    type: Literal["file"] = "file"
    format: Literal["csv", "parquet"] = "csv"

    def send(self, rows: pd.DataFrame, *, parcel: Parcel) -> Sent:
        from segments.delivery import write_file

        path = write_file(rows, path=self.file_path(parcel, suffix=self.format), format=self.format)
        return Sent(target=str(path))
