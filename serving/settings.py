"""Settings for the HTTP services (cip serve)."""

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from serving.collector.settings import CollectorSettings

__all__ = ["ServingSettings", "StreamSettings"]


class StreamSettings(BaseModel):
    """The stream worker (`cip stream`; `cip serve` runs one beside the collector)."""

    model_config = ConfigDict(extra="forbid")

    in_serve: bool = True
    """`cip serve` runs the stream worker, which then loads the collector's log itself (the
    collector's own background loader stays off)."""

    interval_seconds: float = Field(default=0.2, gt=0)
    """How often the worker looks for new events in the collector's log."""

    sweep_seconds: float = Field(default=30.0, gt=0)
    """How often the worker re-evaluates the realtime segments for their members, ending the
    stays that time ended without an event of the customer's own (a cart add that left its
    window), as of the data's clock, as the next batch refresh would."""

    hold_seconds: float = Field(default=10.0, gt=0)
    """While events flow, the worker keeps the warehouse open from one micro-batch to the
    next (DuckDB rewrites the tables' last row groups at each close), at most this long at
    a time; then it leaves the warehouse for a second to any command waiting for it."""


class ServingSettings(BaseModel):
    """Settings for the HTTP services (cip serve)."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    """Bearer token that callers of the scoring and profile API must send. Set it with the
    environment variable CIP_SERVING__API_KEY, never in a committed file; when unset, the
    service generates one into `<data_dir>/bentoml/api_key` (readable by the owner only)."""

    host: str = "127.0.0.1"
    """Interface `cip serve` listens on (0.0.0.0 to accept other machines)."""

    port: int = Field(default=3000, ge=1, le=65535)
    """TCP port of `cip serve`."""

    workers: int = Field(default=1, ge=1)
    """BentoML worker processes; each loads the models and lookup tables itself."""

    batch_limit: int = Field(default=100, ge=1)
    """Most customers one `/score_batch` call may ask for."""

    feature_cache_rows: int = Field(default=50_000, ge=0)
    """Customers whose decoded online features each worker keeps between requests (0.7 KB
    each with the demo's 64 model features; 0: every request reads the store). The SQLite
    online store only; any change to it (a materialization, an erasure) empties the cache."""

    max_request_bytes: int = Field(default=256 * 1024, ge=1024)
    """Largest request body the API reads (a full batch of 100 customers is about 10 KB);
    bigger ones are refused with 413 before they are read. The collector under `/v1` has
    the Segment spec's own limits (`collector.max_request_bytes`)."""

    session_hours: float = Field(default=12.0, gt=0)
    """How long a browser stays logged in to the report after entering the API key at
    `/login`."""

    reload_interval_seconds: float = Field(default=30.0, ge=0)
    """How often the service checks for a new champion model or new lookup tables (0: never;
    `POST /reload` always works)."""

    access_log: bool = True
    """BentoML's per-request access log (paths and status only, never bodies or queries)."""

    metrics: bool = True
    """BentoML's Prometheus request metrics at `/metrics`."""

    collector: CollectorSettings = CollectorSettings()
    """The Segment-compatible event collector (serving/collector/settings.py)."""

    stream: StreamSettings = StreamSettings()
    """The stream worker: new events into realtime segments and journeys within seconds."""
