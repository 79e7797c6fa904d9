"""`cip resolve`: identity resolution, its evaluation, explanations and any-table mode.

- `cip resolve` links every raw record into customers (`--incremental` scores
  only records new since the last run, `--retrain` re-estimates the Splink
  model); when the data folder holds a synthetic truth, quality is printed and
  logged to MLflow (experiment `resolution`) with the model's charts.
- `cip resolve explain --record SOURCE:KEY --record SOURCE:KEY` or
  `--customer ID` says why records were linked (waterfall chart as HTML).
- `cip resolve file PATH --map role=column ...` clusters any CSV/Parquet
  person table and writes the record-to-cluster assignment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import lazy_loader
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

import resolution
import warehouse
from pipelines.config import Settings
from pipelines.console import StageReport, console, progress
from pipelines.console import stage as stage_report
from pipelines.tracking import use_mlflow

mlflow = lazy_loader.load("mlflow")  # imported on first use: `cip --help` stays quick

__all__ = ["register", "stage"]

TRUTH_FILE = "record_truth.parquet"

app = typer.Typer(
    help="Identity resolution: link records into customers with stable ids.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="resolve")


@app.callback()
def command(
    ctx: typer.Context,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Score only records added since the last run (falls back to a full run "
            "when there is no earlier run or no saved model).",
        ),
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Re-estimate the Splink model before predicting.")
    ] = False,
) -> None:
    """Resolve the warehouse's raw records into customers, identity map and profiles."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        run(ctx.obj, incremental=incremental, retrain=retrain)
    except (LookupError, ValueError, resolution.BlockingTooLoose) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error


def stage(settings: Settings) -> None:
    """The resolve stage of `cip run`: a full resolution of the warehouse."""
    run(settings, incremental=False, retrain=False)


def run(settings: Settings, *, incremental: bool, retrain: bool) -> resolution.ResolutionResult:
    config = settings.resolution
    with stage_report("resolve") as report:
        con = warehouse.connect(settings.paths.warehouse)
        try:
            with progress() as bar:
                task = bar.add_task("resolving", total=len(resolution.STEPS))

                def on_step(name: str) -> None:
                    bar.update(task, description=name, completed=resolution.STEPS.index(name))

                result = resolution.resolve(
                    con,
                    settings=config,
                    model_dir=settings.paths.resolution,
                    incremental_run=incremental,
                    retrain=retrain,
                    on_step=on_step,
                )
                bar.update(task, description="resolved", completed=len(resolution.STEPS))
            _report(report, result)
            truth = settings.paths.truth / TRUTH_FILE
            if truth.exists():
                _evaluate_and_log(settings, con, result, truth, report)
        finally:
            con.close()
    return result


def _report(report: StageReport, result: resolution.ResolutionResult) -> None:
    report.add("mode", f"{result.mode}{' (model trained)' if result.trained else ''}")
    if result.choices is not None and result.model is not None:
        print_choices(result.choices, result.model)
    for name, value in result.figures.items():
        report.add(name, value)
    if result.skipped:
        table = Table(title="identifiers not used to merge (explosion guard)", title_justify="left")
        for column in ("type", "value hash", "records", "people-signals"):
            table.add_column(column)
        for s in result.skipped[:10]:
            table.add_row(s.id_type, s.value_hash, f"{s.n_records:,}", str(s.n_people_signals))
        console.print(table)


def _evaluate_and_log(
    settings: Settings,
    con,
    result: resolution.ResolutionResult,
    truth: Path,
    report: StageReport,
) -> None:
    qualities = resolution.evaluate(con, truth_path=truth)
    table = Table(title="quality against the synthetic truth", title_justify="left")
    table.add_column("metric")
    for q in qualities:
        table.add_column(q.scope, justify="right")
    for name in qualities[0].as_dict():
        values = [q.as_dict()[name] for q in qualities]
        table.add_row(name, *(f"{v:,}" if isinstance(v, int) else f"{v:.4f}" for v in values))
    console.print(table)
    for q in qualities:
        report.add(f"pairwise F1 ({q.scope})", f"{q.pairwise_f1:.4f}")
    use_mlflow(settings, "resolution")
    with mlflow.start_run(run_name=f"resolve-{result.mode}-{result.run_id}"):
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


