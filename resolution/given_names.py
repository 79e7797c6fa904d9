"""Given names that can belong to one person: `Bob` and `Robert`, `Beth` and `Elizabeth`.

The relation comes from the curated English `nicknames` dataset and is used pairwise
only: it is not transitive (`Chris` may be Christopher or Christina).
"""

from __future__ import annotations

from functools import cache

from nicknames import NickNamer

__all__ = ["nickname_related", "related_names"]


@cache
def _namer() -> NickNamer:
    return NickNamer()


def related_names(name: str) -> set[str]:
    """The known nicknames of a lower-case given name, and the names it is a nickname of."""
    namer = _namer()
    return namer.nicknames_of(name) | namer.canonicals_of(name)


def nickname_related(a: str, b: str) -> bool:
    """Whether one lower-case given name is a known nickname of the other."""
    namer = _namer()
    return b in namer.nicknames_of(a) or a in namer.nicknames_of(b)
