"""Resolution quality against a known truth (the synthetic universe's `record_truth`).

Pairwise precision, recall and F1 are computed from the contingency of
predicted clusters and true people (no pair is enumerated, so a million
records is cheap); B-cubed precision/recall and the adjusted Rand index give a
cluster-level view. Metrics are reported on all records and on the "person
records": records of the person-like sources (CRM, accounts, orders, support
tickets) that carry any identifier or name. A cash order with no name and no
phone can belong to nobody in particular, so it is left out there.

Not every true pair can be found. Two records are *evidenced* when a chain of
exact shared values (email, phone, user id, cookie, contact id, full name),
each borne by that one person alone in the whole data, connects them. A till
slip with a name other people share, or a loyalty phone typed nowhere else,
holds nothing that tells it from a stranger. `evidence_ceiling` is the share
of true pairs that are evidenced (the recall of a resolver that links exactly
on the evidence; fuzzy matching can find a little more, at a risk);
`evidenced_recall` is the share of evidenced pairs found, and `evidenced_f1`
weighs it against the precision over every pair made, so a false merge counts
wherever it happens. Only the CLI edge, the benchmark and the notebook call
this, when a truth folder exists: the pipeline never reads it. The normalized
records (`res_records`) must be in the session: `resolve` leaves them there,
`records.collect_records` rebuilds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
from sklearn.metrics import adjusted_rand_score

from resolution.clusters import NO_IDENTIFYING_DATA
from resolution.graph import components
from resolution.records import RECORDS, existing_tables

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PERSON_SOURCES", "SCOPES", "Quality", "evaluate", "false_merges", "pairs_figure"]

PERSON_SOURCES = ("crm_contacts", "accounts", "orders", "support_tickets")
SCOPES = ("person records", "all records")

# Exact values that count as evidence when one person alone bears them.
_EVIDENCE = {
    "email": "email",
    "phone": "phone",
    "user_id": "user_id",
    "cookie": "anonymous_id",
    "previous cookie": "previous_id",
    "contact_id": "contact_id",
    "name": "CASE WHEN length(first_name) > 1 THEN list_sort([first_name, last_name])::VARCHAR END",
}


@dataclass(frozen=True)
class Quality:
    """Agreement of the identity map with the truth over `records` records."""

    scope: str
    records: int
    people: int
    customers: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    adjusted_rand: float
    evidence_ceiling: float
    evidenced_recall: float
    evidenced_f1: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items() if k != "scope"}


def _truth_join(truth_path: Path) -> str:
    """Identity-map records with their true person, flagged `is_person` per the scope above."""
    return f"""
        SELECT m.source, m.record_key, m.customer_id AS predicted,
               CAST(t.person_id AS VARCHAR) AS actual,
               m.source IN ({", ".join(repr(s) for s in PERSON_SOURCES)})
               AND m.link_detail IS DISTINCT FROM '{NO_IDENTIFYING_DATA}' AS is_person
        FROM identity_map m
        JOIN read_parquet('{truth_path}') t
          ON t.source = m.source AND CAST(t.record_key AS VARCHAR) = m.record_key
    """


def _label_evidence(con: duckdb.DuckDBPyConnection, truth_path: Path) -> None:
    """Write `res_eval_all`: every evaluated record with its evidence component."""
    if RECORDS not in existing_tables(con):
        raise LookupError(f"{RECORDS} is not in this session: run records.collect_records first")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE res_eval_nodes AS
        SELECT row_number() OVER () - 1 AS node, e.*, r.email, r.phone, r.user_id,
               r.anonymous_id, r.previous_id, r.contact_id, r.first_name, r.last_name
        FROM ({_truth_join(truth_path)}) e JOIN {RECORDS} r USING (source, record_key)
    """)
    keys = " UNION ALL ".join(
        f"SELECT node, actual, '{kind}:' || ({expr}) AS k FROM res_eval_nodes"
        for kind, expr in _EVIDENCE.items()
    )
    edges = con.execute(f"""
        WITH k AS (SELECT * FROM ({keys}) WHERE k IS NOT NULL)
        SELECT node, min(node) OVER (PARTITION BY k) AS root FROM k
        WHERE k IN (SELECT k FROM k GROUP BY k HAVING count(DISTINCT actual) = 1)
    """).fetchnumpy()
    n_nodes = con.execute("SELECT count(*) FROM res_eval_nodes").fetchall()[0][0]
    labels = components(n_nodes, edges["node"], edges["root"])
    con.register("res_eval_labels", {"node": np.arange(n_nodes), "component": labels})
    con.execute("""
        CREATE OR REPLACE TEMP TABLE res_eval_all AS
        SELECT n.*, l.component
        FROM res_eval_nodes n JOIN res_eval_labels l USING (node)
    """)
    con.unregister("res_eval_labels")


