"""What the scoring service is built from: one typed config that the top layer passes in.

`pipelines` turns the platform's settings into a `ServiceConfig` (paths inside the data
folder, the tracking URI, the API key) and `serving.service.build_service` builds the
BentoML service from it; nothing in `serving/` reads settings files or environment
variables. To reach a `bentoml serve` process the config travels as one owner-only JSON
file (`to_json` / `from_json`), secrets included, never on a command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from features.settings import FeatureSettings
from serving.settings import ServingSettings
from serving.workspace.config import WorkspaceConfig

__all__ = ["ServiceConfig"]


class ServiceConfig(BaseModel):
    """Everything the scoring, profile and collector service needs, resolved."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serving: ServingSettings
    """The HTTP settings: workers, limits, reload interval, collector."""
    api_key: SecretStr
    """The bearer key of the API (and of the report's login form)."""
    warehouse: Path
    """The DuckDB warehouse the customer directory is copied from."""
    feast_dir: Path
    """The Feast registry and online store of the data folder."""
    exports: Path
    """Where `cip activate` writes the marketers' report and the segment files."""
    collector_log: Path
    """The collector's append log."""
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    """Feature settings, to open the Feast store as `cip features` built it."""
    tracking_uri: str
    """The MLflow tracking and registry URI holding the champion models."""
    default_phone_region: str = "US"
    """Region phone numbers are read in, as resolution reads them."""
    top_reasons: int = Field(default=3, ge=1)
    """How many reasons (SHAP) to give per score."""
    log_file: Path | None = None
    """Where the server process keeps what it should not print (dependencies' warnings)."""
    workspace: WorkspaceConfig | None = None
    """The marketers' workspace mounted at `/app` (none: not served)."""

    def to_json(self) -> bytes:
        """The config as JSON with its secrets in clear: write it to owner-only files only."""
        return orjson.dumps(self.model_dump(), default=_reveal)

    @classmethod
    def from_json(cls, data: bytes | str) -> ServiceConfig:
        return cls.model_validate_json(data)


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
