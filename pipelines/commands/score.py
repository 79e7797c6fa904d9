"""`cip score`: score every customer with the champions and append to `scores`.

Everyone with an order before the as-of date is scored, however long ago (recency
is a feature); fragments (no email, phone or user id) only with
`models.include_fragments` (see `pipelines.flows.score`). Features come point in time
from Feast at the as-of date (default: the latest order), so a past date backtests the
platform: compare its scores with what then happened.
"""

from __future__ import annotations

from datetime import date

import typer

from pipelines.commands.train import AsOf, clear_errors
from pipelines.config import Settings
from pipelines.console import run_stage
from pipelines.flows import score as flow

__all__ = ["command", "register", "stage"]


def register(app: typer.Typer) -> None:
    app.command("score")(command)


def command(ctx: typer.Context, as_of: AsOf = None) -> None:
    """Score every customer with the champion models; keeps every earlier scoring."""
    with clear_errors():
        stage(ctx.obj, as_of=as_of.date() if as_of else None)


def stage(settings: Settings, *, as_of: date | None = None) -> flow.ScoreOutcome:
    """The score stage of `cip run`."""
    return run_stage("score", flow.run, settings, as_of=as_of)
