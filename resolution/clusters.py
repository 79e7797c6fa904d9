"""Clusters into customers: stable customer ids, the change log and the identity map.

Deterministic components are merged on Splink's scored pairs (strongest
first, checked by average linkage: `resolution.linkage`) and on forced links
such as name links, into clusters (connected components once more). Each cluster then gets a
`customer_id` that survives re-runs: the previous identity map says which
customer each record belonged to, and ids are handed out greedily by overlap
(largest first), so

- a cluster that persists keeps its id;
- when clusters merge, the survivor keeps the id of the largest part and the
  others are logged `merged` into it;
- when a cluster splits, its largest part keeps the id and each other part gets
  a new id, logged as `split` off the old one;
- a cluster with no history gets a new id (`created`); an id whose records are
  all gone is `retired`.

The history is the previous identity map and the records the stream worker tied to
customers since (`stream_records`, provisional customers included), so a provisional
customer keeps its id, or is logged `merged` into the customer it turned out to be.

New ids are derived from the cluster's smallest record uid, so the same data
gives the same ids however it was reached (full or incremental).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from resolution.graph import IDENTIFIERS, drop_labels, label_records
from resolution.linkage import PAIRS
from resolution.records import RECORDS, existing_tables
from warehouse.engine import Engine
from warehouse.tables import STREAM_IDENTIFIERS, STREAM_RECORDS

__all__ = [
    "CHANGES",
    "IDENTIFIER_TABLE",
    "IDENTITY_MAP",
    "LINK_TYPES",
    "NO_IDENTIFYING_DATA",
    "assign_customer_ids",
    "cluster",
    "write_identity_map",
]

IDENTITY_MAP = "identity_map"
CHANGES = "customer_id_changes"
IDENTIFIER_TABLE = "customer_identifiers"
LINK_TYPES = ("deterministic", "probabilistic", "singleton")
NO_IDENTIFYING_DATA = "no identifying data"


def cluster(
    con: duckdb.DuckDBPyConnection,
    *,
    merges: np.ndarray,
    links: Sequence[str] = (),
    engine: Engine | None = None,
) -> int:
    """Write `res_clusters(uid, cluster)`: deterministic components merged as `merges`
    says (pairs of components, from `resolution.linkage`) and on the pairs
    (`unique_id_l`, `unique_id_r`) of the tables `links` names (components on `engine`,
    DuckDB and scipy by default).

    The graph's nodes are the deterministic components, not the records: a record
    only joins its own component, so the clusters are the same, and numbered the same
    (components are numbered in order of their smallest record, as clusters are)."""
    n_components = con.execute(
        "SELECT coalesce(max(det_component) + 1, 0) FROM res_record_nodes"
    ).fetchall()[0][0]
    forced = " UNION ALL ".join(f"SELECT unique_id_l, unique_id_r FROM {t}" for t in links)
    forced = forced or "SELECT NULL AS unique_id_l, NULL AS unique_id_r WHERE FALSE"
    con.register("res_merges", {"a": merges[:, 0], "b": merges[:, 1]})
    edges = f"""
        SELECT l.det_component AS a, r.det_component AS b FROM ({forced}) m
        JOIN res_record_nodes l ON l.uid = m.unique_id_l
        JOIN res_record_nodes r ON r.uid = m.unique_id_r
        UNION ALL
        SELECT a, b FROM res_merges
    """
    found = label_records(
        con, edges=edges, n_records=n_components, name="res_labels", engine=engine
    )
    con.execute("""
        CREATE OR REPLACE TEMP TABLE res_clusters AS
        SELECT n.uid, l.label::BIGINT AS cluster
        FROM res_record_nodes n JOIN res_labels l ON l.node = n.det_component
    """)
    drop_labels(con, "res_labels")
    con.unregister("res_merges")
    return found


def new_customer_id(seed: str, taken: set[str]) -> str:
    """A customer id derived from `seed` (a record uid), avoiding the ids in `taken`."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{seed}#{salt}".encode()).hexdigest()[:16]
        candidate = f"cus_{digest}"
        if candidate not in taken:
            return candidate
        salt += 1


