"""The scoring service as the top layer runs it: its typed config, and `bentoml serve`.

`service_config` resolves the settings into the `serving.config.ServiceConfig` that
`serving.service.build_service` builds the service from (paths in the data folder, the
tracking URI, the API key). `bentoml_serve` writes that config to an owner-only file in the
data folder and gives the `bentoml serve pipelines.api:Scoring` command line that reads
it: no settings travel through environment variables, and no secret on a command line.
`PrivacyRequests` hands the service the privacy flows (`serving.privacy.PrivacyDesk`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines import flows
from pipelines.config import Settings
from pipelines.flows import access, privacy
from pipelines.tracking import tracking_uri
from serving.auth import api_key
from serving.config import ServiceConfig
from serving.workspace.config import WorkspaceConfig

__all__ = ["CONFIG_ARGUMENT", "PrivacyRequests", "bentoml_serve", "service_config"]

PROJECT_DIR = Path(__file__).resolve().parents[1]
CONFIG_ARGUMENT = "config"
"""The BentoML argument (`--arg config=<file>`) naming the service's config file."""


def service_config(settings: Settings) -> ServiceConfig:
    """The service's config for `settings` (generating the API key file on first use)."""
    paths = settings.paths
    return ServiceConfig(
        serving=settings.serving.model_copy(update={"api_key": None}),
        api_key=api_key(configured=settings.serving.api_key, key_file=paths.api_key),
        warehouse=paths.warehouse.resolve(),
        feast_dir=paths.feast.resolve(),
        exports=paths.exports.resolve(),
        collector_log=paths.collector.resolve(),
        features=settings.features,
        tracking_uri=tracking_uri(settings),
        default_phone_region=settings.resolution.default_phone_region,
        top_reasons=settings.models.top_reasons,
        log_file=paths.log_file.resolve(),
        workspace=WorkspaceConfig(
            users_file=paths.users.resolve(),
            warehouse=paths.warehouse.resolve(),
            exports=paths.exports.resolve(),
            definition_folders=[p.resolve() for p in flows.segments.definition_folders(settings)],
            save_folder=flows.segments.save_folder(settings).resolve(),
            segments=settings.segments,
            phone_region=settings.resolution.default_phone_region,
            session_hours=settings.serving.session_hours,
        ),
    )


@contextmanager
def bentoml_serve(settings: Settings) -> Iterator[tuple[list[str], dict[str, str]]]:
    """The `bentoml serve` command line and environment for `settings`, valid while the
    context lasts (the config file is removed after).

    BENTOML_HOME lives in the data folder, and each worker gets one OpenMP thread: a
    request scores one row, where LightGBM's thread hand-off costs far more than the
    prediction (tens of ms on a busy machine).
    """
    serving = settings.serving
    home = settings.paths.bentoml.resolve()
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / f"service-{os.getpid()}.json"
    fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(service_config(settings).to_json())
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    argv = [sys.executable, "-m", "bentoml", "serve", "pipelines.api:Scoring"]
    argv += ["--host", serving.host, "--port", str(serving.port)]
    argv += ["--working-dir", str(PROJECT_DIR), "--arg", f"{CONFIG_ARGUMENT}={config_file}"]
    try:
        yield argv, env
    finally:
        config_file.unlink(missing_ok=True)


class PrivacyRequests:
    """The privacy flows as the service calls them (`serving.privacy.PrivacyDesk`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @staticmethod
    def _identifiers(pairs: list[tuple[str, str]]) -> list[privacy.Identifier]:
        return [privacy.Identifier(kind, value) for kind, value in pairs]  # type: ignore[arg-type]

    def forget(self, identifiers: list[tuple[str, str]]) -> dict[str, object]:
        outcome = privacy.forget(self.settings, identifiers=self._identifiers(identifiers))
        return {
            "request_id": outcome.request_id,
            "status": outcome.status,
            "customers_erased": outcome.customers,
            "unmatched": outcome.unmatched,
            "rows_erased": sum(outcome.rows_erased.values()),
            "files_rewritten": outcome.files_rewritten,
            "pending_requests_completed": outcome.replayed,
            **({"error": f"pending, completed by the next request: {outcome.error}"}
               if outcome.error else {}),
        }  # fmt: skip

    def export(self, identifiers: list[tuple[str, str]]) -> dict[str, object]:
        document = access.export(self.settings, identifiers=self._identifiers(identifiers))
        return json.loads(access.to_json(document))
