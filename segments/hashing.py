"""Identifiers for ad-platform customer lists: normalized the platforms' way, then SHA-256 hashed.

Google Customer Match and Meta custom audiences match uploaded lists on the
SHA-256 hex digest of normalized identifiers: an e-mail address trimmed and
lower-cased; a phone number in E.164 (Google hashes it with its `+`, Meta as
digits only). Raw identifiers never leave this module's output.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import pandas as pd

from resolution import normalize

__all__ = ["PLATFORM_COLUMNS", "ad_email", "ad_phone", "hashed_identifiers", "sha256_hex"]

Platform = Literal["google", "meta"]

PLATFORM_COLUMNS: dict[str, tuple[str, str]] = {
    "google": ("Email", "Phone"),
    "meta": ("EMAIL", "PHONE"),
}
"""The hashed e-mail and phone column headers each platform's upload expects."""


def sha256_hex(value: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 bytes of `value`."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def ad_email(value: str | None) -> str | None:
    """An e-mail address as the platforms hash it: trimmed, lower-cased; None if not an address."""
    if value is None or pd.isna(value):
        return None
    value = str(value).strip().lower()
    local, at, domain = value.partition("@")
    return value if local and at and "." in domain and " " not in value else None


def ad_phone(value: str | None, *, region: str, platform: Platform) -> str | None:
    """A phone number in E.164 (`+447911123456`; digits only for Meta); None when unusable."""
    if value is None or pd.isna(value):
        return None
    e164 = normalize.phone(str(value), region)
    if e164 is None:
        return None
    return e164 if platform == "google" else e164.removeprefix("+")


def hashed_identifiers(
    frame: pd.DataFrame, *, platform: Platform, region: str, keep: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Hashed e-mail and phone columns for `frame`'s `email` and `phone`, plus the `keep` columns.

    Rows with neither a usable e-mail nor a usable phone are dropped.
    """
    email_column, phone_column = PLATFORM_COLUMNS[platform]
    emails = frame["email"].map(ad_email)
    phones = frame["phone"].map(lambda v: ad_phone(v, region=region, platform=platform))
    out = frame[list(keep)].copy()
    out[email_column] = emails.map(sha256_hex, na_action="ignore")
    out[phone_column] = phones.map(sha256_hex, na_action="ignore")
    return out[emails.notna() | phones.notna()].reset_index(drop=True)
