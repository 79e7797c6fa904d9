"""Normalizers for identifiers and person attributes: one canonical spelling per value.

`email` and `phone` are the public lookup keys (serving, the collector and the
segments' hashed audiences use them); the others prepare names and places for
matching. Every function returns None for a value that is empty or unusable.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

__all__ = ["email", "phone", "name", "postcode", "text", "split_full_name"]

# Providers that ignore dots in the local part (and where aliases share one mailbox).
_DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NON_NAME = re.compile(r"[^\w\s'-]+")
_SPACES = re.compile(r"\s+")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]+")  # what phone parsing ignores anyway
# Words typed where a name was required but not known: they name no one.
PLACEHOLDER_NAMES = frozenset(
    {
        "test", "testing", "tester", "customer", "client", "guest", "unknown", "anonymous",
        "none", "null", "nil", "na", "n a", "no name", "noname", "xxx", "xx", "asdf", "dummy",
        "sample", "тест", "клиент", "покупатель", "гость", "неизвестно", "нет", "аноним",
    }
)  # fmt: skip


def email(value: str | None) -> str | None:
    """Lower case, trimmed, plus-tags dropped, dots dropped where the provider ignores them."""
    if value is None:
        return None
    value = str(value).strip().lower()
    if not _EMAIL_SHAPE.match(value):
        return None
    local, domain = value.rsplit("@", 1)
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        domain = _DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}" if local else None


def phone(value: str | None, default_region: str = "US") -> str | None:
    """E.164 (`+79123456789`), reading numbers without a country code in `default_region`."""
    if value is None:
        return None
    value = _PHONE_PUNCTUATION.sub("", str(value))
    return _parse_phone(value, default_region.upper()) if value else None


@lru_cache(maxsize=1 << 17)
def _parse_phone(compact: str, region: str) -> str | None:
    """One parse per number however it was punctuated: parsing is the costly part."""
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def text(value: str | None) -> str | None:
    """Lower case, accents kept, punctuation and repeated spaces removed (addresses, cities)."""
    if value is None:
        return None
    value = unicodedata.normalize("NFKC", str(value)).lower()
    value = _SPACES.sub(" ", _NON_NAME.sub(" ", value)).strip()
    return value or None


def name(value: str | None) -> str | None:
    """A person's name for matching: lower case, no punctuation, hyphens as spaces;
    None for a placeholder (`Test`, `Guest`, `n/a`)."""
    value = text(value)
    if value is None:
        return None
    value = _SPACES.sub(" ", value.replace("-", " ").replace("'", "")).strip()
    return None if not value or value in PLACEHOLDER_NAMES else value


def postcode(value: str | None) -> str | None:
    """Upper case without spaces."""
    if value is None:
        return None
    value = re.sub(r"\s+", "", str(value)).upper()
    return value or None


def split_full_name(value: str | None) -> tuple[str | None, str | None]:
    """Split `"Anna Maria Smith"` into (`"anna maria"`, `"smith"`); one word is a last name."""
    full = name(value)
    if not full:
        return None, None
    first, _, last = full.rpartition(" ")
    return name(first), name(last)
