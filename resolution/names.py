"""Name links: records known only by a name join the one customer who bears that name.

A store order with a name typed at the till and no usable identifier shares
nothing with its person's other records, and Splink rightly scores one
agreeing name too low to merge. After the first clustering, such a cluster
("unanchored": no record with a usable identifier) is linked to an anchored
cluster when exactly one anchored cluster bears its full name, first and last
in either order (cashiers write the surname first), and the name is rare: the
namesakes expected by chance (clusters with the first name times clusters with
the last name over all named clusters) stay under `max_namesakes`. Initials,
nicknames and surnames alone never link.
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
            SELECT r.uid, c.cluster, r.first_name, r.last_name,
                   EXISTS (SELECT 1 FROM {IDENTIFIERS} i WHERE i.uid = r.uid AND i.usable)
                       AS identified
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
        anchor_keys AS (
            SELECT key, min(uid) AS uid, count(DISTINCT cluster) AS n_clusters,
                   max(namesakes) AS namesakes
            FROM keyed JOIN frequency USING (given, last_name)
            GROUP BY key
        ),
        loose AS (
            SELECT n.uid, n.cluster,
                   CASE WHEN length(n.first_name) > 1 THEN {_FULL_KEY}
                        ELSE {_INITIAL_KEY} END AS key
            FROM named n ANTI JOIN anchored a USING (cluster)
            WHERE NOT n.identified
        ),
        targets AS (
            SELECT l.cluster, min(l.uid) AS uid, min(k.uid) AS anchor,
                   count(DISTINCT a.cluster) AS n_anchors
            FROM loose l JOIN anchor_keys k USING (key) JOIN res_clusters a ON a.uid = k.uid
            WHERE k.n_clusters = 1 AND k.namesakes <= {float(max_namesakes)}
            GROUP BY l.cluster
        )
        SELECT uid AS unique_id_l, anchor AS unique_id_r FROM targets WHERE n_anchors = 1
    """)
    return con.execute(f"SELECT count(*) FROM {NAME_LINKS}").fetchall()[0][0]
