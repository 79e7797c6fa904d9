"""Blocking chosen from the columns present, within a comparison budget.

Splink scores only the pairs its blocking rules generate, so the rules decide
which true pairs can be found at all. Rather than a fixed list that silently
misses whatever it does not name, the candidates are every rule the columns
allow: exact agreement on each column that can stand alone (identifiers,
emails, phones, dates, postcodes, names, addresses), on every pair of columns,
(two weak ones, like city and state, never together), and on first and last
names swapped. Each is counted from its block sizes (Splink's
`n_largest_blocks`: exact for rules of equalities, and cheap); then, cheapest
first, a rule is kept while the sum of the kept rules' comparisons stays within
the budget (`budget_for`: a number of comparisons per record, with a floor, so
it scales with the table). A rule implied by a kept one (asking for all of its
equalities and more) adds nothing and is dropped. A record pair found by any
kept rule is scored; the rules' counts, alone and beyond the ones before
(Splink's blocking analysis on a sample), are reported.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from splink.blocking_analysis import count_comparisons_from_blocking_rules, n_largest_blocks
from splink.internals.splink_dataframe import SplinkDataFrame

from resolution.comparisons import CompareColumn

__all__ = ["BlockingChoice", "RuleCount", "budget_for", "candidate_rules", "choose_blocking"]

# Kinds whose exact agreement alone is a sensible block; the others only in pairs, and
# never two weak ones together (a city and a state agree for whole neighbourhoods).
ALONE = {"identifier", "email", "phone", "date", "postcode", "given_name", "surname", "address"}
WEAK = {"category", "place"}
MARGINAL_SAMPLE_PAIRS = 2_000_000  # pairs materialized to count the kept rules' union


@dataclass(frozen=True)
class RuleCount:
    """A blocking rule and the comparisons it generates (alone, and beyond earlier rules)."""

    rule: str
    comparisons: int
    marginal: int | None = None


@dataclass
class BlockingChoice:
    """The rules kept, in order with their counts, and the candidates left out."""

    budget: int
    kept: list[RuleCount] = field(default_factory=list)
    left_out: list[RuleCount] = field(default_factory=list)
    counted: list[RuleCount] = field(default_factory=list)  # every candidate, counted alone

    @property
    def rules(self) -> list[str]:
        return [r.rule for r in self.kept]

    @property
    def comparisons(self) -> int:
        return sum(r.marginal or 0 for r in self.kept)


def budget_for(n_records: int, *, per_record: int, floor: int) -> int:
    """Comparisons the blocking may generate for a table of `n_records`."""
    return max(floor, per_record * n_records)


def conditions(rule: str) -> frozenset[str]:
    """The equalities a rule asks for; a rule asking for more finds a subset of the pairs."""
    return frozenset(part.strip() for part in re.split(r"\s+AND\s+", rule, flags=re.I))


def _equal(*columns: str) -> str:
    return " AND ".join(f"l.{c} = r.{c}" for c in columns)


def candidate_rules(columns: Sequence[CompareColumn]) -> list[str]:
    """Every candidate rule the columns allow, singles first."""
    rules = [_equal(c.name) for c in columns if c.kind in ALONE]
    rules += [
        _equal(a.name, b.name)
        for a, b in itertools.combinations(columns, 2)
        if not {a.kind, b.kind} <= WEAK
    ]
    rules += [
        f"l.{c.name} = r.{c.partner} AND l.{c.partner} = r.{c.name}"
        for c in columns
        if c.kind == "given_name" and c.partner
    ]
    rules += [  # one name and the other's initial: a typo anywhere but the first letter
        f"l.{c.name} = r.{c.name} AND substr(l.{c.partner}, 1, 1) = substr(r.{c.partner}, 1, 1)"
        for c in columns
        if c.kind in ("given_name", "surname") and c.partner
    ]
    return rules


def count_rules(
    frames: SplinkDataFrame | Sequence[SplinkDataFrame],
    rules: Sequence[str],
    *,
    link_type: str = "dedupe_only",
) -> list[RuleCount]:
    """Each rule's comparisons alone, from the sizes of its blocks (Splink's
    `n_largest_blocks`, every block): exact for rules of equalities, and cheap."""
    counted = []
    for rule in dict.fromkeys(rules):
        blocks = n_largest_blocks(
            frames, blocking_rule=rule, link_type=link_type, n_largest=2**31 - 1
        )
        row = blocks.query_sql(
            "SELECT coalesce(sum(block_count), 0) AS pairs, coalesce(sum(count_l), 0) AS selves "
            "FROM {this}"
        ).as_record_list()[0]
        blocks.drop_table_from_database_and_remove_from_cache()
        if link_type == "link_only":  # one side against the other: each pair once
            counted.append(RuleCount(rule, int(row["pairs"])))
            continue
        same = all(same_column(part) for part in conditions(rule))
        selves = row["selves"] if same else 0  # a record is in its own block once
        counted.append(RuleCount(rule, int(row["pairs"] - selves) // 2))
    return counted


def same_column(condition: str) -> bool:
    """Whether an equality compares a column (or an expression of it) with itself."""
    sides = [side.strip() for side in condition.split("=")]
    return len(sides) == 2 and re.sub(r"\bl\.", "", sides[0]) == re.sub(r"\br\.", "", sides[1])


def with_marginals(
    frame: SplinkDataFrame, rules: Sequence[RuleCount], *, link_type: str = "dedupe_only"
) -> list[RuleCount]:
    """The rules with their comparisons beyond the rules before them (the union, in
    order), counted by Splink's blocking analysis on a sample of at most ~2M pairs."""
    if not rules:
        return []
    total = sum(r.comparisons for r in rules)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The sampled blocking analysis")
        rows = count_comparisons_from_blocking_rules(
            frame,
            blocking_rules=[r.rule for r in rules],
            link_type=link_type,
            record_sample_proportion=min(1.0, math.sqrt(MARGINAL_SAMPLE_PAIRS / max(total, 1))),
        )
    return [
        RuleCount(r.rule, r.comparisons, int(row["marginal_comparison_count"]))
        for r, row in zip(rules, rows, strict=True)
    ]


def choose_blocking(
    frame: SplinkDataFrame,
    *,
    columns: Sequence[CompareColumn],
    budget: int,
    link_type: str = "dedupe_only",
) -> BlockingChoice:
    """Keep candidate rules, cheapest first, while their comparisons fit in `budget`."""
    counted = sorted(
        count_rules(frame, candidate_rules(columns), link_type=link_type),
        key=lambda r: (r.comparisons, len(conditions(r.rule)), r.rule),
    )
    kept: list[RuleCount] = []
    left_out: list[RuleCount] = []
    spent = 0
    for candidate in counted:
        needs = conditions(candidate.rule)
        if any(conditions(k.rule) <= needs for k in kept) or candidate.comparisons == 0:
            continue
        if spent + candidate.comparisons > budget:
            left_out.append(candidate)
            continue
        kept.append(candidate)
        spent += candidate.comparisons
    # A rule kept early may be implied by a broader one kept later.
    kept = [k for k in kept if not any(conditions(o.rule) < conditions(k.rule) for o in kept)]
    kept = with_marginals(frame, kept, link_type=link_type)
    return BlockingChoice(budget=budget, kept=kept, left_out=left_out, counted=counted)
