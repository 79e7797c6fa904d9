"""Browser sessions for the marketers' pages: a login form that takes the API key.

A browser cannot send a bearer header, so `GET /report` and the files under `/exports/`
also accept a session cookie. `GET /login` shows a form asking for the API key; a right key
gets a signed token in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` over HTTPS) that
expires after `serving.session_hours`, and a redirect back to the page asked for. The token
is `<expiry>.<HMAC-SHA256 of the expiry>`, keyed by a key derived from the API key: nothing
is stored on the server, every worker can check it, and changing the API key ends every
session. The cookie opens pages only (GET), never the JSON APIs, so a cross-site request
cannot use it. Small and replaceable: user accounts can take the form's place later.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import time
from urllib.parse import parse_qs, quote

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = ["COOKIE", "LOGIN_PATH", "LOGOUT_PATH", "Sessions", "login_redirect", "safe_next"]

COOKIE = "cip_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
_MAX_FORM_BYTES = 4096

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: customer intelligence platform</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; }}
input {{ width: 100%; padding: .5rem; margin: .5rem 0 1rem; box-sizing: border-box; }}
button {{ padding: .5rem 1.5rem; }} .error {{ color: #b00020; }}
</style></head>
<body>
<h1>Sign in</h1>
<p>Enter the platform's API key to open the report.</p>
{error}
<form method="post" action="{action}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button>
</form>
</body></html>
"""


def safe_next(target: str | None, *, default: str = "/report") -> str:
    """A local path to go back to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    return target


class Sessions:
    """Issues and checks session tokens, and serves the login form."""

    def __init__(self, *, key: SecretStr, hours: float) -> None:
        secret = key.get_secret_value().encode()
        self._signing = hmac.new(secret, b"cip session v1", hashlib.sha256).digest()
        self._expected = secret
        self.seconds = int(hours * 3600)

    def issue(self, *, now: float | None = None) -> str:
        expiry = int((now if now is not None else time.time()) + self.seconds)
        return f"{expiry}.{self._sign(expiry)}"

    def valid(self, token: str | None, *, now: float | None = None) -> bool:
        """Whether `token` is one we issued and it has not expired."""
        if not token:
            return False
        expiry, _, signature = token.partition(".")
        if not expiry.isdigit() or not hmac.compare_digest(signature, self._sign(int(expiry))):
            return False
        return int(expiry) > (now if now is not None else time.time())

    def routes(self) -> list[Route]:
        return [
            Route(LOGIN_PATH, self._form, methods=["GET"]),
            Route(LOGIN_PATH, self._login, methods=["POST"]),
            Route(LOGOUT_PATH, self._logout, methods=["POST"]),
        ]

    def _sign(self, expiry: int) -> str:
        return hmac.new(self._signing, str(expiry).encode(), hashlib.sha256).hexdigest()

    async def _form(self, request: Request) -> Response:
        return _page(next_path=safe_next(request.query_params.get("next")))

    async def _login(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin.partition("://")[2] != request.headers.get("host"):
            return _page(
                next_path="/report", error="Sign in from this site's own form.", status=403
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _MAX_FORM_BYTES:
                return _page(next_path="/report", error="The form was too large.", status=413)
        form = parse_qs(body.decode("utf-8", errors="replace"))
        key = (form.get("key") or [""])[0].encode()
        next_path = safe_next((form.get("next") or [None])[0])
        if not hmac.compare_digest(key, self._expected):
            return _page(next_path=next_path, error="That is not the API key.", status=401)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE,
            self.issue(),
            max_age=self.seconds,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    async def _logout(self, _: Request) -> Response:
        response = RedirectResponse(LOGIN_PATH, status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response


def login_redirect(path: str) -> RedirectResponse:
    """Where a browser without a session goes: the form, then back to `path`."""
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(path, safe='/')}", status_code=303)


def _page(*, next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    content = _PAGE.format(
        action=LOGIN_PATH,
        next=html.escape(next_path, quote=True),
        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(content, status_code=status, headers=headers)
