"""The comparison library: how each kind of column is compared, as Splink comparisons.

A *kind* names one way of comparing values, the way Splink's own comparison
library does: `KINDS` maps each kind to the function building its Splink
comparison, and a new kind is one function plus its entry. Levels go from the
strongest agreement to "all other"; exact matches of names, dates, places and
categories, emails and phones carry term-frequency adjustments (a rare surname
agreeing says more than `smith`, a shop's phone typed at the till for many
customers says little). A single letter agreeing with a single letter is an
initial, not a given name.

| kind | levels after null and exact |
|---|---|
| given_name | names swapped, one typo (one edit or JW 0.92), nickname, JW 0.88, initial, JW 0.7 |
| surname | swapped, one typo, JW 0.88, JW 0.7 |
| date | day and month swapped, one edit, same day and month in another year, same year |
| phone, postcode | one edit |
| email | (exact only: a near email is another person's, made from the same name) |
| identifier | one edit, two edits (an id number with a typo) |
| address | JW 0.95, JW 0.85 |
| place, text | JW 0.9 / JW 0.92, 0.8 |
| category | (exact only) |

Roles take their kind from `ROLE_KINDS`; any other column's kind is chosen by
its profile (`resolution.profile`). The chosen comparisons end up in the
model's Splink JSON, which a person can read, edit and pass back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink.internals.comparison_creator import ComparisonCreator

__all__ = [
    "KINDS",
    "LOCATION_KINDS",
    "NICKNAME_SUFFIX",
    "ROLE_KINDS",
    "CompareColumn",
    "Planned",
    "comparison",
    "plan",
]

NICKNAME_SUFFIX = "_nicknames"  # a given-name column's known nicknames, as a list

ROLE_KINDS = {
    "first_name": "given_name",
    "last_name": "surname",
    "email": "email",
    "phone": "phone",
    "date_of_birth": "date",
    "address": "address",
    "city": "place",
    "postcode": "postcode",
    "store_id": "category",
}


@dataclass(frozen=True)
class CompareColumn:
    """A column to compare: its name, its kind and, for names, what else is at hand."""

    name: str
    kind: str
    partner: str | None = None  # the other name column, for the swapped-names level
    nicknames: bool = False  # whether `<name>_nicknames` is in the input


@dataclass(frozen=True)
class Planned:
    """A comparison to make: its output name, the columns it reads, and Splink's creator."""

    name: str
    columns: frozenset[str]  # its own columns: null in all of them is its null level
    reads: frozenset[str]  # every column its levels read
    creator: ComparisonCreator


# Parts of one place, most precise first: compared together so that a household's shared
# address, postcode and city count once, as the strongest part that agrees.
LOCATION_KINDS = ("address", "postcode", "place")


def plan(columns: Sequence[CompareColumn]) -> list[Planned]:
    """The comparisons for `columns`: one per column, with the parts of a place as one."""
    location = sorted(
        (c for c in columns if c.kind in LOCATION_KINDS),
        key=lambda c: LOCATION_KINDS.index(c.kind),
    )
    planned = []
    for column in columns:
        if len(location) > 1 and column in location:
            if column is location[0]:
                planned.append(_location(location))
            continue
        reads = {column.name} | ({column.partner} if column.partner else set())
        if column.nicknames:
            reads.add(column.name + NICKNAME_SUFFIX)
        own = frozenset({column.name})
        planned.append(Planned(column.name, own, frozenset(reads), comparison(column)))
    return planned


def _location(parts: Sequence[CompareColumn]) -> Planned:
    name = "_".join(c.name for c in parts)
    levels: list = [cll.And(*(cll.NullLevel(c.name) for c in parts))]
    for part in parts:
        levels.append(_exact(part.name, tf=True))
        if part.kind == "address":
            levels.append(_jaro_winkler_level(part.name, 0.92))
        elif part.kind == "postcode":
            levels.append(_edits(part.name, 1))
    levels.append(cll.ElseLevel())
    creator = cl.CustomComparison(
        comparison_levels=levels,
        output_column_name=name,
        comparison_description="location: the most precise part that agrees",
    )
    own = frozenset(c.name for c in parts)
    return Planned(name, own, own, creator)


def comparison(column: CompareColumn) -> ComparisonCreator:
    """The Splink comparison for `column`, from its kind."""
    try:
        build = KINDS[column.kind]
    except KeyError:
        raise ValueError(
            f"unknown comparison kind {column.kind!r} for {column.name!r}; "
            f"kinds are {', '.join(KINDS)}"
        ) from None
    return build(column)


def _exact(name: str, *, tf: bool) -> cll.ComparisonLevelCreator:
    return cll.ExactMatchLevel(name, term_frequency_adjustments=tf).configure(
        label_for_charts=f"{name} exact"
    )


def _jaro_winkler_level(name: str, threshold: float) -> cll.ComparisonLevelCreator:
    return cll.JaroWinklerLevel(name, threshold).configure(
        label_for_charts=f"{name} Jaro-Winkler >= {threshold}"
    )


def _edits(name: str, edits: int) -> cll.ComparisonLevelCreator:
    """At most `edits` Damerau-Levenshtein edits.

    Plain Levenshtein runs first because it is several times cheaper in DuckDB and
    every pair within k Damerau edits is within 2k Levenshtein ones (a transposition
    is two), so the costly distance is computed only on the few pairs that can pass.
    """
    return cll.CustomLevel(
        f"levenshtein({name}_l, {name}_r) <= {2 * edits} "
        f"AND damerau_levenshtein({name}_l, {name}_r) <= {edits}",
        label_for_charts=f"{name} {'one edit' if edits == 1 else f'{edits} edits'}",
        base_dialect_str="duckdb",
    )


