"""What a destination receives for a segment: members or changes, consented profiles only.

An audience row carries the customer id, for changes whether they `entered` or
`exited`, the first name, e-mail and phone; the destination's kind takes what it
may receive (`Destination.rows`: the one contact identifier its consent is for, or
hashed identifiers for an ad audience). A segment row is withheld, and counted by
reason (`WITHHELD_REASONS`), when the profile's consent for the destination's channel is
not true (`no_consent`), when the person objected to profiling (`profiling_objection`:
segments are built from scores and behaviour), or when the profile has no usable
identifier for the channel (`no_contact`: a blank e-mail for e-mail, a blank phone for
SMS, neither for an ad audience). Whichever way they changed, nothing about a withheld
person leaves the platform.
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

__all__ = ["WITHHELD_REASONS", "Audience", "audience"]

WITHHELD_REASONS = ("no_consent", "profiling_objection", "no_contact")
"""Why a segment row is not delivered, in the order they are checked."""

_CONTACT = {
    "email": "nullif(trim(p.email), '') IS NOT NULL",
    "sms": "nullif(trim(p.phone), '') IS NOT NULL",
    "ads": "coalesce(nullif(trim(p.email), ''), nullif(trim(p.phone), '')) IS NOT NULL",
}


@dataclass(frozen=True)
class Audience:
    """Rows for one delivery, and how many segment rows were withheld, by reason."""

    rows: pd.DataFrame
    """`customer_id`, [`change`], `first_name`, `email`, `phone` (all identifiers, for hashing)."""
    members: int
    withheld_by: dict[str, int]
    """Rows withheld per reason of `WITHHELD_REASONS` (each row counted once, first reason)."""

    @property
    def withheld(self) -> int:
        return sum(self.withheld_by.values())


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
    reason = f"""CASE WHEN p.consent_{consent} IS NOT TRUE THEN 'no_consent'
                     WHEN p.consent_profiling IS FALSE THEN 'profiling_objection'
                     WHEN NOT ({_CONTACT[consent]}) THEN 'no_contact' END"""
    con.register("_audience", found)
    try:
        checked = con.execute(
            f"""SELECT a.*, p.first_name, p.email, p.phone, {reason} AS _withheld
                FROM _audience a LEFT JOIN {PROFILES} p USING (customer_id) ORDER BY ALL"""
        ).df()
    finally:
        con.unregister("_audience")
    counts = checked["_withheld"].value_counts()
    rows = checked[checked["_withheld"].isna()].drop(columns="_withheld").reset_index(drop=True)
    return Audience(
        rows=rows,
        members=len(found),
        withheld_by={r: int(counts.get(r, 0)) for r in WITHHELD_REASONS},
    )
