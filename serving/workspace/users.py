"""The workspace's user accounts: names, roles and Argon2 password hashes in one JSON file.

`cip users add` writes them; the workspace's login form checks them. The file lives in the
data folder with owner-only permissions and holds hashes only (argon2-cffi's defaults, re-hashed
on login when those defaults change); a password is never stored, logged or echoed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["ROLES", "User", "UserStore"]

ROLES = ("viewer", "editor")
Role = Literal["viewer", "editor"]

_NAME = re.compile(r"^[\w.@+-]{1,64}$")
_MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Checked against when the user is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    """A signed-in person: who, and what they may do."""

    name: str
    role: Role

    @property
    def can_edit(self) -> bool:
        return self.role == "editor"


class UserStore:
    """Accounts kept in `path` (a JSON object: name -> {role, hash})."""

    def __init__(self, *, path: Path) -> None:
        self.path = path

    def add(self, *, name: str, password: str, role: Role, replace: bool = False) -> User:
        """Create (or with `replace`, reset) an account; ValueError says what is wrong."""
        if not _NAME.match(name):
            raise ValueError(
                "a user name is 1 to 64 letters, digits or . _ @ + - (no spaces), "
                f"got {len(name)} characters"
            )
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < _MIN_PASSWORD:
            raise ValueError(f"a password needs at least {_MIN_PASSWORD} characters")
        accounts = self._read()
        if name in accounts and not replace:
            raise ValueError(f"user {name!r} already exists (use --replace to reset it)")
        accounts[name] = {"role": role, "hash": _hasher.hash(password)}
        self._write(accounts)
        return User(name, role)

    def users(self) -> list[User]:
        return [User(name, entry["role"]) for name, entry in sorted(self._read().items())]

    def authenticate(self, *, name: str, password: str) -> User | None:
        """The user if `password` is theirs, else None (in about the same time either way)."""
        accounts = self._read()
        entry = accounts.get(name)
        try:
            _hasher.verify(entry["hash"] if entry else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if entry is None:
            return None
        if _hasher.check_needs_rehash(entry["hash"]):
            entry["hash"] = _hasher.hash(password)
            self._write(accounts)
        return User(name, entry["role"])

    def get(self, name: str) -> User | None:
        entry = self._read().get(name)
        return User(name, entry["role"]) if entry else None

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        return orjson.loads(self.path.read_bytes())

    def _write(self, accounts: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(accounts, option=orjson.OPT_INDENT_2))
        os.replace(temporary, self.path)
