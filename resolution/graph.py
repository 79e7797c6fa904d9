"""The identity graph: records linked by shared identifiers, guarded against explosion.

Each record is a node, each normalized identifier (email, phone, user id,
cookie id, CRM contact id) is a node, and a record is joined to every
identifier it carries; `identify`/`alias` events carry two ids and so tie a
cookie to a user. Connected components (scipy's csgraph on integer-encoded
edges) are the deterministic clusters.

The explosion guard: an identifier seen with more distinct people-signals
(distinct name initials, or user ids, on the records carrying it; user ids
whose accounts bear the same name initials count once, as one person's two
sign-ups) than `max_people` is a shared one (a shop's phone, a family tablet,
`test@test.com`) and is not used to merge. Names whose given names are
nicknames of one another (`Beth` and `Elizabeth Barnes`) count as one signal.
Skipped identifiers are reported by hash, never by value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from resolution.given_names import nickname_related
from resolution.records import RECORDS
from warehouse.engine import Engine

__all__ = [
    "IDENTIFIERS",
    "ID_TYPES",
    "SkippedIdentifier",
    "build_identifiers",
    "components",
    "deterministic_components",
    "drop_labels",
    "label_records",
    "mask",
]

IDENTIFIERS = "res_identifiers"
# A name as a people-signal: the initials of its two parts, in order, so that typos (never
# on the first letter), swapped first and last names and initials ("J. Weaver") agree,
# while two members of a household ("Daniel" and "Lorraine Martinez") do not.
_NAME_SIGNAL = "list_sort([left(first_name, 1), left(last_name, 1)])::VARCHAR"
ID_TYPES = ("email", "phone", "user_id", "anonymous_id", "contact_id")
# Identifiers with more name signals than this are shared, whatever nicknames would say.
_NICKNAME_RECOUNT_LIMIT = 6


@dataclass(frozen=True)
class SkippedIdentifier:
    """An identifier the guard refused to merge on; `value_hash` stands in for the value."""

    id_type: str
    value_hash: str
    n_records: int
    n_people_signals: int


def mask(value: str) -> str:
    """A short stable hash standing in for a personal identifier in reports and logs."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def build_identifiers(
    con: duckdb.DuckDBPyConnection, *, max_people: int
) -> list[SkippedIdentifier]:
    """Write `res_identifiers(uid, id_type, id_value, usable)`; return the skipped ones.

    `previous_id` of an alias event is a user id when some record carries it as
    one, otherwise a cookie id.
    """
    per_type = " UNION ALL ".join(
        f"SELECT uid, '{t}' AS id_type, {t} AS id_value FROM {RECORDS} WHERE {t} IS NOT NULL"
        for t in ID_TYPES
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_identifiers_all AS
        {per_type}
        UNION ALL
        SELECT p.uid, CASE WHEN u.user_id IS NULL THEN 'anonymous_id' ELSE 'user_id' END,
               p.previous_id
        FROM {RECORDS} p
        LEFT JOIN (SELECT DISTINCT user_id FROM {RECORDS} WHERE user_id IS NOT NULL) u
               ON u.user_id = p.previous_id
        WHERE p.previous_id IS NOT NULL
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_exploded AS
        WITH names AS (
            SELECT uid, user_id, {_NAME_SIGNAL} AS signal FROM {RECORDS}
            WHERE first_name IS NOT NULL AND last_name IS NOT NULL
        ),
        account_names AS (
            SELECT user_id, min(signal) AS signal FROM names WHERE user_id IS NOT NULL
            GROUP BY user_id HAVING count(DISTINCT signal) = 1
        ),
        signals AS (
            SELECT r.uid, 'user_id' AS kind, coalesce(a.signal, r.user_id) AS signal
            FROM {RECORDS} r LEFT JOIN account_names a USING (user_id)
            WHERE r.user_id IS NOT NULL
            UNION ALL
            SELECT uid, 'name', signal FROM names
        ),
        counts AS (
            SELECT i.id_type, i.id_value, s.kind, count(DISTINCT s.signal) AS n_signals
            FROM res_identifiers_all i JOIN signals s USING (uid)
            WHERE s.kind <> i.id_type
            GROUP BY ALL
        )
        SELECT id_type, id_value, max(n_signals) AS n_signals,
               max(n_signals) FILTER (WHERE kind = 'user_id') AS user_signals
        FROM counts GROUP BY ALL HAVING max(n_signals) > {int(max_people)}
    """)
    _forgive_nicknames(con, max_people=max_people)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {IDENTIFIERS} AS
        SELECT DISTINCT a.uid, a.id_type, a.id_value, x.id_value IS NULL AS usable
        FROM res_identifiers_all a
        LEFT JOIN res_exploded x USING (id_type, id_value)
    """)
    rows = con.execute(f"""
        SELECT x.id_type, x.id_value, count(DISTINCT i.uid), x.n_signals
        FROM res_exploded x JOIN {IDENTIFIERS} i USING (id_type, id_value)
        GROUP BY ALL ORDER BY 3 DESC, 1, 2
    """).fetchall()
    return [SkippedIdentifier(t, mask(v), n, s) for t, v, n, s in rows]


