"""Incremental resolution: link records that arrived after the last run.

Only the new records' candidates are scored by Splink, against the stored
candidates (`predict_between`) and among themselves (`predict_within`), with
the saved model and its term frequencies. The deterministic graph and the
clustering are cheap and are recomputed over all records, so an incremental
run reaches the same clusters as a full run on the same data: every pair the
full run would score is either stored from an earlier run or scored now.
"""

from __future__ import annotations

import duckdb
import pyarrow.compute as pc

from resolution.matching import CANDIDATES, MATCH_SCHEMA, build_candidates, store_matches
from resolution.model import MatchModel
from resolution.records import RECORDS, existing_tables

__all__ = ["NEW_RECORDS", "can_run_incrementally", "score_new"]

IDENTITY_MAP = "identity_map"
NEW_RECORDS = f"""
    SELECT r.uid FROM {RECORDS} r
    ANTI JOIN {IDENTITY_MAP} m ON m.source = r.source AND m.record_key = r.record_key
"""


def can_run_incrementally(con: duckdb.DuckDBPyConnection) -> bool:
    """True when an earlier run left an identity map and stored candidates to build on."""
    return {IDENTITY_MAP, CANDIDATES} <= existing_tables(con)


def score_new(
    con: duckdb.DuckDBPyConnection,
    *,
    model: MatchModel,
    threshold: float,
    max_comparisons: int,
) -> dict[str, int]:
    """Score the new records' candidates and append them and their matches to the store."""
    n_new = con.execute(f"SELECT count(*) FROM ({NEW_RECORDS})").fetchall()[0][0]
    existing = con.sql(f"SELECT * FROM {CANDIDATES}").to_arrow_table()
    columns = [c for c in existing.column_names if c != "unique_id"]
    new = build_candidates(con, columns=columns, only_uids=NEW_RECORDS)
    if new.num_rows == 0:
        matches = MATCH_SCHEMA.empty_table()
    elif existing.num_rows == 0:
        model.check_blocking([new], max_comparisons=max_comparisons)
        matches = model.predict(new)
    else:
        model.check_blocking(
            [new, existing], max_comparisons=max_comparisons, link_type="link_only"
        )
        matches = model.predict_new(existing, new)
    comparisons = matches.num_rows
    store_matches(con, candidates=new, matches=matches)
    above = pc.sum(pc.greater_equal(matches.column("match_probability"), threshold)).as_py()
    return {"new_records": n_new, "comparisons": comparisons, "matches": above or 0}