def _parse_record(value: str) -> tuple[str, str]:
    source, sep, key = value.partition(":")
    if not sep or not key or source not in warehouse.SOURCES:
        raise typer.BadParameter(
            f"{value!r}: write a record as SOURCE:KEY with SOURCE one of "
            + ", ".join(warehouse.SOURCES)
        )
    return source, key


@app.command("explain")
def explain(
    ctx: typer.Context,
    record: Annotated[
        list[str] | None,
        typer.Option("--record", "-r", help="A record as SOURCE:KEY; give exactly two."),
    ] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Explain this customer's links.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Where to write the waterfall chart (HTML)."),
    ] = None,
) -> None:
    """Why two records were (or were not) linked, or how a customer came together."""
    settings: Settings = ctx.obj
    if (customer is None) == (not record):
        raise typer.BadParameter("give either two --record options or one --customer")
    if record is not None and customer is None and len(record) != 2:
        raise typer.BadParameter("give exactly two --record options")
    region = settings.resolution.default_phone_region
    threshold = settings.resolution.match_threshold
    model = resolution.MatchModel.load(settings.paths.resolution)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        if customer is not None:
            found = resolution.explain_customer(
                con, customer_id=customer, model=model, phone_region=region, threshold=threshold
            )
            pairs = found.matches
            console.print(f"customer [bold]{customer}[/]: records by link type {found.records}")
            for id_type, value_hash in found.identifiers:
                console.print(f"  identifier {id_type} #{value_hash}")
        else:
            left, right = (_parse_record(r) for r in record)
            pairs = [
                resolution.explain_records(
                    con,
                    left=left,
                    right=right,
                    model=model,
                    phone_region=region,
                    threshold=threshold,
                )  # fmt: skip
            ]
    except LookupError as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error
    finally:
        con.close()
    for pair in pairs:
        _print_pair(pair)
    charts = [p.chart_html for p in pairs if p.chart_html]
    if charts:
        target = html or settings.paths.resolution / "explain.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(charts[0] if len(charts) == 1 else "\n".join(charts))
        console.print(f"waterfall chart: {target}")


def _print_pair(pair: resolution.PairExplanation) -> None:
    console.print(
        f"[bold]{pair.left}[/] vs [bold]{pair.right}[/]: "
        f"{'same customer' if pair.same_customer else 'different customers'}"
    )
    for id_type, value_hash in pair.shared_identifiers:
        console.print(f"  shared {id_type} #{value_hash} (deterministic link)")
    if pair.chain and len(pair.chain) > 1 or (pair.chain and not pair.shared_identifiers):
        console.print("  joined through:")
        for left, right, how in pair.chain:
            console.print(f"    {left} -> {right}: {how}")
    if pair.match_probability is None:
        return
    table = Table(title=f"match probability {pair.match_probability:.4f}", title_justify="left")
    for column in ("comparison", "level", "match weight"):
        table.add_column(column)
    for row in pair.waterfall:
        weight = row["log2_bayes_factor"]
        table.add_row(
            str(row["column_name"]),
            str(row["label_for_charts"]),
            "" if weight is None else f"{weight:+.2f}",
        )
    console.print(table)