def _custom(levels: list, name: str, description: str) -> ComparisonCreator:
    return cl.CustomComparison(
        comparison_levels=[cll.NullLevel(name), *levels, cll.ElseLevel()],
        output_column_name=name,
        comparison_description=description,
    )


def _swapped(column: CompareColumn) -> list:
    if column.partner is None:
        return []
    return [
        cll.ColumnsReversedLevel(column.name, column.partner, symmetrical=True).configure(
            label_for_charts=f"{column.name} and {column.partner} swapped"
        )
    ]


def _given_name(column: CompareColumn) -> ComparisonCreator:
    name = column.name
    exact = cll.CustomLevel(
        f"{name}_l = {name}_r AND length({name}_l) > 1",
        label_for_charts=f"{name} exact",
        base_dialect_str="duckdb",
    ).configure(tf_adjustment_column=name, disable_tf_exact_match_detection=True)
    levels = [exact, *_swapped(column), _one_typo(name)]
    if column.nicknames:
        levels.append(
            cll.CustomLevel(
                f"list_contains({name}{NICKNAME_SUFFIX}_l, {name}_r)",
                label_for_charts=f"{name} nickname",
                base_dialect_str="duckdb",
            )
        )
    levels += [
        _jaro_winkler_level(name, 0.88),
        cll.CustomLevel(
            f"(length({name}_l) = 1 OR length({name}_r) = 1) "
            f"AND substr({name}_l, 1, 1) = substr({name}_r, 1, 1)",
            label_for_charts=f"{name} initial agrees",
            base_dialect_str="duckdb",
        ),
        _jaro_winkler_level(name, 0.7),
    ]
    return _custom(levels, name, "given name")


def _surname(column: CompareColumn) -> ComparisonCreator:
    name = column.name
    levels = [
        _exact(name, tf=True),
        *_swapped(column),
        _one_typo(name),
        _jaro_winkler_level(name, 0.88),
        _jaro_winkler_level(name, 0.7),
    ]
    return _custom(levels, name, "surname")


def _one_typo(name: str) -> cll.ComparisonLevelCreator:
    """One edit, or Jaro-Winkler at least 0.92: a typo in a long name or a short one."""
    return cll.Or(cll.JaroWinklerLevel(name, 0.92), _edits(name, 1)).configure(
        label_for_charts="one typo (one edit, or Jaro-Winkler >= 0.92)"
    )


def _date(column: CompareColumn) -> ComparisonCreator:
    name = column.name

    def part(side: str, start: int, length: int) -> str:
        return f"substr({name}_{side}, {start}, {length})"

    swapped = " AND ".join(
        f"{part('l', *a)} = {part('r', *b)}"
        for a, b in (((1, 4), (1, 4)), ((6, 2), (9, 2)), ((9, 2), (6, 2)))
    )
    levels = [
        _exact(name, tf=True),
        cll.CustomLevel(
            swapped, label_for_charts="day and month swapped", base_dialect_str="duckdb"
        ),
        _edits(name, 1),
        cll.CustomLevel(
            f"{part('l', 6, 5)} = {part('r', 6, 5)}",
            label_for_charts=f"{name} same day and month, another year",
            base_dialect_str="duckdb",
        ),
        cll.CustomLevel(
            f"{part('l', 1, 4)} = {part('r', 1, 4)}",
            label_for_charts=f"{name} same year",
            base_dialect_str="duckdb",
        ),
    ]
    return _custom(levels, name, "date")


def _one_edit(*, tf: bool, description: str) -> Callable[[CompareColumn], ComparisonCreator]:
    def build(column: CompareColumn) -> ComparisonCreator:
        levels = [_exact(column.name, tf=tf), _edits(column.name, 1)]
        return _custom(levels, column.name, description)

    return build


def _identifier(column: CompareColumn) -> ComparisonCreator:
    name = column.name
    levels = [
        _exact(name, tf=False),
        _edits(name, 1),
        _edits(name, 2),
    ]
    return _custom(levels, name, "identifier")


def _jaro_winkler(
    *thresholds: float, description: str
) -> Callable[[CompareColumn], ComparisonCreator]:
    def build(column: CompareColumn) -> ComparisonCreator:
        levels = [_exact(column.name, tf=True)]
        levels += [_jaro_winkler_level(column.name, t) for t in thresholds]
        return _custom(levels, column.name, description)

    return build


def _category(column: CompareColumn) -> ComparisonCreator:
    return _custom([_exact(column.name, tf=True)], column.name, "category")


def _exact_only(column: CompareColumn) -> ComparisonCreator:
    # An email one edit away is usually another person's address made from the same name
    # (`sarah.johnson@` and `sarahjohnson@`): a fuzzy level would count the name twice.
    return _custom([_exact(column.name, tf=True)], column.name, "email")


KINDS: dict[str, Callable[[CompareColumn], ComparisonCreator]] = {
    "given_name": _given_name,
    "surname": _surname,
    "date": _date,
    "email": _exact_only,
    "phone": _one_edit(tf=True, description="phone"),
    "postcode": _one_edit(tf=True, description="postcode"),
    "identifier": _identifier,
    "address": _jaro_winkler(0.95, 0.85, description="address"),
    "place": _jaro_winkler(0.9, description="place"),
    "text": _jaro_winkler(0.92, 0.8, description="text"),
    "category": _category,
}
