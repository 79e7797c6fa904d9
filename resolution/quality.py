"""Resolution quality against a known truth (the synthetic universe's `record_truth`).

Pairwise precision, recall and F1 are computed from the contingency of
predicted clusters and true people (no pair is enumerated, so a million
records is cheap); B-cubed precision/recall and the adjusted Rand index give a
cluster-level view. Metrics are reported on all records and on the
"person records": records of the person-like sources (CRM, accounts, orders,
support tickets) that carry any identifier or name. A cash order with no name
and no phone can belong to nobody in particular, so it is left out there. Only the CLI edge
calls this, and only when a truth folder exists: the pipeline never reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from sklearn.metrics import adjusted_rand_score

from resolution.clusters import NO_IDENTIFYING_DATA

__all__ = ["PERSON_SOURCES", "Quality", "evaluate", "false_merges"]

PERSON_SOURCES = ("crm_contacts", "accounts", "orders", "support_tickets")


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

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in self.__dict__.items() if k != "scope"}


def _truth_join(truth_path: Path, sources: tuple[str, ...] | None) -> str:
    where = ""
    if sources:  # identifiable records of the person-like sources
        where = (
            f"WHERE m.source IN ({', '.join(repr(s) for s in sources)}) "
            f"AND m.link_detail IS DISTINCT FROM '{NO_IDENTIFYING_DATA}'"
        )
    return f"""
        SELECT m.customer_id AS predicted, CAST(t.person_id AS VARCHAR) AS actual
        FROM identity_map m
        JOIN read_parquet('{truth_path}') t
          ON t.source = m.source AND CAST(t.record_key AS VARCHAR) = m.record_key
        {where}
    """


def evaluate(
    con: duckdb.DuckDBPyConnection, *, truth_path: Path, scope: str = "person records"
) -> Quality:
    """Compare `identity_map` with `truth_path`; scope `person records` or `all records`."""
    if not truth_path.exists():
        raise FileNotFoundError(f"no truth file at {truth_path}")
    sources = PERSON_SOURCES if scope == "person records" else None
    con.execute(f"CREATE OR REPLACE TEMP TABLE res_eval AS {_truth_join(truth_path, sources)}")
    (records, people, customers, both, pred, true, bp, br) = con.execute("""
        WITH cells AS (SELECT predicted, actual, count(*) AS n FROM res_eval GROUP BY ALL),
             p AS (SELECT predicted, sum(n) AS n FROM cells GROUP BY 1),
             t AS (SELECT actual, sum(n) AS n FROM cells GROUP BY 1)
        SELECT (SELECT sum(n) FROM cells), (SELECT count(*) FROM t), (SELECT count(*) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM cells),
               (SELECT sum(n * (n - 1) / 2) FROM p),
               (SELECT sum(n * (n - 1) / 2) FROM t),
               (SELECT sum(c.n * c.n / p.n) FROM cells c JOIN p USING (predicted)),
               (SELECT sum(c.n * c.n / t.n) FROM cells c JOIN t USING (actual))
    """).fetchall()[0]
    if not records:
        raise ValueError(f"no record of the identity map is in the truth ({scope})")
    precision = both / pred if pred else 1.0
    recall = both / true if true else 1.0
    labels = con.execute("SELECT predicted, actual FROM res_eval").fetchnumpy()
    return Quality(
        scope=scope,
        records=int(records),
        people=int(people),
        customers=int(customers),
        pairwise_precision=float(precision),
        pairwise_recall=float(recall),
        pairwise_f1=float(2 * precision * recall / (precision + recall or 1)),
        bcubed_precision=float(bp / records),
        bcubed_recall=float(br / records),
        adjusted_rand=float(adjusted_rand_score(labels["actual"], labels["predicted"])),
    )


def false_merges(
    con: duckdb.DuckDBPyConnection, *, truth_path: Path, limit: int = 10
) -> list[dict[str, object]]:
    """The customers that hold records of several true people, most mixed first."""
    rows = con.execute(f"""
        WITH e AS ({_truth_join(truth_path, PERSON_SOURCES)})
        SELECT predicted AS customer_id, count(DISTINCT actual) AS people, count(*) AS records
        FROM e GROUP BY 1 HAVING count(DISTINCT actual) > 1
        ORDER BY people DESC, records DESC, customer_id LIMIT {int(limit)}
    """).fetchall()
    return [dict(zip(("customer_id", "people", "records"), row, strict=True)) for row in rows]
