"""The append-only `scores` table: one block of rows per scoring, and the current view.

`Champions.score` computes the rows (reasons only for the top deciles, because
they cost milliseconds each against microseconds for a prediction);
`append_scores` stores them under a new `scoring_id` with the model versions;
the view `current_scores` shows the latest scoring: customers merged away by
resolution, or no longer active, drop out of it rather than keep a stale score.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import orjson
import pandas as pd

__all__ = ["SCORE_COLUMNS", "append_scores", "ensure_scores_table"]

SCORE_COLUMNS = {
    "scoring_id": "VARCHAR",
    "customer_id": "VARCHAR",
    "churn_probability": "DOUBLE",
    "churn_decile": "INTEGER",
    "predicted_ltv": "DOUBLE",
    "ltv_decile": "INTEGER",
    "expected_orders": "DOUBLE",
    "churn_reasons": "JSON",
    "ltv_reasons": "JSON",
    "churn_model_version": "VARCHAR",
    "ltv_model_version": "VARCHAR",
    "orders_model_version": "VARCHAR",
    "feature_service": "VARCHAR",
    "as_of": "TIMESTAMP",
    "scored_at": "TIMESTAMP",
}


def ensure_scores_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create `scores` and the `current_scores` view when missing."""
    columns = ", ".join(f"{name} {kind}" for name, kind in SCORE_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS scores ({columns})")
    for name, kind in SCORE_COLUMNS.items():  # columns added since the table was made
        con.execute(f"ALTER TABLE scores ADD COLUMN IF NOT EXISTS {name} {kind}")
    con.execute(
        """CREATE OR REPLACE VIEW current_scores AS
        SELECT * FROM scores WHERE scoring_id = (
            SELECT scoring_id FROM scores ORDER BY scored_at DESC, scoring_id DESC LIMIT 1)"""
    )


def append_scores(
    con: duckdb.DuckDBPyConnection,
    scores: pd.DataFrame,
    *,
    scoring_id: str,
    versions: dict[str, str],
    feature_service: str,
    as_of: datetime,
    scored_at: datetime,
) -> int:
    """Append one scoring to `scores`; returns the rows written.

    `scores` has `customer_id` and the columns of `Champions.score` (reasons as
    lists or None, stored as JSON).
    """
    ensure_scores_table(con)
    frame = scores.assign(
        **{c: scores[c].map(_json) for c in ("churn_reasons", "ltv_reasons") if c in scores},
        scoring_id=scoring_id,
        churn_model_version=versions["churn"],
        ltv_model_version=versions["ltv"],
        orders_model_version=versions.get("orders"),
        feature_service=feature_service,
        as_of=pd.Timestamp(as_of),
        scored_at=pd.Timestamp(scored_at),
    ).reindex(columns=list(SCORE_COLUMNS))
    con.register("_new_scores", frame)
    try:
        con.execute(f"INSERT INTO scores ({', '.join(SCORE_COLUMNS)}) SELECT * FROM _new_scores")
    finally:
        con.unregister("_new_scores")
    return len(frame)


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
