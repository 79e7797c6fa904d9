"""One settings object for the whole platform.

Values come, lowest priority first, from the defaults below, the YAML config
file (`cip.yaml`, or the file named by `CIP_CONFIG` / `cip --config`), and
environment variables prefixed `CIP_` with `__` between nested names, e.g.
`CIP_RESOLUTION__MAX_PEOPLE_PER_IDENTIFIER=5`. Each stage's settings model lives
in its own package; this module only composes them and derives the data paths.
"""

from __future__ import annotations

import os
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
from warehouse.settings import GenerateSettings

DEFAULT_CONFIG = Path("cip.yaml")


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
    def bentoml(self) -> Path:
        return self.root / "bentoml"


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
        config_file = Path(os.environ.get("CIP_CONFIG", DEFAULT_CONFIG))
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file, deep_merge=True)
        return init_settings, env_settings, yaml_source, file_secret_settings


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Load settings from `config_file` (default `cip.yaml`) and the environment."""
    if config_file is not None:
        if not config_file.exists():
            raise FileNotFoundError(f"config file not found: {config_file}")
        os.environ["CIP_CONFIG"] = str(config_file)
    return Settings(**overrides)
