"""Destinations: the kinds of place a segment can go, each one small class, chosen by name.

Every kind is a `Destination` (`base.py`: its settings are its fields, `rows` and `send`
its behaviour), declared in a module of its own and registered here by its `type`; the
config names the kind (`segments.destinations: [{type: webhook, name: esp, url: ...}]`)
and `parse` builds the registered class from it. Adding a kind is one new module plus its
line in `_DECLARED` (or `register(MyDestination)` at run time, for a plugin or a test).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, SerializeAsAny

from segments.destinations.ad_audience import AdAudienceDestination
from segments.destinations.base import (
    CONTACT_COLUMN,
    Consent,
    Destination,
    Parcel,
    RetryPolicy,
    Sent,
)
from segments.destinations.file import FileDestination
from segments.destinations.webhook import WebhookDestination

__all__ = [
    "CONTACT_COLUMN",
    "KINDS",
    "AdAudienceDestination",
    "Consent",
    "Destination",
    "DestinationSetting",
    "FileDestination",
    "Parcel",
    "RetryPolicy",
    "Sent",
    "WebhookDestination",
    "parse",
    "register",
]

KINDS: dict[str, type[Destination]] = {}
"""Every destination kind by its `type`."""


def register(kind: type[Destination]) -> type[Destination]:
    """Make `kind` known by its `type` (usable as a class decorator)."""
    name = kind.model_fields["type"].default
    if not isinstance(name, str):
        raise TypeError(f"{kind.__name__}: declare `type: Literal['<kind>'] = '<kind>'`")
    KINDS[name] = kind
    return kind


_DECLARED = (FileDestination, WebhookDestination, AdAudienceDestination)
for _kind in _DECLARED:
    register(_kind)


def parse(value: Any) -> Destination:
    """A destination from its settings (a mapping naming its `type`), or as given."""
    if isinstance(value, Destination):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"a destination is a mapping with a type, got {value!r}")
    kind = value.get("type")
    if kind not in KINDS:
        raise ValueError(f"unknown destination type {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind].model_validate(value)


DestinationSetting = Annotated[SerializeAsAny[Destination], BeforeValidator(parse)]
"""A destination in settings: validated as the kind its `type` names."""
