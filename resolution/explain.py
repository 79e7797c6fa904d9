"""Why records were linked: shared identifiers, or Splink's match weights per comparison.

`explain_records` compares two source records: the identifiers they share
(type and a hash standing in for the value) and Splink's score of the pair with
its waterfall (one row per comparison: level, match weight, m and u), both as
data and as a self-contained HTML chart. When the two belong to one customer
without being linked directly, it gives the chain of links that joined them
(shared identifiers, Splink matches at or above the threshold, name links).
`explain_customer` describes a customer: how each record was linked, the
identifiers holding it together and the probabilistic matches inside it, each
with its waterfall.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import duckdb

from resolution.clusters import IDENTIFIER_TABLE, IDENTITY_MAP
from resolution.graph import ID_TYPES, mask
from resolution.linkage import PAIRS
from resolution.model import MatchModel
from resolution.records import RECORDS, collect_records, existing_tables

__all__ = ["CustomerExplanation", "PairExplanation", "explain_customer", "explain_records"]

_WATERFALL_FIELDS = (
    "column_name",
    "label_for_charts",
    "log2_bayes_factor",
    "m_probability",
    "u_probability",
)


@dataclass
class PairExplanation:
    """Two records: the identifiers they share and Splink's view of the pair."""

    left: str
    right: str
    same_customer: bool
    shared_identifiers: list[tuple[str, str]]
    match_weight: float | None = None
    match_probability: float | None = None
    waterfall: list[dict[str, Any]] = field(default_factory=list)
    chart_html: str | None = None
    chain: list[tuple[str, str, str]] = field(default_factory=list)  # (record, record, how)


@dataclass
class CustomerExplanation:
    """One customer: its records by link type, its identifiers, its probabilistic links."""

    customer_id: str
    records: dict[str, int]
    identifiers: list[tuple[str, str]]
    matches: list[PairExplanation]


def _uid(record: tuple[str, str]) -> str:
    return f"{record[0]}|{record[1]}"


def _load_records(
    con: duckdb.DuckDBPyConnection, uids: list[str], *, phone_region: str
) -> dict[str, dict[str, Any]]:
    if not uids:
        return {}
    wanted = ", ".join("'" + u.replace("'", "''") + "'" for u in uids)
    collect_records(
        con, phone_region=phone_region, where=f"source || '|' || record_key IN ({wanted})"
    )
    rows = con.sql(f"SELECT * FROM {RECORDS}").to_arrow_table().to_pylist()
    found = {row["uid"]: row for row in rows}
    missing = [u for u in uids if u not in found]
    if missing:
        raise LookupError(f"no such record(s): {', '.join(missing)} (write them as SOURCE:KEY)")
    return found


def _customer_of(con: duckdb.DuckDBPyConnection, uid: str) -> str | None:
    if IDENTITY_MAP not in existing_tables(con):
        return None
    rows = con.execute(
        f"SELECT customer_id FROM {IDENTITY_MAP} WHERE source || '|' || record_key = ?", [uid]
    ).fetchall()
    return rows[0][0] if rows else None


def _pair(
    model: MatchModel | None, left: dict[str, Any], right: dict[str, Any], same: bool
) -> PairExplanation:
    shared = sorted(
        (t, mask(str(left[t])))
        for t in ID_TYPES
        if left.get(t) is not None and left.get(t) == right.get(t)
    )
    explanation = PairExplanation(left["uid"], right["uid"], same, shared)
    if model is None:
        return explanation

    def splink_row(record: dict[str, Any]) -> dict[str, Any]:
        row = {"unique_id": record["uid"]}
        row.update(
            {c: None if record.get(c) is None else str(record[c]) for c in model.record_columns}
        )
        return row

    scored, chart = model.score_pair(splink_row(left), splink_row(right))
    explanation.match_weight = float(scored["match_weight"])
    explanation.match_probability = float(scored["match_probability"])
    explanation.waterfall = [
        {k: item.get(k) for k in _WATERFALL_FIELDS} for item in chart.chart_dict["data"]["values"]
    ]
    explanation.chart_html = chart.to_html(inline=True)
    return explanation


def explain_records(
    con: duckdb.DuckDBPyConnection,
    *,
    left: tuple[str, str],
    right: tuple[str, str],
    model: MatchModel | None,
    phone_region: str,
    threshold: float,
) -> PairExplanation:
    """Explain the pair of records `(source, record_key)` `left` and `right`."""
    found = _load_records(con, [_uid(left), _uid(right)], phone_region=phone_region)
    a, b = found[_uid(left)], found[_uid(right)]
    customer_a, customer_b = _customer_of(con, a["uid"]), _customer_of(con, b["uid"])
    same = customer_a is not None and customer_a == customer_b
    explanation = _pair(model, a, b, same=same)
    if same:
        explanation.chain = _chain(
            con, a["uid"], b["uid"], customer=customer_a, threshold=threshold,
            phone_region=phone_region,
        )  # fmt: skip
    return explanation


