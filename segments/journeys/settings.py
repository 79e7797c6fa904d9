"""Settings for journeys (cip journeys): where definitions and templates are, which
transport carries each channel, how sends are retried."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from segments.destinations.base import RetryPolicy
from segments.journeys.channels import ChannelSetting

__all__ = ["JourneySettings"]


class JourneySettings(BaseModel):
    """Settings for journeys (cip journeys)."""

    model_config = ConfigDict(extra="forbid")

    definition_dirs: list[Path] = []
    """Folders of the user's journey YAML files, read after the shipped examples."""
    template_dirs: list[Path] = []
    """Folders of the user's message templates, read after the shipped ones."""
    include_examples: bool = True
    """Run the example journeys shipped in `segments/journeys/examples/`."""
    channels: dict[str, SerializeAsAny[ChannelSetting]] = {}
    """The transport per channel (`email: {type: smtp, host, port, sender}`, `push: {type:
    push, url}`); a channel not named here writes files into the exports folder."""
    retry: RetryPolicy = RetryPolicy(attempts=5, backoff_seconds=30, max_backoff_seconds=3600)
    """Tries per message and the backoff between them."""
    unsubscribe_url: str | None = None
    """The unsubscribe link in every email, `{token}` standing for the signed token; the
    service answers it at `/unsubscribe/{token}`. Default: `cip serve`'s own address
    (`http://<serving.host>:<serving.port>/unsubscribe/{token}`); set the public address
    the service is reached at (`https://cip.shop.example.com/unsubscribe/{token}`)."""
    tick_seconds: float = Field(5.0, gt=0)
    """How often `cip journeys run` ticks."""
    batch_size: int = Field(200, ge=1)
    """Messages marked in flight together (at most this many are re-sent after a crash)."""
    concurrency: int = Field(8, ge=1, le=64)
    """Messages of a batch sent at once."""