def assign_customer_ids(
    con: duckdb.DuckDBPyConnection, *, run_id: str, now: datetime
) -> dict[str, int]:
    """Write `res_customers(cluster, customer_id)` and append this run's id changes."""
    tables = existing_tables(con)
    previous = (
        f"SELECT source || '|' || record_key AS uid, customer_id FROM {IDENTITY_MAP}"
        if IDENTITY_MAP in tables
        else "SELECT NULL::VARCHAR AS uid, NULL::VARCHAR AS customer_id WHERE FALSE"
    )
    if STREAM_RECORDS in tables:  # the stream worker's ties since the last run count too
        mapped = (
            f"ANTI JOIN {IDENTITY_MAP} USING (source, record_key)" if IDENTITY_MAP in tables else ""
        )
        previous += (
            f" UNION ALL SELECT source || '|' || record_key, customer_id FROM {STREAM_RECORDS} "
            f"{mapped}"
        )
    overlaps = con.execute(f"""
        SELECT c.cluster, p.customer_id, count(*) AS n
        FROM res_clusters c JOIN ({previous}) p USING (uid)
        GROUP BY ALL ORDER BY n DESC, p.customer_id, c.cluster
    """).fetchall()
    seeds = dict(con.execute("SELECT cluster, min(uid) FROM res_clusters GROUP BY 1").fetchall())
    old_ids = {
        i for (i,) in con.execute(f"SELECT DISTINCT customer_id FROM ({previous})").fetchall()
    }
    ever = _ids_in_change_log(con)

    assigned: dict[int, str] = {}
    used: set[str] = set()
    for cluster_id, old_id, _ in overlaps:
        if cluster_id not in assigned and old_id not in used:
            assigned[cluster_id] = old_id
            used.add(old_id)
    taken = used | old_ids | ever
    for cluster_id in sorted(seeds, key=seeds.get):
        if cluster_id in assigned:
            continue
        assigned[cluster_id] = new_customer_id(seeds[cluster_id], taken)
        taken.add(assigned[cluster_id])
    # What became of each old id that did not survive, and of each new cluster.
    largest_home: dict[str, int] = {}
    splits: dict[tuple[str, str], None] = {}
    for cluster_id, old_id, _ in overlaps:
        largest_home.setdefault(old_id, cluster_id)
        if assigned[cluster_id] != old_id and old_id in used:
            splits[(old_id, assigned[cluster_id])] = None
    changes = [("split", old, other, "records split off") for old, other in splits]
    for old_id, cluster_id in largest_home.items():
        if old_id not in used:
            changes.append(("merged", assigned[cluster_id], old_id, "merged into survivor"))
    fresh = {assigned[c] for c in seeds} - used - {other for _, other in splits}
    changes += [("created", customer_id, None, "new customer") for customer_id in sorted(fresh)]
    gone = sorted(old_ids - set(largest_home))
    changes += [("retired", old_id, None, "no records left") for old_id in gone]
    _write_changes(con, changes, run_id=run_id, now=now)
    con.register(
        "res_customer_ids",
        pa.table({"cluster": list(assigned), "customer_id": list(assigned.values())}),
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE res_customers AS "
        "SELECT cluster::BIGINT AS cluster, customer_id FROM res_customer_ids"
    )
    counts = {kind: 0 for kind in ("created", "merged", "split", "retired")}
    for kind, *_ in changes:
        counts[kind] += 1
    return counts


def _ids_in_change_log(con: duckdb.DuckDBPyConnection) -> set[str]:
    if CHANGES not in existing_tables(con):
        return set()
    rows = con.execute(
        f"SELECT customer_id FROM {CHANGES} UNION SELECT other_customer_id FROM {CHANGES}"
    ).fetchall()
    return {i for (i,) in rows if i is not None}


def _write_changes(
    con: duckdb.DuckDBPyConnection,
    changes: list[tuple[str, str, str | None, str]],
    *,
    run_id: str,
    now: datetime,
) -> None:
    con.execute(f"""
        CREATE TABLE IF NOT EXISTS {CHANGES} (
            changed_at TIMESTAMP, run_id VARCHAR, change_type VARCHAR, customer_id VARCHAR,
            other_customer_id VARCHAR, detail VARCHAR)
    """)
    if changes:
        kinds, ids, others, details = (list(column) for column in zip(*changes, strict=True))
        rows = pa.table(
            {
                "changed_at": pa.array([now] * len(changes), pa.timestamp("us")),
                "run_id": [run_id] * len(changes),
                "change_type": kinds,
                "customer_id": ids,
                "other_customer_id": pa.array(others, pa.string()),
                "detail": details,
            }
        )
        con.register("res_change_rows", rows)
        con.execute(f"INSERT INTO {CHANGES} BY NAME SELECT * FROM res_change_rows")
        con.unregister("res_change_rows")


