"""One settings object for the whole platform.

Values come, lowest priority first, from the defaults below, the YAML config
file (`cip --config FILE`, else the file named by `CIP_CONFIG`, else the project's
`cip.yaml`), and environment variables prefixed `CIP_` with `__` between nested names,
e.g. `CIP_RESOLUTION__MAX_PEOPLE_PER_IDENTIFIER=5`. Each stage's settings model lives
in its own package; this module only composes them and derives the data paths.

The project folder is the nearest folder at or above the working directory that holds
`cip.yaml`, so the CLI, a notebook opened from `notebooks/` and a script anywhere in the
project find the same data folder: a relative `data_dir` from the config file or the
default is relative to the config file's folder; one given in `CIP_DATA_DIR` is relative
to the working directory, as a shell user expects.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from features.settings import FeatureSettings
from models.settings import ModelSettings
from resolution.settings import ResolutionSettings
from segments.settings import SegmentSettings
from serving.settings import ServingSettings
from warehouse.engine import EngineName, SparkSettings
from warehouse.settings import GenerateSettings

DEFAULT_CONFIG = Path("cip.yaml")
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("cip_config_file", default=None)


@dataclass(frozen=True)
class DataPaths:
    """Where each store lives inside the data folder."""

    root: Path

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def resolution(self) -> Path:
        return self.root / "resolution"

    @property
    def feast(self) -> Path:
        return self.root / "feast"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def collector(self) -> Path:
        return self.root / "collector"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def lake(self) -> Path:
        """Where Spark reads and writes Parquet when `engine: spark` and `spark.location`
        names no other place."""
        return self.root / "lake"

    @property
    def bentoml(self) -> Path:
        return self.root / "bentoml"

    @property
    def api_key(self) -> Path:
        """The API key generated when none is configured (owner-only)."""
        return self.bentoml / "api_key"

    @property
    def users(self) -> Path:
        """The workspace's accounts (`cip users add`; Argon2 hashes, owner-only)."""
        return self.root / "workspace" / "users.json"

    @property
    def segments(self) -> Path:
        """Segment definitions saved from the workspace, when no `definition_dirs` is set."""
        return self.root / "segments"

    @property
    def log_file(self) -> Path:
        """What the CLI and the servers keep out of the console (dependencies' warnings,
        MLflow's and Splink's chatter)."""
        return self.root / "logs" / "cip.log"


class Settings(BaseSettings):
    """Everything the platform can be told, grouped by stage."""

    model_config = SettingsConfigDict(
        env_prefix="CIP_", env_nested_delimiter="__", extra="forbid", yaml_file=DEFAULT_CONFIG
    )

    data_dir: Path = Path("data")
    generate: GenerateSettings = GenerateSettings()
    resolution: ResolutionSettings = ResolutionSettings()
    features: FeatureSettings = FeatureSettings()
    models: ModelSettings = ModelSettings()
    segments: SegmentSettings = SegmentSettings()
    serving: ServingSettings = ServingSettings()
    engine: EngineName = "duckdb"
    """What runs resolution's graph and Splink, and the feature snapshots: `duckdb` (one
    machine, the default) or `spark` (`CIP_ENGINE=spark`; see `spark`)."""
    spark: SparkSettings = SparkSettings()

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data_dir)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _CONFIG_FILE.get() or Path(os.environ.get("CIP_CONFIG", DEFAULT_CONFIG))
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file, deep_merge=True)
        return init_settings, env_settings, yaml_source, file_secret_settings


def project_dir(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: the working directory) holding
    `cip.yaml`; `start` itself when there is none."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / DEFAULT_CONFIG).is_file():
            return folder
    return start


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """The settings from `config_file` (default: `CIP_CONFIG`, else the project's
    `cip.yaml`, see `project_dir`) and the environment, with `data_dir` made absolute."""
    if config_file is not None and not config_file.exists():
        raise FileNotFoundError(f"config file not found: {config_file}")
    if config_file is None and "CIP_CONFIG" in os.environ:
        config_file = Path(os.environ["CIP_CONFIG"])  # may name no file: no config then
    if config_file is None:
        config_file = project_dir() / DEFAULT_CONFIG
    token = _CONFIG_FILE.set(config_file)
    try:
        settings = Settings(**overrides)
    finally:
        _CONFIG_FILE.reset(token)
    if settings.data_dir.is_absolute():
        return settings
    given_here = "CIP_DATA_DIR" in os.environ or "data_dir" in overrides
    base = Path.cwd() if given_here else config_file.resolve().parent
    return settings.model_copy(update={"data_dir": base / settings.data_dir})
