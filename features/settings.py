"""Settings for feature computation and the Feast repo (cip features)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class FeatureSettings(BaseModel):
    """Settings for feature computation and the Feast repo (cip features)."""

    model_config = ConfigDict(extra="forbid")

    windows: tuple[int, ...] = (30, 90, 365)
    """Look-back windows in days of the windowed features (orders_30d, sessions_90d, ...)."""
    snapshot_every_months: int = Field(1, ge=1, le=12)
    """Snapshots: one as-of date every this many months over the history, plus the latest."""
    ttl_days: int = Field(45, ge=1)
    """How old a snapshot may be and still answer a point-in-time query (Feast TTL); must
    exceed the snapshot interval, so that every timestamp inside the history is answered."""
    session_gap_minutes: int = Field(30, ge=1)
    """Web and app events further apart than this start a new session."""
    online_store: Literal["sqlite", "redis"] = "sqlite"
    """Feast online store: the embedded SQLite file, or a Redis server."""
    redis_connection_string: str = "localhost:6379"
    """Redis `host:port[,password=...,ssl=true]`, used when `online_store` is redis."""
    project: str = Field("cip", pattern=r"^[a-z][a-z0-9_]*$")
    """Feast project name."""

    @field_validator("windows")
    @classmethod
    def _sorted_positive(cls, windows: tuple[int, ...]) -> tuple[int, ...]:
        if not windows or any(w <= 0 for w in windows):
            raise ValueError("windows must be positive numbers of days")
        return tuple(sorted(set(windows)))

    @model_validator(mode="after")
    def _ttl_covers_interval(self) -> FeatureSettings:
        interval = 31 * self.snapshot_every_months
        if self.ttl_days <= interval:
            raise ValueError(
                f"ttl_days ({self.ttl_days}) must exceed the snapshot interval "
                f"({self.snapshot_every_months} month(s), up to {interval} days)"
            )
        return self
