"""Training a Splink model robustly, with no labels and no hand-tuning.

1. **Prior** (the probability that two random records match): from pairs that
   agree exactly on strong evidence (an identifier, an email or a phone, or a
   date of birth, else an address, with a name), assumed to be `prior_recall`
   of all true pairs. Without any of these, Splink's default stays and the
   report says so.
2. **u** by random sampling. A level never seen among the sampled pairs (a
   swapped name, an exact id number) gets half of one pair's worth rather than
   Splink's placeholder.
3. **m** by expectation maximisation, in sessions blocked, by preference
   (`EM_SHAPES`), on one person's attributes (an identifier, the date of birth,
   the full name, an email or phone): there the pairs are mostly the same
   person or strangers, where a block on a surname or an address is full of
   households, which EM would learn as "the same". Sessions are added until
   every comparison is trained in a block that does not read its columns. Each
   runs on its own linker, so its estimates can be judged apart.
4. **Checks**: each comparison takes m from the first session whose estimate
   orders the levels from exact agreement (strongest) to "all other"
   (weakest), within `INVERSION_BITS`; m is smoothed towards even by a couple
   of pseudo-matches (so that a level EM saw twice, or a column filled in 5% of
   records, does not swing a match by 30 bits), and anything still out of
   order is fitted isotonically (adjacent levels share their pooled Bayes
   factor). Every correction is reported.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker
from splink.internals.exceptions import SplinkException

from resolution.blocking import RuleCount, conditions, count_rules, same_column
from resolution.comparisons import CompareColumn, Planned

__all__ = ["Session", "TrainingReport", "inversion", "isotonic", "train"]

# EM blocks in order of preference: blocks of one person's attributes, where the pairs are
# mostly the same person or strangers (not a household sharing a surname and an address).
EM_SHAPES = (
    ("identifier",),
    ("date",),
    ("given_name", "surname"),
    ("email",),
    ("phone",),
    ("year",),  # the same year of a date: for training the date's day and month
)
# An identifier's prefix block has the identifier's shape: preferred, like the exact one.
INVERSION_BITS = 1.0
MIN_EM_PAIRS = 50
PRIOR_MATCHES = 2.0  # pseudo-matches spread evenly over a comparison's levels
MIN_SEEN = 10.0  # true pairs with values a session must have seen to be preferred
logger = logging.getLogger(__name__)


@dataclass
class Session:
    """One EM session: its blocking rule, its pairs and the m values it estimated."""

    rule: str
    pairs: int
    sampled: float = 0.0  # pairs EM used (a sample of a large block)
    matches: float = 0.0  # true pairs EM found among the pairs it used
    estimates: dict[str, list[float]] = field(default_factory=dict)  # m per level
    seen: dict[str, float] = field(default_factory=dict)  # true pairs with values, per comparison
    used_for: list[str] = field(default_factory=list)  # comparisons that took its m
    error: str | None = None


@dataclass
class TrainingReport:
    """How the model was trained: prior, u sample, EM sessions, corrections made."""

    prior: float | None = None
    prior_rules: list[str] = field(default_factory=list)
    prior_pairs: int = 0
    u_pairs: float = 0
    sessions: list[Session] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def train(
    table: pa.Table,
    *,
    settings: Any,
    columns: Sequence[CompareColumn],
    comparisons: Sequence[Planned],
    candidates: Sequence[RuleCount],
    prior_recall: float,
    max_pairs_u: float,
    max_pairs_em: float,
    seed: int,
) -> tuple[dict[str, Any], TrainingReport]:
    """Train `settings` (Splink settings without parameters) on `table`.

    `candidates` are the counted blocking rules the EM sessions may block on.
    """
    report = TrainingReport()
    linker, db = _linker(table, settings)
    try:
        _estimate_prior(linker, columns, recall=prior_recall, report=report)
        candidates = [*candidates, *count_rules(db.register(table), _training_rules(columns))]
        linker.training.estimate_u_using_random_sampling(
            max_pairs=max_pairs_u, seed=seed, num_chunks=1, min_count_per_level=None
        )
        report.u_pairs = min(max_pairs_u, _total_pairs(table.num_rows))
        base = linker.misc.save_model_to_json()
    finally:
        db.duckdb_con.close()
    _fill_unseen_u(base, pairs=report.u_pairs)
    kinds = {c.name: c.kind for c in columns}
    for rule, pairs in _em_rules(kinds, comparisons, candidates):
        session = _em_session(table, base, rule=rule, pairs=pairs, max_pairs=max_pairs_em)
        _count_seen(table, session, comparisons, max_pairs=max_pairs_em)
        report.sessions.append(session)
    _set_m(base, report)
    if report.prior is None:
        _prior_from_em(base, report, total_pairs=_total_pairs(table.num_rows))
    _remove_matches_from_u(base, pairs=report.u_pairs)
    _order_levels(base, report)
    return base, report


def _linker(table: pa.Table, settings: Any) -> tuple[Linker, DuckDBAPI]:
    db = DuckDBAPI()
    return Linker(db.register(table), settings, log_level=logging.ERROR), db


def _equal(*names: str) -> str:
    return " AND ".join(f"l.{n} = r.{n}" for n in names)


# -- prior ------------------------------------------------------------------------------------


def _prior_rules(columns: Sequence[CompareColumn]) -> list[str]:
    """Exact agreement on an identifier, email or phone; or a date (else an address) with
    a name: strong enough to admit few false pairs, loose enough to survive one typo."""
    kinds = {c.kind: c.name for c in columns}
    rules = [_equal(c.name) for c in columns if c.kind in ("identifier", "email", "phone")]
    names = [kinds[k] for k in ("given_name", "surname") if k in kinds]
    anchor = next((kinds[k] for k in ("date", "address", "postcode") if k in kinds), None)
    if anchor and names:
        rules += [_equal(anchor, name) for name in names]
    return rules


def _estimate_prior(
    linker: Linker, columns: Sequence[CompareColumn], *, recall: float, report: TrainingReport
) -> None:
    rules = _prior_rules(columns)
    if not rules:
        report.warnings.append(
            "no identifier, email, phone, or name with a date or address to estimate the "
            "prior from: Splink's default 1e-4 is used"
        )
        return
    counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(
        rules, record_sample_proportion=1.0
    )
    observed = int(counts[-1]["cumulative_comparison_count"])
    total = int(counts[-1]["total_possible_comparison_count"])
    if not observed or not total:
        report.warnings.append("no pair agrees on the prior's rules: Splink's default is used")
        return
    recall = max(recall, min(1.0, observed / total))
    linker.training.estimate_probability_two_random_records_match(rules, recall=recall)
    report.prior = float(linker._settings_obj._probability_two_random_records_match)
    report.prior_rules, report.prior_pairs = rules, observed


# -- u ----------------------------------------------------------------------------------------


def _total_pairs(n: int) -> float:
    return n * (n - 1) / 2


def _fill_unseen_u(settings: dict[str, Any], *, pairs: float) -> None:
    """Give levels never seen in the u sample half of one sampled pair's worth."""
    floor = 0.5 / max(pairs, 1)
    for comparison in settings["comparisons"]:
        for level in _levels(comparison):
            if not level.get("u_probability"):
                level["u_probability"] = floor