def _chain(
    con: duckdb.DuckDBPyConnection,
    start: str,
    goal: str,
    *,
    customer: str,
    threshold: float,
    phone_region: str,
) -> list[tuple[str, str, str]]:
    """The shortest chain of links between two records of `customer`: identifiers they
    share (by hash), Splink matches at or above `threshold`, and name links."""
    uids = [
        u
        for (u,) in con.execute(
            f"SELECT source || '|' || record_key FROM {IDENTITY_MAP} WHERE customer_id = ?",
            [customer],
        ).fetchall()
    ]
    usable = set(
        con.execute(
            f"SELECT id_type, id_value FROM {IDENTIFIER_TABLE} WHERE customer_id = ?", [customer]
        ).fetchall()
    )
    records = _load_records(con, uids, phone_region=phone_region)
    links: dict[str, list[tuple[str, str]]] = {u: [] for u in uids}

    def link(a: str, b: str, how: str) -> None:
        links.setdefault(a, []).append((b, how))
        links.setdefault(b, []).append((a, how))

    for uid, record in records.items():
        for id_type in ID_TYPES:
            if (id_type, record.get(id_type)) in usable:
                link(
                    uid, f"{id_type}:{record[id_type]}", f"{id_type} #{mask(str(record[id_type]))}"
                )
    if PAIRS in existing_tables(con):
        for a, b, p in con.execute(
            f"""SELECT unique_id_l, unique_id_r, match_probability FROM {PAIRS}
                WHERE match_probability >= ? AND unique_id_l IN (SELECT unnest(?))
                  AND unique_id_r IN (SELECT unnest(?))""",
            [threshold, uids, uids],
        ).fetchall():
            link(a, b, f"Splink match {p:.4f}")
    named = con.execute(
        f"SELECT source || '|' || record_key FROM {IDENTITY_MAP} "
        "WHERE customer_id = ? AND link_detail = 'name'",
        [customer],
    ).fetchall()
    for (uid,) in named:
        key = _name_key(records[uid])
        for other, record in records.items():
            if other != uid and key and _name_key(record) == key:
                link(uid, other, "name")
    return _shortest(links, start, goal, records=set(uids))


def _name_key(record: dict[str, Any]) -> tuple[str, ...] | None:
    names = [record.get("first_name"), record.get("last_name")]
    return tuple(sorted(names)) if all(names) else None


def _shortest(
    links: dict[str, list[tuple[str, str]]], start: str, goal: str, *, records: set[str]
) -> list[tuple[str, str, str]]:
    """Breadth-first path from `start` to `goal`; identifier nodes fold into one step."""
    came_from: dict[str, tuple[str, str] | None] = {start: None}
    queue = deque([start])
    while queue and goal not in came_from:
        node = queue.popleft()
        for nxt, how in links.get(node, []):
            if nxt not in came_from:
                came_from[nxt] = (node, how)
                queue.append(nxt)
    if goal not in came_from:
        return []
    path: list[tuple[str, str]] = []
    node = goal
    while came_from[node] is not None:
        previous, how = came_from[node]
        path.append((node, how))
        node = previous
    steps: list[tuple[str, str, str]] = []
    current = start
    for node, how in reversed(path):
        if node in records:  # a record (not an identifier): close the step
            steps.append((current, node, how))
            current = node
    return steps


def explain_customer(
    con: duckdb.DuckDBPyConnection,
    *,
    customer_id: str,
    model: MatchModel | None,
    phone_region: str,
    threshold: float,
    max_matches: int = 5,
) -> CustomerExplanation:
    """Explain how the records of `customer_id` came together."""
    if IDENTITY_MAP not in existing_tables(con):
        raise LookupError("no identity map yet: run `cip resolve` first")
    records = dict(
        con.execute(
            f"SELECT link_type, count(*) FROM {IDENTITY_MAP} WHERE customer_id = ? GROUP BY 1",
            [customer_id],
        ).fetchall()
    )
    if not records:
        raise LookupError(f"no customer {customer_id!r} in the identity map")
    identifiers = [
        (t, mask(v))
        for t, v in con.execute(
            f"SELECT id_type, id_value FROM {IDENTIFIER_TABLE} WHERE customer_id = ? ORDER BY 1, 2",
            [customer_id],
        ).fetchall()
    ]
    pairs: list[tuple[str, str]] = []
    if PAIRS in existing_tables(con):
        pairs = con.execute(
            f"""
            WITH mine AS (SELECT source || '|' || record_key AS uid FROM {IDENTITY_MAP}
                          WHERE customer_id = ?)
            SELECT unique_id_l, unique_id_r FROM {PAIRS}
            WHERE unique_id_l IN (SELECT uid FROM mine) AND unique_id_r IN (SELECT uid FROM mine)
              AND match_probability >= ?
            ORDER BY match_weight LIMIT ?
            """,
            [customer_id, threshold, max_matches],
        ).fetchall()
    uids = sorted({u for pair in pairs for u in pair})
    found = _load_records(con, uids, phone_region=phone_region)
    matches = [_pair(model, found[a], found[b], same=True) for a, b in pairs]
    return CustomerExplanation(customer_id, records, identifiers, matches)
