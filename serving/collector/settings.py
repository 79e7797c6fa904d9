"""Settings for the event collector (`cip collect`, or mounted inside `cip serve`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["CollectorSettings"]


class CollectorSettings(BaseModel):
    """Write keys, the Segment spec's size limits, the append log and the micro-batch loader."""

    model_config = ConfigDict(extra="forbid")

    write_keys: dict[str, SecretStr] = {}
    """Source name -> write key, e.g. `{web: <key>, backend: <key>}`. Keys are secrets: set them
    with CIP_SERVING__COLLECTOR__WRITE_KEYS='{"web": "..."}', never in a committed file. With no
    write key every request is refused (401)."""

    host: str = "127.0.0.1"
    """Interface `cip collect` listens on (0.0.0.0 to accept other machines)."""

    port: int = Field(default=8088, ge=1, le=65535)
    """TCP port of `cip collect`."""

    max_message_bytes: int = Field(default=32 * 1024, ge=1024)
    """Largest message (one event), as the Segment spec sets it: 32 KB."""

    max_request_bytes: int = Field(default=500 * 1024, ge=1024)
    """Largest request body after gzip decoding, as the Segment spec sets it: 500 KB."""

    segment_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """The append log starts a new segment file when the current one reaches this size."""

    load_batch_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """How much of the log one micro-batch moves into the warehouse (16 MB: about 35,000
    events of the size analytics-python sends)."""

    load_interval_seconds: float = Field(default=2.0, gt=0)
    """How often the collector moves new events from its log into the warehouse."""

    background_load: bool = True
    """Whether the collector moves its log into the warehouse itself; off while a stream
    worker (`cip stream`, or the one `cip serve` runs) does it."""
