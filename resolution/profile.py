"""What is in each column of a table to resolve: fill, distinct values, shape, and kind.

The profile decides how a column that plays no known role is compared: an
id-like column (mostly one token, long enough, many distinct values: a social
security or member number) is an `identifier`, compared with edit-distance
levels so that one typo does not count against the pair; free text with many
distinct values is `text` (Jaro-Winkler); anything with few distinct values
(a state, a gender, a house number) is a `category`, compared exactly with
term frequencies. It is also what `cip resolve file` prints, with how each
date column was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from resolution.dates import DateReading

__all__ = ["ColumnProfile", "TableProfile", "extra_kind", "profile_columns"]

IDENTIFIER_MIN_LENGTH = 5
IDENTIFIER_MIN_DISTINCT_SHARE = 0.2
TEXT_MIN_DISTINCT = 50
TEXT_MIN_DISTINCT_SHARE = 0.05


@dataclass(frozen=True)
class ColumnProfile:
    """One column after normalization: how full, how varied, what shape, which kind."""

    column: str
    source: str  # the input column (or columns) it came from
    kind: str
    records: int
    filled: int
    distinct: int
    mean_length: float
    one_token_share: float
    digit_share: float = 0.0  # values made of digits only
    unreadable: int = 0  # values in the input that normalization could not use
    reading: DateReading | None = None

    @property
    def null_share(self) -> float:
        return 1 - self.filled / self.records if self.records else 0.0

    def as_row(self) -> dict[str, object]:
        """The profile as a flat row for a printed table."""
        return {
            "column": self.column,
            "from": self.source,
            "kind": self.kind,
            "filled": f"{1 - self.null_share:.1%}",
            "distinct": self.distinct,
            "mean length": round(self.mean_length, 1),
            "notes": self.reading.describe()
            if self.reading
            else (f"{self.unreadable:,} values unreadable" if self.unreadable else ""),
        }


@dataclass
class TableProfile:
    """The profile of every compared column of a table."""

    records: int
    columns: list[ColumnProfile] = field(default_factory=list)

    def __getitem__(self, column: str) -> ColumnProfile:
        for profile in self.columns:
            if profile.column == column:
                return profile
        raise KeyError(column)

    @property
    def usable(self) -> list[ColumnProfile]:
        """Columns with at least two filled values (anything else cannot link records)."""
        return [c for c in self.columns if c.filled >= 2]


def extra_kind(
    *, filled: int, distinct: int, mean_length: float, one_token_share: float, digit_share: float
) -> str:
    """The comparison kind of a column that plays no known role, from its shape."""
    if not filled:
        return "category"
    share = distinct / filled
    if (
        one_token_share >= 0.9
        and mean_length >= IDENTIFIER_MIN_LENGTH
        and share >= IDENTIFIER_MIN_DISTINCT_SHARE
    ):
        return "identifier"
    if distinct >= TEXT_MIN_DISTINCT and share >= TEXT_MIN_DISTINCT_SHARE and digit_share < 0.5:
        return "text"
    return "category"  # few values, or short numbers (a house number)


def profile_columns(
    table: pa.Table,
    *,
    kinds: Mapping[str, str | None],
    sources: Mapping[str, str] | None = None,
    readings: Mapping[str, DateReading] | None = None,
    filled_in_input: Mapping[str, int] | None = None,
) -> TableProfile:
    """Profile `table`'s columns named in `kinds` (None: choose the kind from the shape).

    `filled_in_input` gives a column's filled values before normalization, so that
    the ones normalization could not read are counted.
    """
    sources = sources or {}
    readings = readings or {}
    filled_in_input = filled_in_input or {}
    columns: Sequence[str] = [c for c in kinds if c in table.column_names]
    con = duckdb.connect()
    try:
        con.register("profiled", table.select(list(columns)))
        stats = [
            f"""count("{c}"), count(DISTINCT "{c}"),
                coalesce(avg(length(CAST("{c}" AS VARCHAR))), 0),
                coalesce(avg(CASE WHEN CAST("{c}" AS VARCHAR) NOT LIKE '% %'
                                  THEN 1.0 ELSE 0.0 END), 0),
                coalesce(avg(CASE WHEN regexp_full_match(CAST("{c}" AS VARCHAR), '[0-9]+')
                                  THEN 1.0 ELSE 0.0 END), 0)"""
            for c in columns
        ]
        row = con.execute(f"SELECT {', '.join(stats)} FROM profiled").fetchall()[0] if stats else ()
    finally:
        con.close()
    profiles = []
    for i, column in enumerate(columns):
        filled, distinct, mean_length, one_token, digits = row[5 * i : 5 * i + 5]
        kind = kinds[column] or extra_kind(
            filled=filled,
            distinct=distinct,
            mean_length=mean_length,
            one_token_share=one_token,
            digit_share=digits,
        )
        profiles.append(
            ColumnProfile(
                column=column,
                source=sources.get(column, column),
                kind=kind,
                records=table.num_rows,
                filled=int(filled),
                distinct=int(distinct),
                mean_length=float(mean_length),
                one_token_share=float(one_token),
                digit_share=float(digits),
                unreadable=max(0, filled_in_input.get(column, filled) - filled),
                reading=readings.get(column),
            )
        )
    return TableProfile(records=table.num_rows, columns=profiles)
