"""Bearer API-key authentication for the scoring and profile API.

The key is a secret: it comes from the settings (CIP_SERVING__API_KEY) or, when none is
configured, from a key file the service generates once inside the data folder (owner-only
permissions). It is compared in constant time and never written to a log or a response.
Health probes, the API documentation and the event collector (which has its own write
keys) are public; everything else needs the key.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from pipelines.config import Settings

__all__ = ["ApiKeyAuth", "api_key", "key_file"]

PUBLIC_PATHS = {"/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics"}
PUBLIC_PREFIXES = ("/static_content/", "/assets/", "/v1/")


def key_file(settings: Settings) -> Path:
    """Where the generated key lives when none is configured."""
    return settings.paths.bentoml / "api_key"


def api_key(settings: Settings) -> SecretStr:
    """The configured key, or the generated one (created on first use)."""
    if settings.serving.api_key is not None:
        return settings.serving.api_key
    path = key_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return SecretStr(path.read_text().strip())


class ApiKeyAuth:
    """ASGI middleware: 401 with a reason unless `Authorization: Bearer <key>` is right."""

    def __init__(self, app: ASGIApp, *, key: SecretStr) -> None:
        self.app = app
        self._expected = key.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        problem = self._check(dict(scope["headers"]).get(b"authorization"))
        if problem is None:
            await self.app(scope, receive, send)
            return
        body = orjson.dumps({"error": problem})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="cip"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _check(self, header: bytes | None) -> str | None:
        if not header:
            return "missing API key: send the header `Authorization: Bearer <key>`"
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "malformed Authorization header: expected `Bearer <key>`"
        if not hmac.compare_digest(token.strip(), self._expected):
            return "wrong API key"
        return None


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
