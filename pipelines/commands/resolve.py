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

import typer
from rich.table import Table

import resolution
from pipelines.config import Settings
from pipelines.console import console, progress_bar, run_stage
from pipelines.flows import resolve as flow
from warehouse.engine import EngineError

__all__ = ["print_configuration", "register", "stage"]

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
        stage(ctx.obj, incremental=incremental, retrain=retrain)
    except (LookupError, ValueError, resolution.BlockingTooLoose, EngineError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error


def stage(
    settings: Settings, *, incremental: bool = False, retrain: bool = False
) -> flow.ResolveOutcome:
    """The resolve stage of `cip run` (a full resolution of the warehouse)."""
    return run_stage(
        "resolve", flow.run, settings, show=_show, incremental=incremental, retrain=retrain
    )


def _show(outcome: flow.ResolveOutcome) -> None:
    result = outcome.result
    if result.choices is not None and result.model is not None:
        print_choices(result.choices, result.model)
    skipped = result.skipped
    if skipped:
        table = Table(title="identifiers not used to merge (explosion guard)", title_justify="left")
        for column in ("type", "value hash", "records", "people-signals"):
            table.add_column(column)
        for s in skipped[:10]:
            table.add_row(s.id_type, s.value_hash, f"{s.n_records:,}", str(s.n_people_signals))
        console.print(table)
    qualities = outcome.qualities
    if not qualities:
        return
    table = Table(title="quality against the synthetic truth", title_justify="left")
    table.add_column("metric")
    for q in qualities:
        table.add_column(q.scope, justify="right")
    for name in qualities[0].as_dict():
        values = [q.as_dict()[name] for q in qualities]
        table.add_row(name, *(f"{v:,}" if isinstance(v, int) else f"{v:.4f}" for v in values))
    console.print(table)


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
    if (customer is None) == (not record):
        raise typer.BadParameter("give either two --record options or one --customer")
    if record is not None and customer is None and len(record) != 2:
        raise typer.BadParameter("give exactly two --record options")
    try:
        records = None if customer is not None else tuple(map(flow.parse_record, record))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    try:
        found = flow.explain(ctx.obj, records=records, customer=customer, chart=html)
    except (LookupError, FileNotFoundError) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=1) from error
    if found.customer is not None:
        records_by_type = found.customer.records
        console.print(f"customer [bold]{customer}[/]: records by link type {records_by_type}")
        for id_type, value_hash in found.customer.identifiers:
            console.print(f"  identifier {id_type} #{value_hash}")
    for pair in found.pairs:
        _print_pair(pair)
    if found.chart is not None:
        console.print(f"waterfall chart: {found.chart}")


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
    roles = {}
    for item in mapping:
        role, sep, column = item.partition("=")
        if not sep or not column:
            console.print(f"[bold red]error:[/] {item!r}: write --map ROLE=COLUMN")
            raise typer.Exit(code=2)
        roles[role.strip()] = column.strip()
    try:
        with progress_bar() as progress:
            outcome = flow.resolve_file(
                ctx.obj,
                path=path,
                mapping=roles,
                id_column=id_column,
                extra_columns=extra,
                configuration=reuse,
                out=out,
                progress=progress,
            )
    except (resolution.InputError, resolution.BlockingTooLoose) as error:
        console.print(f"[bold red]error:[/] {error}")
        raise typer.Exit(code=2) from error
    print_configuration(outcome.result)
    console.print(
        f"{outcome.result.clusters.num_rows:,} records -> {outcome.clusters:,} clusters; "
        f"written to {outcome.clusters_file}\n"
        f"configuration (Splink JSON, reuse with --settings): {outcome.configuration_file}"
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
