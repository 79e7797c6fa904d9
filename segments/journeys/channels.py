"""Channels: how a rendered message reaches a customer, one small class per transport.

A journey's send step names a logical channel (`email`, `push`); the settings say which
transport carries it (`segments.journeys.channels: {email: {type: smtp, host: ...},
push: {type: push, url: ...}}`), and a channel with no transport configured goes to
files (`type: file`, one JSON file per message under `exports/journeys/<channel>/`).

Every message carries its idempotency key: the `Idempotency-Key` header of a push, the
`Message-ID` (and `X-Idempotency-Key`) of an email, the file name of a file, so that a
message re-sent after a crash is recognised by whoever receives it. `deliver` raises
`DeliveryError`, `permanent` when a retry cannot help (a 4xx answer, an address the
SMTP server rejects with 5xx).
"""

from __future__ import annotations

import json
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, PrivateAttr

__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelSetting",
    "DeliveryError",
    "FileChannel",
    "Message",
    "PushChannel",
    "SmtpChannel",
    "parse_channel",
]

CHANNELS: dict[str, str] = {"email": "email", "push": "push"}
"""The logical channels a journey can send on, with the consent purpose each needs (the
profile's `consent_<purpose>`; `warehouse.schemas.CONSENT_PURPOSES`)."""


class DeliveryError(Exception):
    """A message did not go; `permanent` when retrying cannot help."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    """One rendered message to one customer."""

    idempotency_key: str
    channel: str
    journey: str
    step: str
    customer_id: str
    to: str
    """The email address (email) or the customer id the push gateway knows devices by."""
    content: dict[str, str]
    data: dict[str, Any] = field(default_factory=dict)


class Channel(BaseModel):
    """A transport. A kind subclasses it with `type: Literal[...]` and `deliver`."""

    model_config = ConfigDict(extra="forbid")
    type: str
    timeout_seconds: float = Field(10.0, gt=0)

    def deliver(self, message: Message, *, exports: Path) -> str:
        """Send `message`; return where it went; raise DeliveryError when it did not."""
        raise NotImplementedError


class FileChannel(Channel):
    """One JSON file per message, `exports/journeys/<channel>/<idempotency key>.json`."""

    type: Literal["file"] = "file"

    def deliver(self, message: Message, *, exports: Path) -> str:
        path = exports / "journeys" / message.channel / f"{message.idempotency_key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(message.__dict__, default=str, indent=1))
        partial.replace(path)
        return str(path)


class SmtpChannel(Channel):
    """Plain-text email over SMTP (optionally STARTTLS and login)."""

    type: Literal["smtp"] = "smtp"
    host: str = "localhost"
    port: int = 25
    sender: str = "Shop <news@shop.example.com>"
    starttls: bool = False
    username: str | None = None
    password: str | None = None

    def deliver(self, message: Message, *, exports: Path) -> str:  # noqa: ARG002
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.content["subject"]
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = f"<{message.idempotency_key}@cip>"
        email["X-Idempotency-Key"] = message.idempotency_key
        if message.data.get("unsubscribe_url"):  # one click in the mail client (RFC 8058)
            email["List-Unsubscribe"] = f"<{message.data['unsubscribe_url']}>"
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        email.set_content(message.content["body"])
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise DeliveryError(
                f"SMTP refused the recipient ({codes[0]})", permanent=min(codes) >= 500
            ) from None
        except smtplib.SMTPResponseException as error:
            text = error.smtp_error.decode(errors="replace")
            raise DeliveryError(
                f"SMTP {error.smtp_code}: {text}", permanent=error.smtp_code >= 500
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {error}") from None
        return f"smtp://{self.host}:{self.port}"


class PushChannel(Channel):
    """An FCM-shaped JSON POST (`{"message": {"token", "notification": {title, body},
    "data"}}`) to `url`, with the idempotency key in the `Idempotency-Key` header."""

    type: Literal["push"] = "push"
    url: HttpUrl
    headers: dict[str, str] = {}
    _client: httpx.Client | None = PrivateAttr(None)

    def deliver(self, message: Message, *, exports: Path) -> str:  # noqa: ARG002
        notification = {k: message.content[k] for k in ("title", "body")}
        data = {
            "journey": message.journey,
            "step": message.step,
            "idempotency_key": message.idempotency_key,
        }
        if "url" in message.content:
            data["url"] = message.content["url"]
        body = {"message": {"token": message.to, "notification": notification, "data": data}}
        headers = {**self.headers, "Idempotency-Key": message.idempotency_key}
        url = str(self.url)
        if self._client is None:  # one connection pool for all the messages of a runner
            self._client = httpx.Client(timeout=self.timeout_seconds)
        try:
            answer = self._client.post(url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"push {url}: {type(error).__name__}: {error}") from None
        if answer.status_code >= 300:
            retry = answer.status_code == 429 or answer.status_code >= 500
            raise DeliveryError(
                f"push {url}: HTTP {answer.status_code}: {answer.text[:200]}", permanent=not retry
            )
        return url


_KINDS: dict[str, type[Channel]] = {
    k.model_fields["type"].default: k for k in (FileChannel, SmtpChannel, PushChannel)
}


def parse_channel(value: Any) -> Channel:
    """A channel transport from its settings (a mapping naming its `type`), or as given."""
    if isinstance(value, Channel):
        return value
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in _KINDS:
        raise ValueError(f"unknown channel type {kind!r}; known: {', '.join(_KINDS)}")
    return _KINDS[kind].model_validate(value)


ChannelSetting = Annotated[Channel, BeforeValidator(parse_channel)]