def write_identity_map(
    con: duckdb.DuckDBPyConnection, *, now: datetime, threshold: float
) -> dict[str, int]:
    """Replace `identity_map` and `customer_identifiers`; returns records per link type.

    A record linked by Splink names its strongest pair at or above `threshold` inside
    its customer."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE res_assignment AS
        SELECT c.uid, k.customer_id, c.cluster
        FROM res_clusters c JOIN res_customers k USING (cluster)
    """)
    matches = (
        f"""SELECT unique_id_l AS uid, unique_id_r AS other, match_probability AS p
            FROM {PAIRS} WHERE match_probability >= {float(threshold)}
            UNION ALL SELECT unique_id_r, unique_id_l, match_probability FROM {PAIRS}
            WHERE match_probability >= {float(threshold)}"""
        if PAIRS in existing_tables(con)
        else "SELECT NULL::VARCHAR AS uid, NULL::VARCHAR AS other, NULL::DOUBLE AS p WHERE FALSE"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {IDENTITY_MAP} AS
        WITH counts AS (
            SELECT id_type, id_value, count(*) AS n FROM {IDENTIFIERS} WHERE usable GROUP BY ALL
        ),
        shared AS (
            SELECT i.uid, string_agg(DISTINCT i.id_type, ',' ORDER BY i.id_type)
                              FILTER (WHERE c.n > 1) AS id_types
            FROM {IDENTIFIERS} i LEFT JOIN counts c USING (id_type, id_value)
            GROUP BY i.uid
        ),
        best AS (
            SELECT m.uid, max(m.p) AS p FROM ({matches}) m
            JOIN res_assignment a ON a.uid = m.uid JOIN res_assignment o ON o.uid = m.other
            WHERE a.cluster = o.cluster GROUP BY m.uid
        ),
        sizes AS (SELECT cluster, count(*) AS n FROM res_assignment GROUP BY cluster),
        det_sizes AS (SELECT det_component, count(*) AS n FROM res_record_nodes GROUP BY 1)
        SELECT r.source, r.record_key, a.customer_id,
               CASE WHEN z.n = 1 THEN 'singleton'
                    WHEN d.n > 1 THEN 'deterministic'
                    ELSE 'probabilistic' END AS link_type,
               CASE WHEN z.n = 1 AND s.uid IS NULL AND r.first_name IS NULL
                         AND r.last_name IS NULL THEN '{NO_IDENTIFYING_DATA}'
                    WHEN z.n = 1 THEN NULL
                    WHEN d.n > 1 THEN s.id_types
                    ELSE coalesce('match_probability=' || round(b.p, 4), 'name') END
                   AS link_detail,
               ?::TIMESTAMP AS resolved_at
        FROM {RECORDS} r
        JOIN res_assignment a USING (uid)
        JOIN sizes z USING (cluster)
        JOIN res_record_nodes n USING (uid)
        JOIN det_sizes d USING (det_component)
        LEFT JOIN shared s USING (uid)
        LEFT JOIN best b USING (uid)
    """,
        [now],
    )
    con.execute(f"""
        CREATE OR REPLACE TABLE {IDENTIFIER_TABLE} AS
        SELECT DISTINCT i.id_type, i.id_value, a.customer_id
        FROM {IDENTIFIERS} i JOIN res_assignment a USING (uid)
        WHERE i.usable
        ORDER BY 1, 2
    """)
    _forget_stream_ties(con)
    rows = con.execute(f"SELECT link_type, count(*) FROM {IDENTITY_MAP} GROUP BY 1").fetchall()
    return dict(rows)


def _forget_stream_ties(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the stream worker's ties that the new identity map now holds: its records, and
    the provisional identifiers that are now a customer's."""
    tables = existing_tables(con)
    if STREAM_RECORDS in tables:
        con.execute(
            f"DELETE FROM {STREAM_RECORDS} s WHERE EXISTS (SELECT 1 FROM {IDENTITY_MAP} m "
            "WHERE m.source = s.source AND m.record_key = s.record_key)"
        )
    if STREAM_IDENTIFIERS in tables:
        con.execute(
            f"DELETE FROM {STREAM_IDENTIFIERS} s WHERE EXISTS (SELECT 1 FROM {IDENTIFIER_TABLE} c "
            "WHERE c.id_type = s.id_type AND c.id_value = s.id_value)"
        )
