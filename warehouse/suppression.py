"""The suppression list: salted hashes of forgotten people's identifiers, so they stay gone.

When a person is forgotten, the hashes of their e-mail addresses, phone numbers and user
ids are appended to `privacy/suppressed.txt` beside the warehouse file (one hex digest a
line, never the identifier itself). Every loader consults it: a file row, a collector
event or a batch row naming a suppressed identifier is dropped and counted as
suppressed, so the person does not come back through the next export of a source.

An identifier is hashed in a canonical form, so that the spellings a source may use
match: an e-mail trimmed and lower-cased; a phone as its last ten digits (the national
number, whatever the prefix or punctuation); a user id trimmed. The salt (random, made
once, `privacy/salt`) keeps the list from being reversed with a dictionary of addresses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

__all__ = [
    "IDENTIFIER_KINDS",
    "Suppression",
    "canonical",
    "identifiers_in",
    "privacy_dir",
    "suppression_of",
]

IDENTIFIER_KINDS = ("email", "phone", "user_id")
"""The identifiers a suppression names."""

# JSON keys (any nesting: Segment messages keep `traits.email`) read as each kind.
_KEYS = {
    "email": "email",
    "phone": "phone",
    "user_id": "user_id",
    "userid": "user_id",
}
_NOT_DIGITS = re.compile(r"\D+")


def privacy_dir(warehouse_path: Path) -> Path:
    """Where the suppression list, its salt and the erasure records live: `privacy/`
    beside the warehouse file."""
    return warehouse_path.parent / "privacy"


def canonical(kind: str, value: object) -> str | None:
    """`value` as an identifier of `kind` is compared: None when it cannot be one."""
    if value is None:
        return None
    text = str(value).strip()
    if kind == "email":
        return text.lower() if "@" in text else None
    if kind == "phone":
        digits = _NOT_DIGITS.sub("", text)
        return digits[-10:] if len(digits) >= 7 else None
    if kind == "user_id":
        return text or None
    raise ValueError(f"unknown identifier kind {kind!r}; kinds are {', '.join(IDENTIFIER_KINDS)}")


def identifiers_in(document: object) -> Iterator[tuple[str, str]]:
    """(kind, canonical value) of every identifier in a JSON-like document, by its key."""
    if isinstance(document, dict):
        for key, value in document.items():
            kind = _KEYS.get(str(key).lower())
            if kind is not None and isinstance(value, str | int):
                found = canonical(kind, value)
                if found:
                    yield kind, found
            elif isinstance(value, dict | list):
                yield from identifiers_in(value)
            elif isinstance(value, str) and value.lstrip().startswith("{"):  # a JSON column
                yield from identifiers_in(_parsed(value))
    elif isinstance(document, list):
        for item in document:
            yield from identifiers_in(item)


def _parsed(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Suppression:
    """The suppression list of one warehouse, as read at one moment."""

    folder: Path
    salt: bytes
    hashes: frozenset[str]

    @classmethod
    def open(cls, folder: Path) -> Suppression:
        """Read the list in `folder` (creating the salt on first use)."""
        folder.mkdir(parents=True, exist_ok=True)
        salt_file = folder / "salt"
        if not salt_file.exists():
            temporary = salt_file.with_suffix(".tmp")
            temporary.write_text(secrets.token_hex(32))
            os.replace(temporary, salt_file)
        listed = folder / "suppressed.txt"
        lines = listed.read_text().split() if listed.exists() else []
        return cls(folder, bytes.fromhex(salt_file.read_text().strip()), frozenset(lines))

    def digest(self, kind: str, value: str) -> str:
        """The salted hash of a canonical identifier."""
        return hashlib.sha256(self.salt + f"{kind}:{value}".encode()).hexdigest()

    def add(self, identifiers: Iterable[tuple[str, str]]) -> Suppression:
        """Append the hashes of (kind, canonical value) pairs not yet listed (fsynced)."""
        new = sorted({self.digest(k, v) for k, v in identifiers} - self.hashes)
        if new:
            with (self.folder / "suppressed.txt").open("a") as handle:
                handle.write("".join(f"{h}\n" for h in new))
                handle.flush()
                os.fsync(handle.fileno())
        return Suppression(self.folder, self.salt, self.hashes | set(new))

    def names_anyone(self, document: object) -> bool:
        """Whether a JSON-like document (a row, a message) names a suppressed identifier."""
        return bool(self.hashes) and any(
            self.digest(kind, value) in self.hashes for kind, value in identifiers_in(document)
        )

    def names_anyone_json(self, text: str | None) -> bool:
        """`names_anyone` of a JSON text (an unreadable text names nobody)."""
        return bool(self.hashes and text) and self.names_anyone(_parsed(text))


def suppression_of(con: duckdb.DuckDBPyConnection) -> Suppression | None:
    """The suppression list of the warehouse `con` has open (None for an in-memory one)."""
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if not row or not row[0]:
        return None
    return Suppression.open(privacy_dir(Path(row[0])))
