"""`cip serve`: the scoring, profile and collector API on a real `bentoml serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from pipelines.config import Settings
from pipelines.console import console
from serving.auth import key_file

__all__ = ["bentoml_serve", "command", "register"]

PROJECT_DIR = Path(__file__).resolve().parents[2]


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
        console.print(f"API key: generated in [bold]{key_file(settings)}[/] (owner-only)")
    else:
        console.print("API key: from the settings (CIP_SERVING__API_KEY)")
    console.print(f"collector: {url}/v1/track, /v1/batch, ...; stop with Ctrl-C")
    argv, env = bentoml_serve(settings)
    raise typer.Exit(subprocess.run(argv, env=env, check=False).returncode)


def bentoml_serve(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The `bentoml serve` command line and environment for `settings`.

    BENTOML_HOME lives in the data folder; the settings go along as absolute paths and
    `CIP_SERVING__*` variables, so the service reads the same ones from any directory; and
    each worker gets one OpenMP thread: a request scores one row, where LightGBM's thread
    hand-off costs far more than the prediction (tens of ms on a busy machine).
    """
    serving = settings.serving
    bentoml_home = settings.paths.bentoml.resolve()
    bentoml_home.mkdir(parents=True, exist_ok=True)
    config = Path(os.environ.get("CIP_CONFIG", "cip.yaml")).resolve()
    env = {
        **os.environ,
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "true",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "CIP_CONFIG": str(config),
        "CIP_DATA_DIR": str(settings.data_dir.resolve()),
        "CIP_SERVING__HOST": serving.host,
        "CIP_SERVING__PORT": str(serving.port),
        "CIP_SERVING__WORKERS": str(serving.workers),
    }
    argv = [sys.executable, "-m", "bentoml", "serve", "serving.service:Scoring"]
    argv += ["--host", serving.host, "--port", str(serving.port)]
    argv += ["--working-dir", str(PROJECT_DIR)]
    return argv, env
