"""The resolve flows: link raw records into customers, measure it, explain it, any table.

`run` resolves the warehouse (full or incremental) and, when the data folder holds a
synthetic truth, measures quality and logs it to MLflow (experiment `resolution`) with
the model's charts. `quality` measures a resolved warehouse against the truth, `explain`
says why records were linked, `resolve_file` clusters any person table in a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lazy_loader
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import resolution
import warehouse
from pipelines.config import Settings
from pipelines.engines import engine_for, raw_lake
from pipelines.flows.progress import Progress, silent
from pipelines.tracking import use_mlflow
from warehouse.lake import sync

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = [
    "EXPERIMENT",
    "TRUTH_FILE",
    "Explanation",
    "FileOutcome",
    "ResolveOutcome",
    "explain",
    "parse_record",
    "quality",
    "resolve_file",
    "run",
]

EXPERIMENT = "resolution"
TRUTH_FILE = "record_truth.parquet"


@dataclass(frozen=True)
class ResolveOutcome:
    """A resolution run, and its quality when the data folder holds the synthetic truth."""

    result: resolution.ResolutionResult
    qualities: list[resolution.Quality]
    mlflow_run_id: str | None = None

    @property
    def figures(self) -> dict[str, object]:
        result = self.result
        figures: dict[str, object] = {
            "mode": f"{result.mode}{' (model trained)' if result.trained else ''}"
        }
        figures |= result.figures
        return figures | {
            f"pairwise F1 ({q.scope})": f"{q.pairwise_f1:.4f}" for q in self.qualities
        }


def run(
    settings: Settings,
    *,
    incremental: bool = False,
    retrain: bool = False,
    progress: Progress = silent,
) -> ResolveOutcome:
    """Resolve the warehouse's raw records into customers (`--incremental` scores only
    records new since the last run); measure and log quality when there is a truth. With
    `engine: spark` the identity graph and Splink's scoring run on Spark, and the lake's
    raw tables catch up with rows that reached the warehouse since the last load (the
    collector's, `cip stream`'s)."""
    steps = resolution.STEPS
    engine = engine_for(settings)
    lake = raw_lake(settings)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        if lake is not None:
            sync(con, lake=lake)
        result = resolution.resolve(
            con,
            settings=settings.resolution,
            model_dir=settings.paths.resolution,
            incremental_run=incremental,
            retrain=retrain,
            on_step=lambda name: progress(name, done=steps.index(name), total=len(steps)),
            engine=engine,
        )
        progress("resolved", done=len(steps), total=len(steps))
        truth = settings.paths.truth / TRUTH_FILE
        if not truth.exists():
            return ResolveOutcome(result, [])
        qualities = resolution.evaluate(con, truth_path=truth)
    finally:
        con.close()
        if engine is not None:
            engine.cleanup()
    return ResolveOutcome(result, qualities, _log(settings, result, qualities))


def quality(settings: Settings) -> list[resolution.Quality]:
    """A resolved warehouse measured against the synthetic truth (read-only)."""
    truth = settings.paths.truth / TRUTH_FILE
    if not truth.exists():
        raise FileNotFoundError(f"no synthetic truth at {truth}: only `cip generate` data has one")
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    try:
        # the normalized records the evidence is read from (imported here, as `resolution`
        # imports its modules on first use: the CLI starts without phonenumbers)
        from resolution.records import collect_records

        collect_records(con, phone_region=settings.resolution.default_phone_region)
        return resolution.evaluate(con, truth_path=truth)
    finally:
        con.close()


def _log(
    settings: Settings,
    result: resolution.ResolutionResult,
    qualities: list[resolution.Quality],
) -> str:
    """Log the run's settings, figures, quality and the model's charts to MLflow."""
    use_mlflow(settings, EXPERIMENT)
    with mlflow.start_run(run_name=f"resolve-{result.mode}-{result.run_id}") as run:
        mlflow.log_params(
            {k: v for k, v in settings.resolution.model_dump().items() if not isinstance(v, dict)}
        )
        mlflow.log_metrics({k.replace(" ", "_"): float(v) for k, v in result.figures.items()})
        for q in qualities:
            prefix = q.scope.split()[0] + "_"  # person_, all_
            mlflow.log_metrics({k: float(v) for k, v in q.as_dict(prefix).items()})
        mlflow.log_figure(resolution.pairs_figure(qualities), "quality/pairs.png")
        model = resolution.MatchModel.load(settings.paths.resolution)
        if model is not None:
            mlflow.log_dict(model.settings, "splink/model.json")
            for name, html in model.charts().items():
                mlflow.log_text(html, f"splink/{name}.html")
    return run.info.run_id


@dataclass(frozen=True)
class Explanation:
    """Why records were linked: the pairs explained, the customer (when one was asked
    about) and where the waterfall chart was written."""

    pairs: list[resolution.PairExplanation]
    customer: resolution.CustomerExplanation | None = None
    chart: Path | None = None


def parse_record(value: str) -> tuple[str, str]:
    """`SOURCE:KEY` as (source, key); ValueError naming the sources when it is not one."""
    source, sep, key = value.partition(":")
    if not sep or not key or source not in warehouse.SOURCES:
        raise ValueError(
            f"{value!r}: write a record as SOURCE:KEY with SOURCE one of "
            + ", ".join(warehouse.SOURCES)
        )
    return source, key


def explain(
    settings: Settings,
    *,
    records: tuple[tuple[str, str], tuple[str, str]] | None = None,
    customer: str | None = None,
    chart: Path | None = None,
) -> Explanation:
    """Why two records (source, key) were (or were not) linked, or how `customer` came
    together (the warehouse is only read); the waterfall chart goes to `chart` (default:
    resolution/explain.html). LookupError when a record or the customer is unknown."""
    if (customer is None) == (records is None):
        raise ValueError("give either two records or one customer")
    region = settings.resolution.default_phone_region
    threshold = settings.resolution.match_threshold
    model = resolution.MatchModel.load(settings.paths.resolution)
    con = warehouse.connect(settings.paths.warehouse, read_only=True)
    try:
        found = None
        if customer is not None:
            found = resolution.explain_customer(
                con, customer_id=customer, model=model, phone_region=region, threshold=threshold
            )
            pairs = found.matches
        else:
            left, right = records
            pairs = [
                resolution.explain_records(
                    con,
                    left=left,
                    right=right,
                    model=model,
                    phone_region=region,
                    threshold=threshold,
                )
            ]
    finally:
        con.close()
    charts = [p.chart_html for p in pairs if p.chart_html]
    if not charts:
        return Explanation(pairs, found)
    target = chart or settings.paths.resolution / "explain.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(charts[0] if len(charts) == 1 else "\n".join(charts))
    return Explanation(pairs, found, target)


@dataclass(frozen=True)
class FileOutcome:
    """A person table clustered: the result, and where the clusters and the configuration
    were written."""

    result: resolution.TableResolution
    clusters_file: Path
    configuration_file: Path

    @property
    def clusters(self) -> int:
        return len(set(self.result.clusters.column("cluster_id").to_pylist()))


def resolve_file(
    settings: Settings,
    *,
    path: Path,
    mapping: dict[str, str],
    id_column: str | None = None,
    extra_columns: list[str] | None = None,
    configuration: Path | None = None,
    out: Path | None = None,
    progress: Progress = silent,
) -> FileOutcome:
    """Cluster the person table in `path` (CSV or Parquet; columns mapped to roles): write
    `record_id, cluster_id, link_type, link_detail` to `out` (default: PATH.clusters.csv)
    and the Splink configuration to PATH.splink.json. `configuration` reuses a saved one."""
    target = out or path.with_suffix(".clusters.csv")
    progress(f"resolving {path.name}")
    result = resolution.resolve_table(
        path,
        mapping=mapping,
        settings=settings.resolution,
        id_column=id_column,
        extra_columns=extra_columns or [],
        configuration=configuration,
    )
    progress(f"resolved {path.name}", done=1, total=1)
    saved = result.save_configuration(path.with_suffix(".splink.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".parquet":
        pq.write_table(result.clusters, target)
    else:
        pacsv.write_csv(result.clusters, target)
    return FileOutcome(result, target, saved)