def evaluate(
    con: duckdb.DuckDBPyConnection, *, truth_path: Path, scopes: Sequence[str] = SCOPES
) -> list[Quality]:
    """Compare `identity_map` with `truth_path`, one `Quality` per scope of `SCOPES`."""
    if not truth_path.exists():
        raise FileNotFoundError(f"no truth file at {truth_path}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: one of {', '.join(SCOPES)}")
    _label_evidence(con, truth_path)
    return [_scope_quality(con, scope) for scope in scopes]


def _scope_quality(con: duckdb.DuckDBPyConnection, scope: str) -> Quality:
    where = "is_person" if scope == "person records" else "TRUE"
    con.execute(f"CREATE OR REPLACE TEMP TABLE res_eval AS FROM res_eval_all WHERE {where}")
    (records, people, customers, both, pred, true, bp, br, evidenced, found) = con.execute("""
        WITH cells AS (SELECT predicted, actual, count(*) AS n FROM res_eval GROUP BY ALL),
             p AS (SELECT predicted, sum(n) AS n FROM cells GROUP BY 1),
             t AS (SELECT actual, sum(n) AS n FROM cells GROUP BY 1)
        SELECT (SELECT sum(n) FROM cells), (SELECT count(*) FROM t), (SELECT count(*) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM cells),
               (SELECT sum(n * (n - 1) / 2) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM t),
               (SELECT sum(c.n * c.n / p.n) FROM cells c JOIN p USING (predicted)),
               (SELECT sum(c.n * c.n / t.n) FROM cells c JOIN t USING (actual)),
               (SELECT sum(n * (n - 1) / 2)
                FROM (SELECT count(*) AS n FROM res_eval GROUP BY actual, component)),
               (SELECT sum(n * (n - 1) / 2)
                FROM (SELECT count(*) AS n FROM res_eval GROUP BY predicted, actual, component))
    """).fetchall()[0]
    if not records:
        raise ValueError(f"no record of the identity map is in the truth ({scope})")
    precision = both / pred if pred else 1.0
    recall = both / true if true else 1.0
    evidenced_recall = found / evidenced if evidenced else 1.0
    labels = con.execute(  # integer codes: scikit-learn is 30 times slower on strings
        "SELECT dense_rank() OVER (ORDER BY predicted) AS predicted, "
        "dense_rank() OVER (ORDER BY actual) AS actual FROM res_eval"
    ).fetchnumpy()
    return Quality(
        scope=scope,
        records=int(records),
        people=int(people),
        customers=int(customers),
        pairwise_precision=float(precision),
        pairwise_recall=float(recall),
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=float(bp / records),
        bcubed_recall=float(br / records),
        adjusted_rand=float(adjusted_rand_score(labels["actual"], labels["predicted"])),
        evidence_ceiling=float(evidenced / true) if true else 1.0,
        evidenced_recall=float(evidenced_recall),
        evidenced_f1=_f1(precision, evidenced_recall),
    )


def _f1(precision: float, recall: float) -> float:
    return float(2 * precision * recall / (precision + recall or 1))


def false_merges(
    con: duckdb.DuckDBPyConnection, *, truth_path: Path, limit: int = 10
) -> list[dict[str, object]]:
    """The customers that hold records of several true people, most mixed first."""
    rows = con.execute(f"""
        WITH e AS (SELECT * FROM ({_truth_join(truth_path)}) WHERE is_person)
        SELECT predicted AS customer_id, count(DISTINCT actual) AS people, count(*) AS records
        FROM e GROUP BY 1 HAVING count(DISTINCT actual) > 1
        ORDER BY people DESC, records DESC, customer_id LIMIT {int(limit)}
    """).fetchall()
    return [dict(zip(("customer_id", "people", "records"), row, strict=True)) for row in rows]


def pairs_figure(qualities: Sequence[Quality]) -> Figure:
    """Where each scope's true pairs went: found on exact evidence, found by fuzzy matching
    alone, evidenced but missed, and without any evidence (out of reach)."""
    from matplotlib.figure import Figure

    shares = {}
    for q in qualities:
        evidenced = q.evidenced_recall * q.evidence_ceiling
        fuzzy = q.pairwise_recall - evidenced
        shares[q.scope] = {
            "found, evidenced": evidenced,
            "found by fuzzy matching": fuzzy,
            "evidenced, missed": q.evidence_ceiling - evidenced,
            "no evidence, missed": 1 - q.evidence_ceiling - fuzzy,
        }
    figure = Figure(figsize=(9, 2.6), layout="constrained")
    axes = figure.subplots()
    scopes = list(shares)
    left = np.zeros(len(scopes))
    for label in shares[scopes[0]]:
        widths = np.array([shares[scope][label] for scope in scopes])
        axes.barh(scopes, widths, left=left, label=label)
        left += widths
    axes.set(xlim=(0, 1), title="share of true pairs")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4, frameon=False)
    return figure
