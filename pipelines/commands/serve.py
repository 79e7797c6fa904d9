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
    serving = settings.serving.model_copy(
        update={
            k: v
            for k, v in {"host": host, "port": port, "workers": workers}.items()
            if v is not None
        }
    )
    url = f"http://{serving.host}:{serving.port}"
    console.rule("[bold cyan]serve")
    console.print(f"scoring and profile API on [bold]{url}[/] (OpenAPI: {url}/docs.json)")
    if settings.serving.api_key is None:
        console.print(f"API key: generated in [bold]{key_file(settings)}[/] (owner-only)")
    else:
        console.print("API key: from the settings (CIP_SERVING__API_KEY)")
    console.print(f"collector: {url}/v1/track, /v1/batch, ...; stop with Ctrl-C")
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:Scoring"]
        + ["--host", serving.host, "--port", str(serving.port)]
        + ["--working-dir", str(PROJECT_DIR)],
        env=serve_environment(
            settings, host=serving.host, port=serving.port, workers=serving.workers
        ),
        check=False,
    )
    raise typer.Exit(result.returncode)


def serve_environment(settings: Settings, *, host: str, port: int, workers: int) -> dict[str, str]:
    """The environment of `bentoml serve`: BENTOML_HOME in the data folder, the settings (as
    absolute paths, so that the service reads the same ones from any working directory), and
    one OpenMP thread per worker: a request is one row, and LightGBM's thread hand-off costs
    far more than the prediction (tens of ms on a busy machine); workers give parallelism."""
    bentoml_home = settings.paths.bentoml.resolve()
    bentoml_home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "true",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "CIP_DATA_DIR": str(settings.data_dir.resolve()),
        "CIP_SERVING__HOST": host,
        "CIP_SERVING__PORT": str(port),
        "CIP_SERVING__WORKERS": str(workers),
    }
    if "CIP_CONFIG" in env:
        env["CIP_CONFIG"] = str(Path(env["CIP_CONFIG"]).resolve())
    else:
        env["CIP_CONFIG"] = str(Path("cip.yaml").resolve())
    return env
