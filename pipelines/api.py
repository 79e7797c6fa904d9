"""The BentoML entry module: `bentoml serve pipelines.api:Scoring`, as `cip serve` runs it.

`cip serve` passes the service's typed config as a file (`--arg config=<file>`, written by
`pipelines.services.bentoml_serve`); run by hand without it, the service takes the settings
as the CLI reads them (`cip.yaml`, `CIP_*` variables). Importing this module builds the
service: the server process imports it, the rest of the code calls
`serving.service.build_service` instead.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
from pydantic import BaseModel

from pipelines.config import load_settings
from pipelines.logs import keep_warnings_in
from pipelines.services import PrivacyRequests, service_config
from serving.config import ServiceConfig
from serving.logs import escape_control_characters
from serving.service import build_service

__all__ = ["Scoring"]


class _Arguments(BaseModel):
    config: Path | None = None


def _config() -> ServiceConfig:
    arguments = bentoml.use_arguments(_Arguments)
    if arguments.config is not None:
        return ServiceConfig.from_json(arguments.config.read_bytes())
    return service_config(load_settings())


_service_config = _config()
escape_control_characters()
if _service_config.log_file is not None:
    keep_warnings_in(_service_config.log_file)
_settings = load_settings(data_dir=_service_config.warehouse.parent)
Scoring = build_service(config=_service_config, privacy=PrivacyRequests(_settings))
