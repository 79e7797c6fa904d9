"""Unsubscribe links: a signed token per message, read back by the HTTP service.

Every email a journey sends carries a link `<unsubscribe_url with {token}>` in its body
and in its `List-Unsubscribe` header. The token names the customer id, the channel and
the message (its idempotency key), signed with a key derived from the service's API key
(itsdangerous, HMAC-SHA1 over URL-safe base64): it holds no email address, and a token
that was altered or made up is refused. The service's `/unsubscribe/<token>` route
(`serving.unsubscribe`) reads it and withdraws the consent of the channel
(`withdraw`), so the next message on that channel is suppressed and the journeys whose
channels are all withdrawn end (`consent_withdrawn`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import duckdb
from itsdangerous import BadSignature, URLSafeSerializer

from resolution.consent import record_decision
from segments.journeys.channels import CHANNELS

__all__ = ["Unsubscribe", "read_token", "sign_token", "unsubscribe_secret", "withdraw"]

_SALT = "cip-unsubscribe-v1"


def unsubscribe_secret(api_key: str) -> str:
    """The signing key of unsubscribe tokens, derived from the service's API key (changing
    the key voids the links already sent)."""
    return hmac.new(api_key.encode(), b"cip unsubscribe v1", "sha256").hexdigest()


@dataclass(frozen=True)
class Unsubscribe:
    """What a token says: who asked to stop which channel, from which message."""

    customer_id: str
    channel: str
    message: str


def sign_token(*, secret: str, customer_id: str, channel: str, message: str) -> str:
    """The URL-safe token of an unsubscribe link."""
    return URLSafeSerializer(secret, salt=_SALT).dumps([customer_id, channel, message])


def read_token(token: str, *, secret: str) -> Unsubscribe:
    """What `token` says; ValueError when it is not one this platform signed."""
    try:
        customer_id, channel, message = URLSafeSerializer(secret, salt=_SALT).loads(token)
    except (BadSignature, TypeError, ValueError):
        raise ValueError("this unsubscribe link is not valid (altered or incomplete)") from None
    if channel not in CHANNELS or not all(isinstance(v, str) for v in (customer_id, message)):
        raise ValueError("this unsubscribe link is not valid (unknown channel)")
    return Unsubscribe(customer_id=customer_id, channel=channel, message=message)


def withdraw(con: duckdb.DuckDBPyConnection, *, link: Unsubscribe, at: datetime) -> str | None:
    """Withdraw the consent of the link's channel for its customer (kept in the consent
    table as `unsubscribe-<message>`); the customer it was recorded for, None if unknown."""
    return record_decision(
        con,
        customer_id=link.customer_id,
        purpose=CHANNELS[link.channel],
        granted=False,
        decided_at=at,
        key=f"unsubscribe-{link.message}",
        origin="unsubscribe",
    )
