"""`cip serve`: the scoring, profile and collector API on a real `bentoml serve`."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console
from pipelines.flows import stream
from pipelines.processes import run_server
from pipelines.services import bentoml_serve

__all__ = ["command", "register"]


def register(app: typer.Typer) -> None:
    app.command("serve")(command)


def command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    workers: Annotated[int | None, typer.Option(help="BentoML worker processes.")] = None,
) -> None:
    """Serve live churn and LTV scores, profiles and the event collector over HTTP."""
    settings: Settings = ctx.obj
    given = {"host": host, "port": port, "workers": workers}
    serving = settings.serving.model_copy(update={k: v for k, v in given.items() if v is not None})
    settings = settings.model_copy(update={"serving": serving})
    url = f"http://{serving.host}:{serving.port}"
    console.rule("[bold cyan]serve")
    console.print(f"scoring and profile API on [bold]{url}[/] (OpenAPI: {url}/docs.json)")
    if serving.api_key is None:
        console.print(f"API key: generated in [bold]{settings.paths.api_key}[/] (owner-only)")
    else:
        console.print("API key: from the settings (CIP_SERVING__API_KEY)")
    console.print(f"marketers' report: {url}/report (sign in with the API key)")
    console.print(f"marketers' workspace: {url}/app (accounts: `cip users add NAME`)")
    console.print(f"collector: {url}/v1/track, /v1/batch, ...; stop with Ctrl-C")
    if not serving.stream.in_serve:
        with bentoml_serve(settings) as (argv, env):
            raise typer.Exit(run_server(argv, env=env))
    # The stream worker loads the collector's log (the collector's own loader stays off).
    collector = serving.collector.model_copy(update={"background_load": False})
    serving = serving.model_copy(update={"collector": collector})
    settings = settings.model_copy(update={"serving": serving})
    console.print("stream worker: realtime segments and journeys as events arrive")
    stop = threading.Event()
    worker = threading.Thread(
        target=stream.run_forever, kwargs={"settings": settings, "stop": stop}, name="stream"
    )
    worker.start()
    try:
        with bentoml_serve(settings) as (argv, env):
            code = run_server(argv, env=env)
    finally:
        stop.set()
        worker.join()
    raise typer.Exit(code)
