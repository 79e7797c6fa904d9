"""Segment evaluation and refresh: every definition checked first, then evaluated, then recorded.

Evaluation follows the definitions' exclusions (an excluded segment is
evaluated first). Nothing is written before every definition has been checked
against the warehouse's fields, so a wrong rule stops the refresh untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

import duckdb
import pandas as pd

from segments.definition import (
    EXISTING_CUSTOMERS,
    SegmentDefinition,
    evaluation_order,
    validate_definitions,
)
from segments.fields import BASE_TABLE, Catalog, data_clock, prepare
from segments.lookalike import lookalike_propensity, top_lookalikes
from segments.membership import SegmentRun, record_run, utc_now
from segments.rules import compile_rule

__all__ = ["check_definitions", "evaluate_prepared", "evaluate_segments", "refresh_segments"]


def check_definitions(
    con: duckdb.DuckDBPyConnection,
    *,
    definitions: Sequence[SegmentDefinition],
    as_of: datetime | None = None,
) -> Catalog:
    """Validate `definitions` against the warehouse as of `as_of` (default: the data's clock)."""
    as_of = as_of or data_clock(con) or utc_now()
    catalog = prepare(con, as_of=as_of)
    validate_definitions(definitions, catalog=catalog)
    return catalog


def evaluate_segments(
    con: duckdb.DuckDBPyConnection,
    *,
    definitions: Sequence[SegmentDefinition],
    as_of: datetime | None = None,
    on_segment: Callable[[str], None] | None = None,
) -> dict[str, pd.Index]:
    """The members (customer ids, sorted) of every segment as of `as_of`.

    `on_segment(name)` is called as each segment is done (for progress bars).
    """
    catalog = check_definitions(con, definitions=definitions, as_of=as_of)
    return evaluate_prepared(con, definitions=definitions, catalog=catalog, on_segment=on_segment)


def evaluate_prepared(
    con: duckdb.DuckDBPyConnection,
    *,
    definitions: Sequence[SegmentDefinition],
    catalog: Catalog,
    on_segment: Callable[[str], None] | None = None,
) -> dict[str, pd.Index]:
    """`evaluate_segments` over evaluation tables already built by `segments.fields.prepare`
    on `con` and definitions already checked against its `catalog` (a live preview builds
    them once and evaluates many drafts)."""
    members: dict[str, pd.Index] = {}
    for definition in evaluation_order(definitions):
        found = _matching(con, definition.rule, catalog)
        if definition.lookalike is not None:
            found = _lookalikes(con, definition, candidates=found, catalog=catalog)
        if definition.exclude is not None:
            if definition.exclude.rule is not None:
                found = found.difference(_matching(con, definition.exclude.rule, catalog))
            if definition.exclude.existing_customers:
                found = found.difference(_matching(con, EXISTING_CUSTOMERS, catalog))
            for other in definition.exclude.segments:
                found = found.difference(members[other])
        members[definition.name] = found.sort_values()
        if on_segment is not None:
            on_segment(definition.name)
    return members


def refresh_segments(
    con: duckdb.DuckDBPyConnection,
    *,
    definitions: Sequence[SegmentDefinition],
    as_of: datetime | None = None,
    run_id: str | None = None,
    on_segment: Callable[[str], None] | None = None,
) -> list[SegmentRun]:
    """Evaluate every segment and record membership changes as one run."""
    as_of = as_of or data_clock(con) or utc_now()
    members = evaluate_segments(con, definitions=definitions, as_of=as_of, on_segment=on_segment)
    return record_run(
        con,
        run_id=run_id or uuid.uuid4().hex[:12],
        evaluated_at=utc_now(),
        as_of=as_of,
        members=members,
    )


def _matching(con: duckdb.DuckDBPyConnection, rule, catalog: Catalog) -> pd.Index:
    where, params = compile_rule(rule, as_of=catalog.as_of) if rule is not None else ("TRUE", [])
    ids = con.execute(f"SELECT customer_id FROM {BASE_TABLE} b WHERE {where}", params).df()
    return pd.Index(ids["customer_id"], name="customer_id")


def _lookalikes(
    con: duckdb.DuckDBPyConnection,
    definition: SegmentDefinition,
    *,
    candidates: pd.Index,
    catalog: Catalog,
) -> pd.Index:
    spec = definition.lookalike
    names = sorted({f for pattern in spec.features for f in catalog.numeric_fields(pattern)})
    columns = ", ".join(f'b."{name}"' for name in names)
    features = con.execute(f"SELECT customer_id, {columns} FROM {BASE_TABLE} b").df()
    features = features.set_index("customer_id")
    seed = _matching(con, spec.seed, catalog)
    propensity = lookalike_propensity(
        features=features, seed=pd.Series(True, index=seed), seed_name=definition.name
    )
    return top_lookalikes(
        propensity=propensity, candidates=candidates.difference(seed), top_percent=spec.top_percent
    )
