"""`cip privacy`: forget people (erasure everywhere, then suppression) and export what is
held about one (an access request)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console, run_stage
from pipelines.flows import access
from pipelines.flows import privacy as flow
from pipelines.flows.privacy import Identifier

__all__ = ["export", "forget", "register"]

privacy_app = typer.Typer(help="Privacy requests: the right to be forgotten, access requests.")


def register(app: typer.Typer) -> None:
    app.add_typer(privacy_app, name="privacy")


Emails = Annotated[list[str] | None, typer.Option("--email", help="An e-mail address.")]
Phones = Annotated[list[str] | None, typer.Option("--phone", help="A phone number.")]
UserIds = Annotated[list[str] | None, typer.Option("--user-id", help="A site or app user id.")]
CustomerIds = Annotated[
    list[str] | None, typer.Option("--customer-id", help="A customer id (`cus_...`).")
]


def _identifiers(**given: list[str] | None) -> list[Identifier]:
    try:
        return [Identifier(kind, v) for kind, values in given.items() for v in values or ()]  # type: ignore[arg-type]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@privacy_app.command()
def forget(
    ctx: typer.Context,
    email: Emails = None,
    phone: Phones = None,
    user_id: UserIds = None,
    customer_id: CustomerIds = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="A CSV file whose header names identifier kinds (email, phone, user_id, "
            "customer_id): every non-blank cell is forgotten.",
        ),
    ] = None,
) -> None:
    """Erase everyone the identifiers name from every store of the data folder, and keep
    them from coming back (suppression). Repeat an option for several people. An earlier
    request left pending by a failure is completed first."""
    settings: Settings = ctx.obj
    identifiers = _identifiers(email=email, phone=phone, user_id=user_id, customer_id=customer_id)
    if file is not None:
        try:
            identifiers += flow.read_identifiers(file)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--file") from None
    if not identifiers:
        raise typer.BadParameter(
            "name someone: --email, --phone, --user-id, --customer-id or --file"
        )
    outcome = run_stage("privacy forget", flow.forget, settings, identifiers=identifiers)
    for masked in outcome.unmatched:
        console.print(f"{masked} matched no one: nothing to erase; it is suppressed from now on")
    if outcome.status != "done":
        console.print(
            f"[red]request {outcome.request_id} is pending: {outcome.error}[/red]\n"
            "Nothing is reported done until every step is; run `cip privacy forget` again "
            "(with any identifier, or the same) to complete it."
        )
        raise typer.Exit(1)


@privacy_app.command()
def export(
    ctx: typer.Context,
    email: Emails = None,
    phone: Phones = None,
    user_id: UserIds = None,
    customer_id: CustomerIds = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here (default: print).")
    ] = None,
) -> None:
    """Everything held about a person as one JSON document: profile, records by source,
    consents, scores with reasons, segments, sends."""
    settings: Settings = ctx.obj
    identifiers = _identifiers(email=email, phone=phone, user_id=user_id, customer_id=customer_id)
    if not identifiers:
        raise typer.BadParameter("name someone: --email, --phone, --user-id or --customer-id")
    document = access.export(settings, identifiers=identifiers)
    text = access.to_json(document)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text)
        console.print(f"{len(document['customers'])} customer(s) written to {out}")
    if not document["matched"]:
        typer.echo("no one matches these identifiers", err=True)
