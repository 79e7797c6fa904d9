"""Resolution from raw tables to `identity_map`, `customer_identifiers` and `profiles`.

`resolve` runs the steps in order on one warehouse connection: normalize the
records, build the guarded identity graph, score person-like records with
Splink (all of them in a full run, only the new ones in an incremental run),
cluster, hand out stable customer ids and build the golden records. It prints
nothing; `on_step` lets the caller show progress.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from resolution import clusters, golden, graph, incremental, linkage, matching, names, records
from resolution.comparisons import ROLE_KINDS
from resolution.configure import ModelChoices
from resolution.model import MATCH_COLUMNS, MatchModel
from resolution.profile import TableProfile, profile_columns
from resolution.settings import ResolutionSettings
from warehouse.engine import Engine

__all__ = ["STEPS", "ResolutionResult", "link_records", "resolve"]

MIN_TRAINING_ROWS = 2  # fewer person-like records: nothing to match, no model to train
STEPS = (
    "normalize records",
    "identity graph",
    "probabilistic matching",
    "clusters and customer ids",
    "golden records",
)


@dataclass
class ResolutionResult:
    """What a resolution run did."""

    run_id: str
    mode: str
    resolved_at: datetime
    trained: bool = False
    figures: dict[str, int] = field(default_factory=dict)
    skipped: list[graph.SkippedIdentifier] = field(default_factory=list)
    choices: ModelChoices | None = None  # what training chose, when this run trained
    model: MatchModel | None = None


def resolve(
    con: duckdb.DuckDBPyConnection,
    *,
    settings: ResolutionSettings,
    model_dir: Path,
    incremental_run: bool = False,
    retrain: bool = False,
    on_step: Callable[[str], None] | None = None,
    engine: Engine | None = None,
) -> ResolutionResult:
    """Resolve every raw record into customers; incremental runs score only new records.

    With `engine` Spark, the identity graph's components and Splink's scoring of a full
    run run on Spark (`warehouse.engine`); the rest, on the warehouse."""
    step = on_step or (lambda _name: None)
    step(STEPS[0])
    n_records = records.collect_records(con, phone_region=settings.default_phone_region)
    result = link_records(
        con,
        settings=settings,
        model_dir=model_dir,
        incremental_run=incremental_run,
        retrain=retrain,
        on_step=step,
        engine=engine,
    )
    result.figures = {"records": n_records} | result.figures
    step(STEPS[4])
    result.figures["profiles"] = golden.build_profiles(
        con,
        rules=settings.survivorship,
        source_priority=settings.source_priority,
        now=result.resolved_at,
    )
    result.figures["known profiles"] = con.execute(
        f"SELECT count(*) FROM {golden.PROFILES} WHERE is_known"
    ).fetchall()[0][0]
    return result


def link_records(
    con: duckdb.DuckDBPyConnection,
    *,
    settings: ResolutionSettings,
    model_dir: Path | None,
    columns: Sequence[str] = MATCH_COLUMNS,
    profile: TableProfile | None = None,
    model: MatchModel | None = None,
    incremental_run: bool = False,
    retrain: bool = False,
    on_step: Callable[[str], None] | None = None,
    engine: Engine | None = None,
) -> ResolutionResult:
    """Link the normalized `res_records` into customers and write `identity_map`.

    The model is `model` if given, else loaded from `model_dir` unless `retrain`
    (or there is none); a newly trained model is saved there. Without either it
    is trained afresh, on `profile` (the candidates' own profile by default).
    """
    step = on_step or (lambda _name: None)
    now = datetime.now(UTC).replace(tzinfo=None)
    retrain = retrain or settings.retrain
    if model is None and not retrain and model_dir is not None:
        model = MatchModel.load(model_dir)
    mode = "full"
    if incremental_run and model is not None and incremental.can_run_incrementally(con):
        mode = "incremental"
    result = ResolutionResult(run_id=uuid.uuid4().hex[:12], mode=mode, resolved_at=now)
    figures = result.figures

    step(STEPS[1])
    result.skipped = graph.build_identifiers(con, max_people=settings.max_people_per_identifier)
    figures["identifiers skipped by the guard"] = len(result.skipped)
    figures["deterministic clusters"] = graph.deterministic_components(con, engine=engine)

    step(STEPS[2])
    if mode == "incremental":
        scored = incremental.score_new(
            con,
            model=model,
            threshold=settings.match_threshold,
            max_comparisons=settings.max_comparisons,
        )
    else:
        candidates = matching.build_candidates(con, columns=columns)
        if model is None and candidates.num_rows >= MIN_TRAINING_ROWS:
            profile = profile or profile_columns(
                candidates, kinds={c: ROLE_KINDS.get(c) for c in columns}
            )
            model, result.choices = MatchModel.train(candidates, settings=settings, profile=profile)
            if model_dir is not None:
                model.save(model_dir)
            result.trained = True
        scored = matching.score_all(
            con,
            model=model,
            candidates=candidates,
            threshold=settings.match_threshold,
            max_comparisons=settings.max_comparisons,
            engine=engine,
        )
        figures["splink candidates"] = candidates.num_rows
    figures.update({f"splink {name}": value for name, value in scored.items()})
    result.model = model

    step(STEPS[3])
    threshold = settings.match_threshold
    merges = linkage.accepted_merges(con, threshold=threshold)
    clusters.cluster(con, merges=merges, engine=engine)
    figures["records linked by name"] = names.link_names(
        con, max_namesakes=settings.name_link_max_namesakes
    )
    clusters.cluster(con, merges=merges, links=[names.NAME_LINKS], engine=engine)
    changes = clusters.assign_customer_ids(con, run_id=result.run_id, now=now)
    links = clusters.write_identity_map(con, now=now, threshold=threshold)
    figures.update({f"records linked {kind}": links.get(kind, 0) for kind in clusters.LINK_TYPES})
    figures.update({f"customer ids {kind}": n for kind, n in changes.items()})
    return result
