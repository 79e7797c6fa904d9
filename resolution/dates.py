"""Reading dates of birth from the ways people write them, and saying what could not be read.

A column's layout is decided from its own values: ISO (`1956-04-09`), compact
(`19560409`), day first or month first with `/`, `.` or `-` between the parts
(`09/04/1956`, `04/09/1956`), and ISO date-times. Day-first and month-first are
told apart by the values whose first or second part is above 12; when none is,
`month_first` decides (a guess, and the profile says so). Three columns holding
year, month and day are read with `from_parts`.

Every value comes out as `YYYY-MM-DD`. A value that is not a calendar date but
has the digits of one in the column's layout (`19560400`, month 31) keeps those
digits as `YYYY-MM-DD` text: it still agrees exactly or within one edit with
another record, and only the date arithmetic skips it. Anything else becomes
NULL. Both are counted (`DateReading.unreadable`, `.invalid`), never dropped
silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

__all__ = ["LAYOUTS", "DateReading", "from_parts", "read_dates"]

# Layout name -> pattern with groups (year, month, day) in the order the layout writes them.
_SEPARATED = r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})"
LAYOUTS: dict[str, re.Pattern[str]] = {
    "iso": re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.+\-Z]*)?"),
    "compact": re.compile(r"(\d{4})(\d{2})(\d{2})"),
    "year first, slashes": re.compile(r"(\d{4})[/.](\d{1,2})[/.](\d{1,2})"),
    "day first": re.compile(_SEPARATED),
    "month first": re.compile(_SEPARATED),
}
_ORDER = {"day first": (3, 2, 1), "month first": (3, 1, 2)}  # groups giving (year, month, day)
_EXAMPLES = 3


@dataclass(frozen=True)
class DateReading:
    """How a column of dates was read: values as `YYYY-MM-DD`, and what went wrong."""

    values: list[str | None]
    layout: str | None
    layouts_seen: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    invalid: int = 0
    unreadable_examples: tuple[str, ...] = ()
    guessed_order: bool = False

    def describe(self) -> str:
        """One line for a report: the layout and the counts."""
        if self.layout is None:
            return f"no date layout recognised; {self.unreadable:,} values unreadable"
        parts = [self.layout + (" (guessed: no day above 12)" if self.guessed_order else "")]
        if self.invalid:
            parts.append(f"{self.invalid:,} not calendar dates (kept as digits)")
        if self.unreadable:
            examples = ", ".join(repr(e) for e in self.unreadable_examples)
            parts.append(f"{self.unreadable:,} unreadable (e.g. {examples})")
        return "; ".join(parts)


def read_dates(values: Sequence[str | None], *, month_first: bool = False) -> DateReading:
    """Read a column of date strings, choosing its layout from the values themselves."""
    texts = [None if v is None else str(v).strip() or None for v in values]
    present = [t for t in texts if t is not None]
    seen = Counter(name for t in present for name in _matching_layouts(t))
    layout, guessed = _choose_layout(present, seen, month_first=month_first)
    out: list[str | None] = []
    unreadable: list[str] = []
    invalid = 0
    for text in texts:
        if text is None:
            out.append(None)
            continue
        parsed = _read(text, layout)
        if parsed is None:
            unreadable.append(text)
        elif not _is_calendar_date(parsed):
            invalid += 1
        out.append(parsed)
    return DateReading(
        values=out,
        layout=layout,
        layouts_seen=dict(seen),
        unreadable=len(unreadable),
        invalid=invalid,
        unreadable_examples=tuple(dict.fromkeys(unreadable))[:_EXAMPLES],
        guessed_order=guessed,
    )


def from_parts(
    years: Iterable[object], months: Iterable[object], days: Iterable[object]
) -> DateReading:
    """Dates from three columns (year, month, day), as `read_dates` would report them."""
    texts = []
    for y, m, d in zip(years, months, days, strict=True):
        parts = [None if v is None else str(v).strip() for v in (y, m, d)]
        texts.append(None if not all(parts) else f"{parts[0]}-{parts[1]}-{parts[2]}")
    reading = read_dates(texts)
    return DateReading(
        values=reading.values,
        layout="year, month and day columns" if reading.layout else None,
        layouts_seen=reading.layouts_seen,
        unreadable=reading.unreadable,
        invalid=reading.invalid,
        unreadable_examples=reading.unreadable_examples,
    )


def _matching_layouts(text: str) -> list[str]:
    return [name for name, pattern in LAYOUTS.items() if pattern.fullmatch(text)]


def _choose_layout(
    present: list[str], seen: Counter[str], *, month_first: bool
) -> tuple[str | None, bool]:
    if not seen:
        return None, False
    best = max(seen, key=lambda name: (seen[name], -list(LAYOUTS).index(name)))
    if best not in _ORDER:
        return best, False
    pattern = LAYOUTS["day first"]
    firsts = seconds = 0
    for text in present:
        match = pattern.fullmatch(text)
        if match:
            firsts += int(match.group(1)) > 12
            seconds += int(match.group(2)) > 12
    if firsts != seconds:
        return ("day first" if firsts > seconds else "month first"), False
    return ("month first" if month_first else "day first"), True


def _read(text: str, layout: str | None) -> str | None:
    """`YYYY-MM-DD` from `text` in `layout`, else in any unambiguous layout, else None."""
    for name in dict.fromkeys([layout, "iso", "compact", "year first, slashes"]):
        if name is None:
            continue
        match = LAYOUTS[name].fullmatch(text)
        if match is None:
            continue
        year, month, day = (match.group(i) for i in _ORDER.get(name, (1, 2, 3)))
        if int(month) > 99 or int(day) > 99:
            return None
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return None


def _is_calendar_date(iso: str) -> bool:
    try:
        date.fromisoformat(iso)
    except ValueError:
        return False
    return True
