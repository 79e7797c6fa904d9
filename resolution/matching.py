"""Probabilistic matching of person-like records, and the stored scored pairs.

The Splink input ("candidates") is one row per distinct set of person
attributes within a deterministic component: records that already share an
identifier and read identically are scored once, and two identical records
that share nothing (two "John Smith" store orders) stay separate rows, so
collapsing never links anyone by itself. Each candidate is named by its
smallest record uid, which keeps a stored match meaningful across runs.

The warehouse keeps the scored candidates (`resolution_candidates`) and every
pair Splink scored with its match probability (`resolution_pairs`): clustering
merges on the pairs above the threshold and checks them against all the others
(`resolution.linkage`); incremental runs add to both.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from resolution.linkage import PAIRS
from resolution.model import MATCH_COLUMNS, MatchModel
from resolution.records import RECORDS, existing_tables
from warehouse.engine import Engine

__all__ = [
    "CANDIDATES",
    "MATCH_SCHEMA",
    "build_candidates",
    "score_all",
    "store_matches",
]

CANDIDATES = "resolution_candidates"

MATCH_SCHEMA = pa.schema(
    [
        ("unique_id_l", pa.string()),
        ("unique_id_r", pa.string()),
        ("match_weight", pa.float64()),
        ("match_probability", pa.float64()),
    ]
)


def build_candidates(
    con: duckdb.DuckDBPyConnection,
    *,
    columns: Sequence[str] = MATCH_COLUMNS,
    only_uids: str | None = None,
) -> pa.Table:
    """Candidates of the person-like records (restricted to the uids `only_uids` selects)."""
    restrict = f"AND r.uid IN ({only_uids})" if only_uids else ""
    attributes = ", ".join(f"CAST(r.{c} AS VARCHAR) AS {c}" for c in columns)
    return con.sql(f"""
        SELECT min(uid) AS unique_id, {", ".join(columns)}
        FROM (
            SELECT r.uid, n.det_component, {attributes}
            FROM {RECORDS} r JOIN res_record_nodes n USING (uid)
            WHERE r.is_person {restrict}
        )
        GROUP BY det_component, {", ".join(columns)}
        ORDER BY unique_id
    """).to_arrow_table()


def score_all(
    con: duckdb.DuckDBPyConnection,
    *,
    model: MatchModel | None,
    candidates: pa.Table,
    threshold: float,
    max_comparisons: int,
    engine: Engine | None = None,
) -> dict[str, int]:
    """Score every blocked pair of `candidates` (with Splink on `engine`, DuckDB by default);
    replace the stored candidates and pairs."""
    if model is None or candidates.num_rows < 2:
        matches = MATCH_SCHEMA.empty_table()
        comparisons = 0
    else:
        model.check_blocking([candidates], max_comparisons=max_comparisons)
        matches = model.predict(candidates, engine=engine)
        comparisons = matches.num_rows
    con.execute(f"DROP TABLE IF EXISTS {CANDIDATES}")
    con.execute(f"DROP TABLE IF EXISTS {PAIRS}")
    store_matches(con, candidates=candidates, matches=matches)
    above = pc.sum(pc.greater_equal(matches.column("match_probability"), threshold)).as_py()
    return {"comparisons": comparisons, "matches": above or 0}


def store_matches(
    con: duckdb.DuckDBPyConnection, *, candidates: pa.Table, matches: pa.Table
) -> None:
    """Append `candidates` and `matches` to the stored tables, creating them when absent."""
    present = existing_tables(con)
    con.register("res_new_candidates", candidates)
    con.register("res_new_matches", _typed_matches(matches))
    if CANDIDATES not in present:
        con.execute(f"CREATE TABLE {CANDIDATES} AS SELECT * FROM res_new_candidates LIMIT 0")
    if PAIRS not in present:
        con.execute(f"""
            CREATE TABLE {PAIRS} (unique_id_l VARCHAR, unique_id_r VARCHAR,
                                    match_weight DOUBLE, match_probability DOUBLE)
        """)
    con.execute(f"INSERT INTO {CANDIDATES} BY NAME SELECT * FROM res_new_candidates")
    con.execute(f"INSERT INTO {PAIRS} BY NAME SELECT * FROM res_new_matches")
    con.unregister("res_new_candidates")
    con.unregister("res_new_matches")


def _typed_matches(matches: pa.Table) -> pa.Table:
    return matches.select(MATCH_SCHEMA.names).cast(MATCH_SCHEMA)
