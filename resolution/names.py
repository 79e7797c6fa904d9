"""Name links: records known only by a name join the one customer who bears that name.

A store order with a name typed at the till and no usable identifier shares
nothing with its person's other records, and Splink rightly scores one
agreeing name too low to merge. After the first clustering, such a cluster
("loose": no record with a usable identifier) is linked to an anchored cluster
(one with an identifier) when its names point to exactly one anchored cluster,
a name read as the full name with first and last in either order, or as an
initial and the surname (`J. Weaver`). A name points to a cluster when that
cluster is the only anchored one bearing it, either among all of them or among
those that ordered at the loose record's store, and the name is rare there:
the namesakes expected by chance (clusters with the first name or initial
times clusters with the surname over all named clusters, times the store's
share of clusters for a store) are at most `max_namesakes`. Nicknames and
surnames alone never link.
"""

from __future__ import annotations

import duckdb

from resolution.graph import IDENTIFIERS
from resolution.records import RECORDS

__all__ = ["NAME_LINKS", "link_names"]

NAME_LINKS = "res_name_links"

# A name as a key: the full name with first and last in either order, or initial and surname.
_FULL_KEY = "'full:' || list_sort([first_name, last_name])::VARCHAR"
_INITIAL_KEY = "'initial:' || left(first_name, 1) || ' ' || last_name"


def link_names(con: duckdb.DuckDBPyConnection, *, max_namesakes: float) -> int:
    """Write `NAME_LINKS(unique_id_l, unique_id_r)` from `res_clusters`; returns the links."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {NAME_LINKS} AS
        WITH named AS (
            SELECT r.uid, c.cluster, r.first_name, r.last_name, r.store_id
            FROM {RECORDS} r JOIN res_clusters c USING (uid)
            WHERE r.is_person AND r.first_name IS NOT NULL AND r.last_name IS NOT NULL
        ),
        anchored AS (
            SELECT DISTINCT c.cluster
            FROM res_clusters c JOIN {IDENTIFIERS} i USING (uid)
            WHERE i.usable
        ),
        anchor_names AS (
            SELECT cluster, first_name, last_name, min(uid) AS uid
            FROM named JOIN anchored USING (cluster)
            WHERE length(first_name) > 1
            GROUP BY ALL
        ),
        keyed AS (
            SELECT cluster, uid, {_FULL_KEY} AS key, first_name AS given, last_name
            FROM anchor_names
            UNION ALL
            SELECT cluster, uid, {_INITIAL_KEY}, left(first_name, 1), last_name
            FROM anchor_names
        ),
        frequency AS (
            SELECT k.given, k.last_name, f.n * l.n / t.n AS namesakes
            FROM (SELECT DISTINCT given, last_name FROM keyed) k
            JOIN (SELECT given, count(DISTINCT cluster) AS n FROM keyed GROUP BY 1) f
                USING (given)
            JOIN (SELECT last_name, count(DISTINCT cluster) AS n FROM keyed GROUP BY 1) l
                USING (last_name)
            CROSS JOIN (SELECT count(DISTINCT cluster) AS n FROM anchor_names) t
        ),
        stores AS (
            SELECT DISTINCT c.cluster, r.store_id
            FROM {RECORDS} r JOIN res_clusters c USING (uid) JOIN anchored USING (cluster)
            WHERE r.store_id IS NOT NULL
        ),
        store_share AS (
            SELECT store_id, count(*) / (SELECT count(DISTINCT cluster) FROM anchor_names) AS share
            FROM stores GROUP BY 1
        ),
        anchor_keys AS (
            SELECT key, NULL AS store_id, min(uid) AS uid, min(cluster) AS cluster,
                   count(DISTINCT cluster) AS n_clusters, max(namesakes) AS namesakes
            FROM keyed JOIN frequency USING (given, last_name)
            GROUP BY key
            UNION ALL
            SELECT key, store_id, min(uid), min(cluster), count(DISTINCT cluster),
                   max(namesakes * share)
            FROM keyed JOIN frequency USING (given, last_name)
            JOIN stores USING (cluster) JOIN store_share USING (store_id)
            GROUP BY key, store_id
        ),
        loose AS (
            SELECT n.uid, n.cluster, n.store_id,
                   CASE WHEN length(n.first_name) > 1 THEN {_FULL_KEY}
                        ELSE {_INITIAL_KEY} END AS key
            FROM named n ANTI JOIN anchored a USING (cluster)
        ),
        targets AS (
            SELECT l.cluster, min(l.uid) AS uid, min(k.uid) AS anchor,
                   count(DISTINCT k.cluster) AS n_anchors
            FROM loose l JOIN anchor_keys k
              ON k.key = l.key AND (k.store_id IS NULL OR k.store_id = l.store_id)
            WHERE k.n_clusters = 1 AND k.namesakes <= {float(max_namesakes)}
            GROUP BY l.cluster
        )
        SELECT uid AS unique_id_l, anchor AS unique_id_r FROM targets WHERE n_anchors = 1
    """)
    return con.execute(f"SELECT count(*) FROM {NAME_LINKS}").fetchall()[0][0]
