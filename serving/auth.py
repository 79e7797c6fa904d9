"""Who may call what: the bearer API key, and a login session for the report pages.

The key is a secret: the top layer passes it in (configured, or generated once into a key
file inside the data folder with owner-only permissions, `api_key`). It is compared in
constant time and never written to a log or a response. Health probes, metrics, the API
documentation, the login form and the event collector (which has its own write keys) are
public. The report and the files beside it (`GET /report`, `GET /exports/...`) take the key
or a session cookie from the login form (`serving.session`); a browser without either is
sent to the form. Everything else needs `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie
from pathlib import Path

import orjson
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.session import COOKIE, LOGIN_PATH, LOGOUT_PATH, Sessions, login_redirect

__all__ = ["PUBLIC_PATHS", "ApiKeyAuth", "api_key"]

PUBLIC_PATHS = frozenset(
    {"/", "/docs.json", "/schema.json", "/livez", "/healthz", "/readyz", "/metrics"}
    | {LOGIN_PATH, LOGOUT_PATH, "/app"}
)
PUBLIC_PREFIXES = ("/static_content/", "/assets/", "/v1/", "/app/", "/unsubscribe/")
"""/app signs in on its own; an unsubscribe link carries its own signed token."""
PAGE_PATHS = frozenset({"/report"})
PAGE_PREFIXES = ("/exports/",)


def api_key(*, configured: SecretStr | None, key_file: Path) -> SecretStr:
    """The configured key, or the one in `key_file` (generated on first use, owner-only)."""
    if configured is not None:
        return configured
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(32) + "\n")
    return SecretStr(key_file.read_text().strip())


class ApiKeyAuth:
    """ASGI middleware: 401 with a reason unless the request may pass (see the module)."""

    def __init__(self, app: ASGIApp, *, key: SecretStr, sessions: Sessions) -> None:
        self.app = app
        self._expected = key.get_secret_value().encode()
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        problem = self._check(headers.get(b"authorization"))
        if problem is not None and _is_page(scope):
            if self.sessions.valid(_cookie(headers.get(b"cookie"))):
                problem = None
            elif b"text/html" in headers.get(b"accept", b""):
                await login_redirect(scope["path"])(scope, receive, send)
                return
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


def _is_page(scope: Scope) -> bool:
    path = scope["path"]
    return scope["method"] in ("GET", "HEAD") and (
        path in PAGE_PATHS or path.startswith(PAGE_PREFIXES)
    )


def _cookie(header: bytes | None) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header.decode("latin-1"))
    except Exception:  # a malformed Cookie header is simply no session
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None