# -- m: the EM sessions ---------------------------------------------------------------------


def _rule_reads(rule: str) -> set[str]:
    return set(re.findall(r"\b[lr]\.(\w+)", rule))


def _training_rules(columns: Sequence[CompareColumn]) -> list[str]:
    """Looser blocks for training only, where a typo may hide the exact ones: the same
    first four characters of an identifier, the same year of a date."""
    return [
        f"substr(l.{c.name}, 1, 4) = substr(r.{c.name}, 1, 4)"
        for c in columns
        if c.kind in ("identifier", "date")
    ]


def _shape(rule: str, kinds: dict[str, str]) -> tuple[str, ...]:
    """The kinds a rule blocks on: `year` for a date's year, an identifier's kind for its
    prefix; `?` for anything else partial, or equating two different columns (swapped
    names): no block to prefer for training."""
    if any(not same_column(part) for part in conditions(rule)):
        return ("?",)
    shape = tuple(sorted(kinds.get(c, "?") for c in _rule_reads(rule)))
    if "substr(" not in rule:
        return shape
    return {("date",): ("year",), ("identifier",): ("identifier",)}.get(shape, ("?",))


def _em_rules(
    kinds: dict[str, str], comparisons: Sequence[Planned], candidates: Sequence[RuleCount]
) -> list[tuple[str, int]]:
    """EM blocks, preferred shapes first, until every comparison is trained in one."""
    preferred = {tuple(sorted(shape)): i for i, shape in enumerate(EM_SHAPES)}

    def rank(r: RuleCount) -> tuple:
        shape = _shape(r.rule, kinds)
        if shape == ("?",):  # partial or crossed: a last resort
            return (2 * len(EM_SHAPES) + 1, r.comparisons)
        return (preferred.get(shape, len(EM_SHAPES) + len(shape)), r.comparisons)

    untrained = {c.name for c in comparisons}
    chosen: list[tuple[str, int]] = []
    for candidate in sorted((r for r in candidates if r.comparisons >= MIN_EM_PAIRS), key=rank):
        reads = _rule_reads(candidate.rule)
        trains = {c.name for c in comparisons if not c.reads & reads}
        if trains & untrained:
            chosen.append((candidate.rule, candidate.comparisons))
            untrained -= trains
        if not untrained:
            break
    return chosen


