"""What a destination receives for a segment: members or changes, consented profiles only.

An audience row carries the customer id, for changes whether they `entered` or
`exited`, the first name, e-mail and phone; the destination's kind takes what it
may receive (`Destination.rows`: the one contact identifier its consent is for, or
hashed identifiers for an ad audience). A profile whose consent flag for the
destination's channel is not true is never part of the rows, whichever way
they changed: nothing about them leaves the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import pandas as pd

from segments.destinations.base import Consent
from segments.membership import changes_between, members_at
from warehouse.tables import PROFILES

__all__ = ["Audience", "audience"]


@dataclass(frozen=True)
class Audience:
    """Rows for one delivery, and how many segment rows were withheld for lack of consent."""

    rows: pd.DataFrame
    """`customer_id`, [`change`], `first_name`, `email`, `phone` (all identifiers, for hashing)."""
    members: int
    withheld: int


def audience(
    con: duckdb.DuckDBPyConnection,
    *,
    segment: str,
    until: datetime,
    since: datetime | None,
    mode: Literal["full", "changes"],
    consent: Consent,
) -> Audience:
    """The segment's members at `until` (full) or its changes from `since` to `until` (changes)."""
    if mode == "full":
        found = members_at(con, segment=segment, at=until)[["customer_id"]]
    else:
        found = changes_between(con, segment=segment, since=since, until=until)
    con.register("_audience", found)
    try:
        rows = con.execute(
            f"""SELECT a.*, p.first_name, p.email, p.phone FROM _audience a
                JOIN {PROFILES} p USING (customer_id)
                WHERE p.consent_{consent} IS TRUE ORDER BY ALL"""
        ).df()
    finally:
        con.unregister("_audience")
    return Audience(rows=rows, members=len(found), withheld=len(found) - len(rows))
