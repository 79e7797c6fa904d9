"""The engine the settings name, built once per process: DuckDB (None) or a Spark engine."""

from __future__ import annotations

from functools import cache

from pipelines.config import Settings
from warehouse.engine import Engine

__all__ = ["engine_for"]


def engine_for(settings: Settings) -> Engine | None:
    """None for `engine: duckdb` (every stage's default); the Spark engine of `spark.*` for
    `engine: spark` (its session starts on first use, with clear errors)."""
    if settings.engine == "duckdb":
        return None
    return _spark(settings.spark.model_dump_json(), str(settings.paths.lake))


@cache
def _spark(spark_settings: str, default_location: str) -> Engine:
    from warehouse.engine import SparkSettings
    from warehouse.spark import SparkEngine

    settings = SparkSettings.model_validate_json(spark_settings)
    return SparkEngine(settings, location=settings.location or default_location)
