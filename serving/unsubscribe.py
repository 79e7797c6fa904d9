"""The unsubscribe link of every journey email, answered by the service.

`GET /unsubscribe/<token>` shows a page with one button; pressing it (`POST` to the same
address), or a mail client's one-click unsubscribe (RFC 8058: the `List-Unsubscribe-Post`
header the email carries), withdraws the consent of the email's channel for its customer
in the warehouse (`segments.journeys.unsubscribe.withdraw`): the next message on that
channel is suppressed at send time, and the journeys that have no other channel left end
(`consent_withdrawn`). A GET changes nothing, since mail scanners follow links. The token
is signed (it names no email address); an altered one gets a 400 page. No API key is
needed: the link is the proof. While another process holds the warehouse longer than
`wait_seconds`, the answer is a 503 page asking to try again (nothing is recorded).
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import anyio.to_thread
import duckdb
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

import warehouse
from segments.journeys.unsubscribe import (
    Unsubscribe,
    read_token,
    unsubscribe_secret,
    withdraw,
)
from segments.membership import utc_now

__all__ = ["PATH", "UnsubscribeLinks"]

log = logging.getLogger("cip.serving")

PATH = "/unsubscribe/{token}"
_ROUTE = "/unsubscribe/{token:path}"
_NAMES = {"email": "emails", "push": "push notifications"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 30rem; margin: 4rem auto; }}
button {{ padding: .5rem 1.5rem; }}</style></head>
<body><h1>{title}</h1><p>{text}</p>{form}</body></html>
"""


class UnsubscribeLinks:
    """The two routes of the unsubscribe link, for the warehouse at `warehouse_path`."""

    def __init__(self, *, key: SecretStr, warehouse_path: Path, wait_seconds: float = 20.0) -> None:
        self._secret = unsubscribe_secret(key.get_secret_value())
        self._warehouse = warehouse_path
        self._wait = wait_seconds

    def routes(self) -> list[Route]:
        """One route for both methods (so a 405 names both); any token text reaches it."""
        return [Route(_ROUTE, self._answer, methods=["GET", "POST"])]

    async def _answer(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._unsubscribe(request)
        return await self._confirm(request)

    def _link(self, request: Request) -> Unsubscribe | HTMLResponse:
        try:
            return read_token(request.path_params["token"], secret=self._secret)
        except ValueError as error:
            return _page("This link does not work", str(error).capitalize() + ".", status=400)

    async def _confirm(self, request: Request) -> Response:
        link = self._link(request)
        if isinstance(link, Response):
            return link
        what = _NAMES[link.channel]
        form = '<form method="post"><button type="submit">Unsubscribe</button></form>'
        return _page("Unsubscribe", f"Stop receiving {what} from us?", form=form)

    async def _unsubscribe(self, request: Request) -> Response:
        link = self._link(request)
        if isinstance(link, Response):
            return link
        try:
            customer = await anyio.to_thread.run_sync(self._withdraw, link)
        except duckdb.Error as error:
            log.warning("unsubscribe: the warehouse is busy (%s)", type(error).__name__)
            page = _page(
                "Please try again",
                "We could not record your request just now. Please try again in a minute.",
                status=503,
            )
            page.headers["Retry-After"] = "60"
            return page
        if customer is None:
            return _page(
                "Already gone",
                "We hold no record of you any more, so we send you nothing.",
            )
        return _page("You are unsubscribed", f"We will send you no more {_NAMES[link.channel]}.")

    def _withdraw(self, link: Unsubscribe) -> str | None:
        with warehouse.connect(self._warehouse, wait_seconds=self._wait) as con:
            return withdraw(con, link=link, at=utc_now())


def _page(title: str, text: str, *, form: str = "", status: int = 200) -> HTMLResponse:
    content = _PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}
    return HTMLResponse(content, status_code=status, headers=headers)
