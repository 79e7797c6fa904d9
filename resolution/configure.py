"""A Splink model configured from the data itself: comparisons, blocking, training.

`configure` takes the records to match (one row per candidate, `unique_id`
plus attribute columns), profiles them, gives each usable column the
comparison of its kind (`resolution.comparisons`), chooses blocking rules
within the comparison budget (`resolution.blocking`) and trains the model
(`resolution.training`). It returns Splink's settings dict, parameters
included, and `ModelChoices`: what was chosen and why, for the user to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pyarrow as pa
from splink import DuckDBAPI, SettingsCreator

from resolution.blocking import BlockingChoice, budget_for, choose_blocking
from resolution.comparisons import NICKNAME_SUFFIX, CompareColumn, plan
from resolution.given_names import related_names
from resolution.profile import TableProfile
from resolution.settings import ResolutionSettings
from resolution.training import TrainingReport, train

__all__ = [
    "ModelChoices",
    "NoUsableColumn",
    "add_nicknames",
    "compare_columns",
    "configure",
]

_PARTNERS = {"first_name": "last_name", "last_name": "first_name"}


class NoUsableColumn(ValueError):
    """Nothing in the table can tell records apart or bring them together."""


@dataclass
class ModelChoices:
    """What `configure` chose: the profile, the compared columns, blocking and training."""

    profile: TableProfile
    columns: list[CompareColumn]
    blocking: BlockingChoice
    training: TrainingReport = field(default_factory=TrainingReport)


def compare_columns(profile: TableProfile, *, first_name_nicknames: bool) -> list[CompareColumn]:
    """A `CompareColumn` per usable profiled column (roles by name, the rest by kind)."""
    usable = {c.column: c for c in profile.usable if c.distinct >= 2 or c.kind != "category"}
    columns = []
    for name, column in usable.items():
        partner = _PARTNERS.get(name) if column.kind in ("given_name", "surname") else None
        columns.append(
            CompareColumn(
                name=name,
                kind=column.kind,
                partner=partner if partner in usable else None,
                nicknames=first_name_nicknames and column.kind == "given_name",
            )
        )
    return columns


def configure(
    table: pa.Table, *, settings: ResolutionSettings, profile: TableProfile
) -> tuple[dict[str, Any], ModelChoices]:
    """Choose comparisons and blocking for `table`'s profiled columns, and train the model."""
    columns = compare_columns(profile, first_name_nicknames=True)
    if not columns:
        names = ", ".join(c.source for c in profile.columns) or "none"
        raise NoUsableColumn(
            f"no column can link records: every mapped column ({names}) is empty or holds "
            "a single value"
        )
    table = add_nicknames(table, [c.name for c in columns if c.nicknames])
    db = DuckDBAPI()
    try:
        blocking = choose_blocking(
            db.register(table),
            columns=columns,
            budget=budget_for(
                table.num_rows,
                per_record=settings.comparisons_per_record,
                floor=settings.min_comparisons,
            ),
        )
    finally:
        db.duckdb_con.close()
    if not blocking.kept:
        raise NoUsableColumn(
            "no blocking rule fits the comparison budget "
            f"({blocking.budget:,}); the cheapest needs {blocking.left_out[0].comparisons:,}. "
            "Raise resolution.comparisons_per_record or map a more selective column."
            if blocking.left_out
            else "no two records agree exactly on any column: there is nothing to block on"
        )
    planned = plan(columns)
    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[c.creator for c in planned],
        blocking_rules_to_generate_predictions=blocking.rules,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    trained, report = train(
        table,
        settings=creator,
        columns=columns,
        comparisons=planned,
        candidates=blocking.counted,
        prior_recall=settings.prior_recall,
        max_pairs_u=settings.max_pairs_u,
        max_pairs_em=settings.max_pairs_em,
        seed=settings.seed,
    )
    return trained, ModelChoices(
        profile=profile, columns=columns, blocking=blocking, training=report
    )


def add_nicknames(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """`table` with `<name>_nicknames`: each given name's known nicknames and formal names."""
    for name in names:
        if name + NICKNAME_SUFFIX in table.column_names or name not in table.column_names:
            continue
        values = table.column(name).to_pylist()
        table = table.append_column(
            name + NICKNAME_SUFFIX,
            pa.array([_nicknames(v) if v else None for v in values], pa.list_(pa.string())),
        )
    return table


@cache
def _nicknames(name: str) -> list[str]:
    return sorted(related_names(name))
