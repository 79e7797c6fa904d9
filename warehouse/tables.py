"""The names of the tables the packages share: one home for each, read by every stage.

Tables are the contracts between packages (`docs/tables.md` says what each holds). A
stage names a table through these constants, never by a string of its own, so that a
table is renamed in one place and a reader can find every use of it. Raw tables are named
after their source (`raw_table`, declared in the source catalog, `warehouse.sources`);
feature tables after their group (`feature_table`). Tables private to one stage (Splink's
working tables, temporary ones) are named in that stage's own module.
"""

from __future__ import annotations

import duckdb

__all__ = [
    "ACTIVATION_BATCHES",
    "ACTIVATION_LOG",
    "CURRENT_SCORES",
    "CUSTOMER_CONSENTS",
    "CUSTOMER_IDENTIFIERS",
    "CUSTOMER_ID_CHANGES",
    "IDENTITY_MAP",
    "JOURNEY_DEAD_LETTERS",
    "JOURNEY_ENROLLMENTS",
    "JOURNEY_SENDS",
    "JOURNEY_STEPS",
    "LOAD_LOG",
    "PROFILES",
    "QUARANTINE",
    "SCORES",
    "SEGMENT_MEMBERSHIP",
    "SEGMENT_RUNS",
    "STREAM_IDENTIFIERS",
    "STREAM_RECORDS",
    "feature_table",
    "raw_table",
    "table_names",
]

# warehouse: loading
QUARANTINE = "quarantine"
LOAD_LOG = "load_log"
# resolution
IDENTITY_MAP = "identity_map"
CUSTOMER_IDENTIFIERS = "customer_identifiers"
PROFILES = "profiles"
CUSTOMER_CONSENTS = "customer_consents"
CUSTOMER_ID_CHANGES = "customer_id_changes"
# models
SCORES = "scores"
CURRENT_SCORES = "current_scores"
# segments
SEGMENT_RUNS = "segment_runs"
SEGMENT_MEMBERSHIP = "segment_membership"
ACTIVATION_LOG = "activation_log"
ACTIVATION_BATCHES = "activation_batches"
# segments: the stream worker's ties of new events to customers, until resolution's next run
STREAM_RECORDS = "stream_records"
STREAM_IDENTIFIERS = "stream_identifiers"
# segments: journeys
JOURNEY_ENROLLMENTS = "journey_enrollments"
JOURNEY_STEPS = "journey_steps"
JOURNEY_SENDS = "journey_sends"
JOURNEY_DEAD_LETTERS = "journey_dead_letters"


def raw_table(source: str) -> str:
    """The raw table of a source: `raw_<source>`."""
    return f"raw_{source}"


def feature_table(group: str) -> str:
    """The snapshot table of a feature group: `customer_<group>_features`."""
    return f"customer_{group}_features"


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views in the connection's main schema."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}
