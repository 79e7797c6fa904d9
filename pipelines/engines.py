"""The engine the settings name, built once per process: DuckDB (None) or a Spark engine;
and the lake the raw tables are copied to for Spark (`warehouse.lake`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from pipelines.config import Settings
from warehouse.engine import Engine

if TYPE_CHECKING:
    from warehouse.spark import SparkEngine

__all__ = ["engine_for", "lake_folder", "raw_lake"]


def engine_for(settings: Settings) -> Engine | None:
    """None for `engine: duckdb` (every stage's default); the Spark engine of `spark.*` for
    `engine: spark` (its session starts on first use, with clear errors)."""
    if settings.engine == "duckdb":
        return None
    return _spark(settings.spark.model_dump_json(), str(settings.paths.lake))


def raw_lake(settings: Settings) -> Path | None:
    """With `engine: spark`, the lake folder the raw tables are copied to, checked writable
    (the error names `spark.location`); None with `engine: duckdb`."""
    if settings.engine == "duckdb":
        return None
    return _spark(settings.spark.model_dump_json(), str(settings.paths.lake)).lake_folder()


def lake_folder(settings: Settings) -> Path | None:
    """The lake's folder whichever engine is set (`spark.location`, default `lake/` in the
    data folder), unchecked; None when it is an object store URI."""
    location = settings.spark.location or str(settings.paths.lake)
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(parsed.path if parsed.scheme else location)


@cache
def _spark(spark_settings: str, default_location: str) -> SparkEngine:
    from warehouse.engine import SparkSettings
    from warehouse.spark import SparkEngine

    settings = SparkSettings.model_validate_json(spark_settings)
    return SparkEngine(settings, location=settings.location or default_location)