def _em_session(
    table: pa.Table, base: dict[str, Any], *, rule: str, pairs: int, max_pairs: float
) -> Session:
    linker, db = _linker(table, base)
    session = Session(rule=rule, pairs=pairs)
    try:
        em = linker.training.estimate_parameters_using_expectation_maximisation(
            rule,
            estimate_without_term_frequencies=True,
            max_pairs=max_pairs if pairs > max_pairs else None,
        )
        trained = {c.output_column_name for c in em.core_model_settings.comparisons}
        block_prior = em.core_model_settings.probability_two_random_records_match
        session.sampled = min(pairs, max_pairs)
        session.matches = float(block_prior) * session.sampled
        for comparison in linker.misc.save_model_to_json()["comparisons"]:
            if comparison["output_column_name"] in trained:
                m = [level.get("m_probability") or 0.0 for level in _levels(comparison)]
                session.estimates[comparison["output_column_name"]] = m
    except (ValueError, SplinkException) as error:
        session.error = str(error).splitlines()[0]
    finally:
        db.duckdb_con.close()
    return session


# -- m: choosing, smoothing and checking ------------------------------------------------------


def _levels(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    return [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]


def _count_seen(
    table: pa.Table, session: Session, comparisons: Sequence[Planned], *, max_pairs: float
) -> None:
    """How many of the true pairs EM found had values to compare, per trained comparison:
    the block's pairs with both sides filled (from a sample of a large block), times the
    share of true pairs EM estimated in the block."""
    trained = [c for c in comparisons if c.name in session.estimates]
    if not trained or not session.pairs:
        return
    sample = min(1.0, max_pairs / session.pairs)

    def filled(side: str, c: Planned) -> str:
        return "(" + " OR ".join(f"{side}.{col} IS NOT NULL" for col in sorted(c.columns)) + ")"

    counts = ", ".join(
        f"count(*) FILTER (WHERE {filled('l', c)} AND {filled('r', c)})" for c in trained
    )
    left = "em_input" if sample >= 1 else f"(SELECT * FROM em_input USING SAMPLE {sample:.6%})"
    con = duckdb.connect()
    try:
        con.register("em_input", table)
        row = con.execute(f"""
            SELECT count(*), {counts} FROM {left} AS l JOIN em_input AS r
              ON ({session.rule}) AND l.unique_id < r.unique_id
        """).fetchall()[0]
    finally:
        con.close()
    total, shares = row[0], row[1:]
    for c, n in zip(trained, shares, strict=True):
        session.seen[c.name] = session.matches * (n / total if total else 0.0)


def inversion(m: Sequence[float], u: Sequence[float]) -> float:
    """How many bits a level's weight exceeds that of a stronger level (0 when ordered).

    Levels with no m (never seen among EM's pairs) are left out of the check.
    """
    weights = [math.log2(mi / ui) for mi, ui in zip(m, u, strict=True) if mi > 0 and ui > 0]
    return max(
        (weaker - stronger for i, stronger in enumerate(weights) for weaker in weights[i + 1 :]),
        default=0.0,
    )


def isotonic(m: Sequence[float], u: Sequence[float]) -> list[float]:
    """m adjusted so that Bayes factors never rise from stronger to weaker levels.

    Pool-adjacent-violators on m/u weighted by u: a run of levels out of order
    shares the Bayes factor of the run merged into one level, and keeps its
    total m.
    """
    blocks: list[list[int]] = []
    for i in range(len(m)):
        blocks.append([i])
        while len(blocks) > 1 and _ratio(m, u, blocks[-2]) < _ratio(m, u, blocks[-1]):
            blocks[-2:] = [blocks[-2] + blocks[-1]]
    out = [0.0] * len(m)
    for block in blocks:
        ratio = _ratio(m, u, block)
        for i in block:
            out[i] = ratio * u[i]
    return out


def _ratio(m: Sequence[float], u: Sequence[float], block: list[int]) -> float:
    return sum(m[i] for i in block) / max(sum(u[i] for i in block), 1e-300)


def _prior_from_em(base: dict[str, Any], report: TrainingReport, *, total_pairs: float) -> None:
    """The prior from the first EM block of exact equalities on compared columns: the true
    pairs EM found there, over all pairs, divided by the share of true pairs that agree
    exactly on those columns (their exact levels' m)."""
    exact = {c["output_column_name"]: _levels(c)[0]["m_probability"] for c in base["comparisons"]}
    for session in report.sessions:
        parts = [part.split("=") for part in re.split(r"\s+AND\s+", session.rule)]
        names = [left.strip().removeprefix("l.") for left, _ in parts]
        if session.error or not all(
            name in exact and right.strip() == f"r.{name}"
            for name, (_, right) in zip(names, parts, strict=True)
        ):
            continue
        found = session.matches * session.pairs / max(min(session.pairs, session.sampled), 1)
        share = math.prod(exact[name] for name in names)
        if found and share:
            report.prior = min(found / share / total_pairs, 0.5)
            base["probability_two_random_records_match"] = report.prior
            report.warnings.append(
                f"prior taken from the EM block {session.rule!r}: {report.prior:.3g}"
            )
            return


def _remove_matches_from_u(base: dict[str, Any], *, pairs: float) -> None:
    """Take the true pairs out of u: random pairs of a small table with many duplicates
    include some, which makes strong levels (an id one edit away) look common among
    strangers. u = (observed - prior * m) / (1 - prior), no lower than one unseen pair."""
    prior = float(base.get("probability_two_random_records_match", 1e-4))
    floor = 0.5 / max(pairs, 1)
    for comparison in base["comparisons"]:
        for level in _levels(comparison):
            observed, m = level["u_probability"], level["m_probability"]
            level["u_probability"] = max((observed - prior * m) / (1 - prior), floor)


def _set_m(base: dict[str, Any], report: TrainingReport) -> dict[str, Any]:
    """Each comparison takes m from the first session (in order of preference) that saw
    `MIN_SEEN` true pairs with values and estimated its levels in order (else the ordered
    one that saw most; else the first), smoothed towards even m by `PRIOR_MATCHES`
    pseudo-matches."""
    for comparison in base["comparisons"]:
        name = comparison["output_column_name"]
        levels = _levels(comparison)
        u = [lv["u_probability"] for lv in levels]
        trained = [s for s in report.sessions if s.seen.get(name, 0) > 0]
        ordered = [s for s in trained if inversion(s.estimates[name], u) <= INVERSION_BITS]
        enough = [s for s in ordered if s.seen[name] >= MIN_SEEN]
        ordered = enough or sorted(ordered, key=lambda s: -s.seen[name])
        if not trained:
            report.warnings.append(f"{name}: no EM session could train it; its m is the prior's")
            m, seen = [0.0] * len(levels), 0.0
        else:
            chosen = (ordered or trained)[0]
            chosen.used_for.append(name)
            m, seen = chosen.estimates[name], chosen.seen.get(name, 0.0)
            total = sum(m)
            m, seen = ([mi / total for mi in m], seen) if total > 0 else (m, 0.0)
            if chosen is not trained[0]:
                report.warnings.append(
                    f"{name}: the estimate blocked on {trained[0].rule!r} orders its levels "
                    f"wrongly; the one blocked on {chosen.rule!r} is used"
                )
        m = [(seen * mi + PRIOR_MATCHES / len(levels)) / (seen + PRIOR_MATCHES) for mi in m]
        for level, value in zip(levels, m, strict=True):
            level["m_probability"] = value
    return base


def _order_levels(base: dict[str, Any], report: TrainingReport) -> None:
    """Fit isotonically every comparison whose levels are still out of order."""
    for comparison in base["comparisons"]:
        levels = _levels(comparison)
        m = [lv["m_probability"] for lv in levels]
        u = [lv["u_probability"] for lv in levels]
        if inversion(m, u) > INVERSION_BITS:
            report.warnings.append(
                f"{comparison['output_column_name']}: levels out of order by "
                f"{inversion(m, u):.1f} bits; fitted isotonically"
            )
            for level, value in zip(levels, isotonic(m, u), strict=True):
                level["m_probability"] = value