@app.command("file")
def file(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A CSV or Parquet file of person records.")],
    mapping: Annotated[
        list[str],
        typer.Option(
            "--map",
            "-m",
            help="ROLE=COLUMN, repeatable; roles: " + ", ".join(resolution.ROLES) + ".",
        ),
    ],
    id_column: Annotated[
        str | None, typer.Option("--id", help="The record id column (default: row number).")
    ] = None,
    extra: Annotated[
        list[str] | None,
        typer.Option("--extra", help="A further column to compare, by its profile (repeatable)."),
    ] = None,
    reuse: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            help="A Splink JSON configuration to reuse or edit (as saved by an earlier run); "
            "with trained m and u it is used as is, without them it is trained.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file, .csv or .parquet (default: PATH.clusters.csv)."
        ),
    ] = None,
) -> None:
    """Cluster any person table: write record_id, cluster_id, link_type, link_detail.

    Prints how the columns were read, the blocking rules and comparisons chosen, the
    prior and the m/u table, and saves the configuration as PATH.splink.json.
    """
    settings: Settings = ctx.obj
    roles = {}
    for item in mapping:
        role, sep, column = item.partition("=")
        if not sep or not column:
            console.print(f"[bold red]error:[/] {item!r}: write --map ROLE=COLUMN")
            raise typer.Exit(code=2)
        roles[role.strip()] = column.strip()
    target = out or path.with_suffix(".clusters.csv")
    try:
        with progress() as bar:
            task = bar.add_task(f"resolving {path.name}", total=None)
            result = resolution.resolve_table(
                path,
                mapping=roles,
                settings=settings.resolution,
                id_column=id_column,
                extra_columns=extra or [],
                configuration=reuse,
            )
            bar.update(task, description=f"resolved {path.name}", total=1, completed=1)
    except (resolution.InputError, resolution.BlockingTooLoose) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=2) from error
    print_configuration(result)
    saved = result.save_configuration(path.with_suffix(".splink.json"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".parquet":
        pq.write_table(result.clusters, target)
    else:
        pacsv.write_csv(result.clusters, target)
    clusters = len(set(result.clusters.column("cluster_id").to_pylist()))
    console.print(
        f"{result.clusters.num_rows:,} records -> {clusters:,} clusters; written to {target}\n"
        f"configuration (Splink JSON, reuse with --settings): {saved}"
    )


def print_configuration(result: resolution.TableResolution) -> None:
    """The profile, blocking, comparisons, prior and m/u table of a table resolution."""
    table = Table(title="columns", title_justify="left")
    rows = [c.as_row() for c in result.profile.columns]
    for name in rows[0] if rows else ():
        table.add_column(name)
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    console.print(table)
    if result.choices is not None:
        print_choices(result.choices, result.model)
    weights = Table(title="comparisons: m, u and match weight per level", title_justify="left")
    for name in ("comparison", "level", "m", "u", "weight"):
        weights.add_column(name, justify="left" if name in ("comparison", "level") else "right")
    for row in result.m_u_table():
        weight = row["match_weight"]
        weights.add_row(
            row["comparison"],
            row["level"],
            f"{row['m']:.4g}",
            f"{row['u']:.4g}",
            "" if weight is None else f"{weight:+.2f}",
        )
    console.print(weights)


def print_choices(choices: resolution.ModelChoices, model: resolution.MatchModel) -> None:
    """What training chose: blocking rules with their counts, the prior, EM sessions."""
    blocking = Table(
        title=f"blocking rules (budget {choices.blocking.budget:,} comparisons)",
        title_justify="left",
    )
    for name in ("rule", "comparisons alone", "new comparisons"):
        blocking.add_column(name, justify="left" if name == "rule" else "right")
    for rule in choices.blocking.kept:
        blocking.add_row(rule.rule, f"{rule.comparisons:,}", f"{rule.marginal or 0:,}")
    console.print(blocking)
    training = choices.training
    prior = (
        f"{training.prior:.3g}, from {training.prior_pairs:,} pairs agreeing on "
        + " | ".join(training.prior_rules)
        if training.prior_rules
        else f"{model.prior:.3g}"
        + (" (from EM)" if training.prior is not None else " (Splink's default)")
    )
    console.print(f"prior (probability two random records match): {prior}")
    for session in training.sessions:
        status = session.error or (
            f"{session.pairs:,} pairs, about {session.matches:,.0f} true; "
            f"m taken for {', '.join(session.used_for) or 'nothing'}"
        )
        console.print(f"EM blocked on {session.rule}: {status}")
    for warning in training.warnings:
        console.print(f"[yellow]note:[/] {warning}")
