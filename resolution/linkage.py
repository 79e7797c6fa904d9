"""Which deterministic components to merge on Splink's evidence, without chaining strangers.

Plain connected components over the pairs above the threshold let one weak
link join whatever it touches: a till slip named "Sheryl White" scored above
the threshold against two different Sheryl Whites would make them one customer,
though every pair between the two of them says they are not. So components are
merged greedily, strongest link first, and a merge is accepted only when the
*average* match probability over every scored pair between the two groups
built so far is at least `MIN_AVERAGE` (more likely than not) and none of
those pairs is a confident non-match (below `CANNOT_LINK`): a true customer's
records agree with one another, a chain of namesakes does not. Pairs the
blocking rules never generated do not count either way.

Before that, a component whose strong links point to groups that are not one
person (their pairs do not agree as above) is ambiguous, and none of
those links is used: a till slip naming "Gary Boyd" when two customers bear
that name belongs to neither as far as the data can tell.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
import numpy as np

from resolution.graph import components
from resolution.records import existing_tables

__all__ = ["MIN_AVERAGE", "PAIRS", "accepted_merges"]

PAIRS = "resolution_pairs"
MIN_AVERAGE = 0.5
CANNOT_LINK = 0.01  # a pair this unlikely says two people: the groups are never merged


def accepted_merges(con: duckdb.DuckDBPyConnection, *, threshold: float) -> np.ndarray:
    """Pairs of `res_record_nodes` components to merge, as an (n, 2) array (none when
    nothing was scored)."""
    if PAIRS not in existing_tables(con):
        return np.empty((0, 2), dtype=np.int64)
    # The scored pairs' records are Splink candidates: few, so find their components once.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_scored_components AS
        SELECT n.uid, n.det_component FROM res_record_nodes n
        SEMI JOIN (SELECT unique_id_l AS uid FROM {PAIRS}
                   UNION SELECT unique_id_r FROM {PAIRS}) s USING (uid)
    """)
    scored = f"""
        SELECT least(l.det_component, r.det_component) AS a,
               greatest(l.det_component, r.det_component) AS b, p.match_probability AS p
        FROM {PAIRS} p
        JOIN res_scored_components l ON l.uid = p.unique_id_l
        JOIN res_scored_components r ON r.uid = p.unique_id_r
        WHERE l.det_component <> r.det_component
    """
    strong = con.execute(
        f"SELECT DISTINCT a, b FROM ({scored}) WHERE p >= {float(threshold)}"
    ).fetchnumpy()
    if not len(strong["a"]):
        return np.empty((0, 2), dtype=np.int64)
    # Only components joined by strong links can merge: group them, keep their pairs.
    nodes, inverse = np.unique(np.concatenate([strong["a"], strong["b"]]), return_inverse=True)
    half = len(strong["a"])
    group = components(len(nodes), inverse[:half], inverse[half:])
    con.register("res_link_groups", {"component": nodes, "link_group": group})
    rows = con.execute(f"""
        SELECT s.a, s.b, max(s.p), sum(s.p), count(*), min(s.p)
        FROM ({scored}) s
        JOIN res_link_groups ga ON ga.component = s.a
        JOIN res_link_groups gb ON gb.component = s.b
        WHERE ga.link_group = gb.link_group
        GROUP BY s.a, s.b
    """).fetchall()
    con.unregister("res_link_groups")
    sums: dict[int, dict[int, list[float]]] = defaultdict(dict)
    edges = []
    for a, b, top, total, n, weakest in rows:
        sums[a][b] = sums[b][a] = [total, n, weakest]
        if top >= threshold:
            edges.append((-top, a, b))
    ambiguous = _ambiguous_links(edges, sums)
    kept = [e for e in edges if (e[1], e[2]) not in ambiguous]
    return np.array(_greedy(sorted(kept), sums), dtype=np.int64).reshape(-1, 2)


def _ambiguous_links(
    edges: list[tuple[float, int, int]], sums: dict[int, dict[int, list[float]]]
) -> set[tuple[int, int]]:
    """Strong links of components whose strong neighbours are not all one person."""
    neighbours: dict[int, list[int]] = defaultdict(list)
    for _, a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    dropped: set[tuple[int, int]] = set()
    for node, around in neighbours.items():
        if len(around) > 1 and not _one_person(around, sums):
            dropped |= {(min(node, other), max(node, other)) for other in around}
    return dropped


def _one_person(nodes: list[int], sums: dict[int, dict[int, list[float]]]) -> bool:
    """Whether `nodes` form one group when joined wherever their pairs average enough."""
    label = {node: node for node in nodes}

    def find(x: int) -> int:
        while label[x] != x:
            x = label[x]
        return x

    for i, x in enumerate(nodes):
        for y in nodes[:i]:
            if _agree(sums, x, y):
                label[find(x)] = find(y)
    return len({find(x) for x in nodes}) == 1


def _agree(sums: dict[int, dict[int, list[float]]], a: int, b: int) -> bool:
    """Whether the scored pairs between two groups say one person: more likely than not
    on average, and none of them a confident non-match."""
    total, n, weakest = sums.get(a, {}).get(b, (0.0, 0, 0.0))
    return bool(n) and total / n >= MIN_AVERAGE and weakest > CANNOT_LINK


def _greedy(
    edges: list[tuple[float, int, int]], sums: dict[int, dict[int, list[float]]]
) -> list[tuple[int, int]]:
    """Union strongest first while the average probability between the groups holds."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    accepted = []
    for _, a, b in edges:
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        if not _agree(sums, ra, rb):
            continue
        if len(sums[ra]) < len(sums[rb]):
            ra, rb = rb, ra
        for other, (t, k, w) in sums.pop(rb).items():  # fold rb's cross sums into ra's
            del sums[other][rb]
            if other == ra:
                continue
            merged = sums[ra].setdefault(other, [0.0, 0, 1.0])
            merged[0] += t
            merged[1] += k
            merged[2] = min(merged[2], w)
            sums[other][ra] = merged
        parent[rb] = ra
        accepted.append((a, b))
    return accepted