def _forgive_nicknames(con: duckdb.DuckDBPyConnection, *, max_people: int) -> None:
    """Drop from `res_exploded` the identifiers whose name signals, counted with nicknames
    as one person, are few enough (and whose user ids were not too many already)."""
    rows = con.execute(f"""
        SELECT DISTINCT x.id_type, x.id_value, r.first_name, r.last_name
        FROM res_exploded x JOIN res_identifiers_all i USING (id_type, id_value)
        JOIN {RECORDS} r USING (uid)
        WHERE x.n_signals <= {_NICKNAME_RECOUNT_LIMIT}
          AND coalesce(x.user_signals, 0) <= {int(max_people)}
          AND r.first_name IS NOT NULL AND r.last_name IS NOT NULL
        ORDER BY ALL
    """).fetchall()
    names: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for id_type, id_value, first, last in rows:
        names.setdefault((id_type, id_value), []).append((first, last))
    forgiven = [key for key, found in names.items() if _people(found) <= max_people]
    if forgiven:
        con.executemany("DELETE FROM res_exploded WHERE id_type = ? AND id_value = ?", forgiven)


def _people(names: list[tuple[str, str]]) -> int:
    """How many people the (first, last) names stand for: two are one person when their
    initials agree in either order, or their surnames' initials agree and one given name
    is a nickname of the other."""
    pairs = [
        (i, j)
        for i, (first_i, last_i) in enumerate(names)
        for j, (first_j, last_j) in enumerate(names[:i])
        if sorted((first_i[0], last_i[0])) == sorted((first_j[0], last_j[0]))
        or (last_i[0] == last_j[0] and nickname_related(first_i, first_j))
    ]
    edges = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return len(set(components(len(names), edges[:, 0], edges[:, 1])))


def components(n_nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label of each of `n_nodes` nodes given edges `left[i]`-`right[i]`."""
    weights = np.ones(len(left), dtype=np.int8)
    graph = coo_matrix((weights, (left, right)), shape=(n_nodes, n_nodes)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels


def label_records(
    con: duckdb.DuckDBPyConnection,
    *,
    edges: str,
    n_records: int,
    name: str,
    engine: Engine | None = None,
) -> int:
    """Make `name(node, label)` a table of `con`: the connected component of each record
    node 0..n_records-1 of the graph whose edges are the rows (a, b) of the SQL `edges`,
    numbered as scipy numbers them (in order of each component's smallest node). Returns
    the number of components among the records. On Spark the graph never leaves the
    cluster (`resolution.spark_graph`)."""
    if engine is not None and engine.name == "spark":
        from resolution import spark_graph

        return spark_graph.label_records(
            con, engine=engine, edges=edges, n_records=n_records, name=name
        )
    found = con.execute(edges).fetchnumpy()
    left, right = found["a"], found["b"]
    n_nodes = max(n_records, int(max(left.max(initial=-1), right.max(initial=-1))) + 1)
    labels = components(n_nodes, left, right)[:n_records]
    con.register(name, {"node": np.arange(n_records), "label": labels})
    return int(len(np.unique(labels)))


def deterministic_components(
    con: duckdb.DuckDBPyConnection, *, engine: Engine | None = None
) -> int:
    """Write `res_record_nodes(uid, node, det_component)`; returns the number of components.

    Records are nodes 0..R-1 (ordered by uid). The graph is contracted before its
    components are found: a record ties its usable identifiers together (an edge from its
    smallest identifier to each other one), so the components of the identifiers alone
    label every record that carries one, and a record without any is a component of its
    own. Components are numbered in order of their smallest record, as before.
    """
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_record_nodes AS
        SELECT uid, (row_number() OVER (ORDER BY uid) - 1)::BIGINT AS node FROM {RECORDS}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_record_ids AS
        WITH ids AS (
            SELECT id_type, id_value,
                   (dense_rank() OVER (ORDER BY id_type, id_value) - 1)::BIGINT AS id_node
            FROM (SELECT DISTINCT id_type, id_value FROM {IDENTIFIERS} WHERE usable)
        ),
        carried AS (
            SELECT DISTINCT n.node, ids.id_node
            FROM {IDENTIFIERS} i
            JOIN ids USING (id_type, id_value)
            JOIN res_record_nodes n USING (uid)
            WHERE i.usable
        )
        SELECT node, id_node, min(id_node) OVER (PARTITION BY node) AS first_id FROM carried
    """)
    n_ids = con.execute("SELECT coalesce(max(id_node) + 1, 0) FROM res_record_ids").fetchall()[0][0]
    edges = """
        SELECT DISTINCT first_id AS a, id_node AS b FROM res_record_ids WHERE id_node <> first_id
    """
    label_records(con, edges=edges, n_records=n_ids, name="res_id_labels", engine=engine)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE res_record_nodes AS
        WITH labelled AS (
            SELECT n.uid, n.node, coalesce(l.label, -1 - n.node) AS component
            FROM res_record_nodes n
            LEFT JOIN (SELECT DISTINCT node, first_id FROM res_record_ids) f USING (node)
            LEFT JOIN res_id_labels l ON l.node = f.first_id
        ),
        smallest AS (SELECT component, min(node) AS first FROM labelled GROUP BY component)
        SELECT uid, node, (dense_rank() OVER (ORDER BY first) - 1)::BIGINT AS det_component
        FROM labelled JOIN smallest USING (component)
    """)
    drop_labels(con, "res_id_labels")
    con.execute("DROP TABLE res_record_ids")
    found = con.execute("SELECT count(DISTINCT det_component) FROM res_record_nodes").fetchall()
    return int(found[0][0])


def drop_labels(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a labels table `label_records` made (a view, on either engine)."""
    con.execute(f"DROP VIEW IF EXISTS {name}")
