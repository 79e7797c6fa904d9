"""The marketers' workspace: a server-rendered Starlette app that `cip serve` mounts at `/app`.

Pages: the segments list (size, who entered and left at the last run, the size over data
time, destinations), the segment builder (conditions from the catalog of fields and
events, a live size preview with a sample of members, saving the YAML definition `cip
segments` reads), and a segment's page (its definition, history, members with masked
contacts and scores, a CSV download, "send now" and the delivery log). Templates are
Jinja2 (escaped), the client is htmx served from this app (no CDN).

Security: every page but the login form needs a session (a signed, `HttpOnly`,
`SameSite=Lax` cookie); every POST carries the session's CSRF token (a form field or the
`X-CSRF-Token` header htmx sends) and a same-site Origin; saving, running and sending need
the editor role, re-read from the accounts file on every request. Passwords are checked by
`UserStore` and never logged or echoed.
"""

from __future__ import annotations

import contextlib
import csv
import hmac
import io
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import pandas as pd
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

import warehouse as warehouse_db
from segments.activation import activate
from segments.definition import (
    DefinitionError,
    SegmentDefinition,
    load_definitions,
    parse_definition,
)
from segments.evaluate import refresh_segments
from segments.fields import OPERATORS, event_kinds
from serving.session import safe_next
from serving.workspace.builder import draft, rows_from_form, save_definition, to_yaml
from serving.workspace.config import WorkspaceConfig
from serving.workspace.snapshot import Snapshot, WarehouseBusy
from serving.workspace.users import User, UserStore

__all__ = ["COOKIE", "create_workspace"]

log = logging.getLogger("cip.workspace")

COOKIE = "cip_workspace"
_HERE = Path(__file__).parent
_MEMBERS_SHOWN = 100
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'",
}


class _Refused(Exception):
    """A request that may not go on: `response` says why (a redirect, a 403 page)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def create_workspace(*, config: WorkspaceConfig, secret: SecretStr) -> Starlette:
    """The workspace app; mount it at `/app` (its links are relative to where it is mounted).

    `secret` signs the session cookies (the service passes a key derived from its API key)."""
    templates = Jinja2Templates(directory=_HERE / "templates")
    store = UserStore(path=config.users_file)
    snapshot = Snapshot(warehouse=config.warehouse, as_of=config.segments.as_of)
    folders = list(dict.fromkeys([*config.definition_folders, config.save_folder]))

    def render(
        request: Request, name: str, context: dict[str, Any], *, status: int = 200
    ) -> Response:
        context = {
            "root": request.scope.get("root_path", ""),
            "user": request.state.user if hasattr(request.state, "user") else None,
            "csrf": request.session.get("csrf", ""),
            **context,
        }
        response = templates.TemplateResponse(request, name, context, status_code=status)
        response.headers.update(_HEADERS)
        return response

    loaded: dict[str, Any] = {}

    def definitions() -> tuple[list[SegmentDefinition], str | None]:
        """The saved definitions (or why they cannot be read), re-read when a file changes."""
        files = _definition_files(folders)
        if loaded.get("files") != files:
            try:
                found = load_definitions(folders=[f for f in folders if f.is_dir()]), None
            except DefinitionError as error:
                found = [], str(error)
            loaded.update(files=files, found=found)
        return loaded["found"]

    async def guard(request: Request, *, editor: bool = False) -> User:
        """The signed-in user, or `_Refused`: no session, a bad CSRF token, not an editor."""
        root = request.scope.get("root_path", "")
        user = store.get(request.session.get("user", ""))
        if user is None:
            request.session.pop("user", None)
            target = f"{root}/login?next={request.url.path}"
            if request.headers.get("hx-request"):
                raise _Refused(Response(status_code=401, headers={"HX-Redirect": target}))
            raise _Refused(RedirectResponse(target, status_code=303))
        request.state.user = user
        if request.method == "POST":
            await check_csrf(request)
        if editor and not user.can_edit:
            raise _Refused(
                render(request, "refused.html", {"reason": "Only editors can do this."}, status=403)
            )
        return user

    async def check_csrf(request: Request) -> None:
        expected = request.session.get("csrf", "")
        form = await request.form()
        sent = request.headers.get("x-csrf-token") or str(form.get("csrf", ""))
        origin = request.headers.get("origin")
        same_site = origin is None or origin.partition("://")[2] == request.headers.get("host")
        if not (expected and same_site and hmac.compare_digest(sent.encode(), expected.encode())):
            reason = "This form has expired or did not come from this site: reload and try again."
            raise _Refused(render(request, "refused.html", {"reason": reason}, status=403))

    def handler(
        func: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            request.session.setdefault("csrf", secrets.token_urlsafe(32))
            try:
                return await func(request)
            except _Refused as refused:
                return refused.response
            except WarehouseBusy as busy:
                return render(request, "refused.html", {"reason": str(busy)}, status=503)

        return wrapped

    # -- sign in and out ------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        next_path = safe_next(request.query_params.get("next"), default=f"{root}/segments")
        return render(request, "login.html", {"next": next_path, "error": None})

    async def login(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        await check_csrf(request)
        form = await request.form()
        next_path = safe_next(str(form.get("next", "")), default=f"{root}/segments")
        name = str(form.get("name", ""))
        user = await anyio.to_thread.run_sync(
            lambda: store.authenticate(name=name, password=str(form.get("password", "")))
        )
        if user is None:
            log.info("workspace sign-in refused")  # who and what was typed stay out of logs
            context = {"next": next_path, "error": "Wrong user name or password."}
            return render(request, "login.html", context, status=401)
        request.session.clear()
        request.session.update({"user": user.name, "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(next_path, status_code=303)

    async def logout(request: Request) -> Response:
        await guard(request)
        request.session.clear()
        return RedirectResponse(f"{request.scope.get('root_path', '')}/login", status_code=303)

    # -- pages ------------------------------------------------------------------------

    async def home(request: Request) -> Response:
        await guard(request)
        return RedirectResponse(f"{request.scope.get('root_path', '')}/segments", status_code=303)

    async def segment_list(request: Request) -> Response:
        await guard(request)
        found, problem = definitions()
        history = await anyio.to_thread.run_sync(snapshot.history)
        rows = []
        names = list(dict.fromkeys([*(d.name for d in found), *history["segment"]]))
        described = {d.name: d.description for d in found}
        for name in names:
            runs = history[history["segment"] == name]
            latest = runs.iloc[-1] if len(runs) else None
            rows.append(
                {
                    "name": name,
                    "description": described.get(name, "(no definition any more)"),
                    "size": None if latest is None else int(latest["size"]),
                    "entered": None if latest is None else int(latest["entered"]),
                    "exited": None if latest is None else int(latest["exited"]),
                    "trend": _trend(runs),
                    "destinations": _destinations(config, name),
                }
            )
        as_of = history["as_of"].max() if len(history) else None
        context = {"segments": rows, "problem": problem, "as_of": _when(as_of)}
        return render(request, "segments.html", context)

    async def builder(request: Request) -> Response:
        await guard(request)
        catalog = await anyio.to_thread.run_sync(snapshot.catalog)
        return render(request, "builder.html", _builder_context(catalog, FormData(), blank=2))

    def _builder_context(catalog: Any, form: FormData, *, blank: int = 0) -> dict[str, Any]:
        found, _ = definitions()
        return {
            "form": form,
            "rows": rows_from_form(form, blank=blank) or rows_from_form(form, blank=1),
            "excluded": form.getlist("exclude_segments"),
            "fields": _grouped(catalog.fields),
            "kinds": catalog.fields,
            "operators": OPERATORS,
            "events": sorted(catalog.events) or sorted(event_kinds()),
            "saved": [d.name for d in found],
            "as_of": _when(catalog.as_of),
            "errors": [],
            "yaml": None,
        }

    async def builder_rows(request: Request) -> Response:
        await guard(request)
        form = await request.form()
        catalog = await anyio.to_thread.run_sync(snapshot.catalog)
        blank = 1 if request.query_params.get("add") else 0
        return render(request, "_conditions.html", _builder_context(catalog, form, blank=blank))

    def _draft(form: FormData) -> tuple[dict[str, Any], SegmentDefinition]:
        catalog = snapshot.catalog()
        data = draft(
            form,
            rows=rows_from_form(form),
            excluded=[str(s) for s in form.getlist("exclude_segments")],
            catalog=catalog,
        )
        return data, parse_definition(data)

    async def builder_preview(request: Request) -> Response:
        await guard(request)
        form = await request.form()
        if not str(form.get("name", "")).strip():
            form = FormData([*form.multi_items(), ("name", "draft")])

        def run() -> dict[str, Any]:
            try:
                data, definition = _draft(form)
                saved, _ = definitions()
                preview = snapshot.preview(definition, saved=saved)
            except DefinitionError as error:
                return {"errors": str(error).splitlines(), "preview": None, "yaml": None}
            return {"errors": [], "preview": preview, "yaml": to_yaml(data)}

        return render(request, "_preview.html", await anyio.to_thread.run_sync(run))

    async def builder_save(request: Request) -> Response:
        await guard(request, editor=True)
        form = await request.form()

        def run() -> tuple[Path | None, list[str], dict[str, Any] | None]:
            try:
                data, definition = _draft(form)
                saved, _ = definitions()
                others = [d for d in saved if d.name != definition.name]
                snapshot.preview(definition, saved=others)  # the CLI's checks, all of them
                path = save_definition(
                    data, folder=config.save_folder, replace=form.get("replace") == "on"
                )
                load_definitions(folders=[f for f in folders if f.is_dir()])
            except (DefinitionError, FileExistsError) as error:
                return None, str(error).splitlines(), None
            return path, [], data

        path, errors, data = await anyio.to_thread.run_sync(run)
        if path is None:
            catalog = await anyio.to_thread.run_sync(snapshot.catalog)
            context = _builder_context(catalog, form) | {"errors": errors}
            return render(request, "builder.html", context, status=422)
        log.info("segment %s saved to %s by %s", data["name"], path, request.state.user.name)
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/segments/{data['name']}?saved=1", status_code=303)

    def _known(name: str) -> SegmentDefinition | None:
        found, _ = definitions()
        return next((d for d in found if d.name == name), None)

    async def segment_page(request: Request) -> Response:
        await guard(request)
        name = request.path_params["name"]
        definition = _known(name)
        view = await anyio.to_thread.run_sync(lambda: snapshot.segment(name, shown=_MEMBERS_SHOWN))
        if definition is None and view.history.empty:
            raise HTTPException(404, f"no segment named {name!r}")
        context = {
            "name": name,
            "definition": definition,
            "yaml": definition.path.read_text() if definition and definition.path else None,
            "path": definition.path if definition else None,
            "saved": request.query_params.get("saved") == "1",
            "runs": view.history.iloc[::-1].to_dict("records"),
            "trend": _trend(view.history),
            "size": view.size,
            "people": view.people,
            "entered": {k: _when(v) for k, v in view.entered.items()},
            "shown": len(view.people),
            "destinations": _destinations(config, name),
            "deliveries": view.deliveries,
        }
        return render(request, "segment.html", context)

    async def members_csv(request: Request) -> Response:
        await guard(request)
        name = request.path_params["name"]
        people = await anyio.to_thread.run_sync(snapshot.member_people, name)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["customer_id", "name", "contact", "churn_probability", "predicted_value", "reasons"]
        )
        for p in people:
            writer.writerow(
                [p.customer_id, p.name, p.contact, p.churn_probability, p.predicted_value,
                 "; ".join(p.reasons)]
            )  # fmt: skip
        headers = {**_HEADERS, "Content-Disposition": f'attachment; filename="{name}.csv"'}
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    async def run_segments(request: Request) -> Response:
        user = await guard(request, editor=True)
        form = await request.form()

        def run() -> str | None:
            found, problem = definitions()
            if problem:
                return problem
            try:
                with warehouse_db.connect(config.warehouse, wait_seconds=10) as con:
                    refresh_segments(con, definitions=found, as_of=config.segments.as_of)
            except (DefinitionError, LookupError) as error:
                return str(error)
            return None

        problem = await anyio.to_thread.run_sync(run)
        if problem:
            return render(request, "refused.html", {"reason": problem}, status=422)
        log.info("segments refreshed from the workspace by %s", user.name)
        root = request.scope.get("root_path", "")
        back = str(form.get("back", ""))
        return RedirectResponse(safe_next(back, default=f"{root}/segments"), status_code=303)

    async def send_now(request: Request) -> Response:
        user = await guard(request, editor=True)
        name = request.path_params["name"]
        if _known(name) is None:
            raise HTTPException(404, f"no segment named {name!r}")
        destinations = [
            d for d in config.segments.destinations if d.segments is None or name in d.segments
        ]

        def run() -> None:
            with warehouse_db.connect(config.warehouse, wait_seconds=10) as con:
                activate(
                    con, destinations=destinations, exports=config.exports,
                    retry=config.segments.retry, phone_region=config.phone_region,
                    segments=[name],
                )  # fmt: skip

        await anyio.to_thread.run_sync(run)
        log.info("segment %s sent from the workspace by %s", name, user.name)
        root = request.scope.get("root_path", "")
        return RedirectResponse(f"{root}/segments/{name}#deliveries", status_code=303)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        return render(request, "refused.html", {"reason": exc.detail}, status=exc.status_code)

    routes = [
        Route("/", handler(home)),
        Route("/login", handler(login_form), methods=["GET"]),
        Route("/login", handler(login), methods=["POST"]),
        Route("/logout", handler(logout), methods=["POST"]),
        Route("/segments", handler(segment_list)),
        Route("/segments/run", handler(run_segments), methods=["POST"]),
        Route("/segments/{name}", handler(segment_page)),
        Route("/segments/{name}/members.csv", handler(members_csv)),
        Route("/segments/{name}/send", handler(send_now), methods=["POST"]),
        Route("/builder", handler(builder)),
        Route("/builder/rows", handler(builder_rows), methods=["POST"]),
        Route("/builder/preview", handler(builder_preview), methods=["POST"]),
        Route("/builder/save", handler(builder_save), methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret.get_secret_value(),
            session_cookie=COOKIE,
            max_age=int(config.session_hours * 3600),
            same_site="lax",
        )
    ]
    return Starlette(
        routes=routes, middleware=middleware, exception_handlers={HTTPException: not_found}
    )


def _definition_files(folders: list[Path]) -> tuple[tuple[object, ...], ...]:
    """Every definition file with its inode, size and modification time."""
    files = []
    for folder in folders:
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            with contextlib.suppress(FileNotFoundError):
                stat = path.stat()
                files.append((str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(files)


def _destinations(config: WorkspaceConfig, segment: str) -> list[str]:
    return [
        f"{d.name} ({d.type})"
        for d in config.segments.destinations
        if d.segments is None or segment in d.segments
    ]


def _trend(runs: pd.DataFrame, *, width: int = 160, height: int = 36) -> dict[str, Any]:
    """A sparkline of size over data time (`as_of`; the last run of each data time)."""
    if runs.empty:
        return {"points": "", "dots": [], "label": "not evaluated yet"}
    by_time = runs.sort_values("evaluated_at").drop_duplicates("as_of", keep="last")
    by_time = by_time.sort_values("as_of")
    times = pd.to_datetime(by_time["as_of"]).astype("int64").to_numpy(dtype=float)
    sizes = by_time["size"].to_numpy(dtype=float)
    span_t = (times.max() - times.min()) or 1.0
    span_s = (sizes.max() - sizes.min()) or 1.0
    xs = 4 + (times - times.min()) / span_t * (width - 8) if len(times) > 1 else [width / 2]
    ys = height - 4 - (sizes - sizes.min()) / span_s * (height - 8)
    if sizes.max() == sizes.min():
        ys = [height / 2] * len(sizes)
    dots = [
        {"x": round(float(x), 1), "y": round(float(y), 1), "title": f"{_when(t)}: {int(s):,}"}
        for x, y, t, s in zip(xs, ys, by_time["as_of"], sizes, strict=True)
    ]
    first, last = _when(by_time["as_of"].iloc[0]), _when(by_time["as_of"].iloc[-1])
    label = f"{len(dots)} data time{'s' if len(dots) > 1 else ''}: {first} to {last}"
    return {
        "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "dots": dots,
        "label": label if len(dots) > 1 else f"one data time: {first}",
        "width": width,
        "height": height,
    }


def _grouped(fields: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, kind in sorted(fields.items()):
        groups.setdefault(name.split(".", 1)[0], []).append((name, kind))
    return groups


def _when(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return "-"
    stamp = pd.Timestamp(value) if not isinstance(value, datetime) else value
    return f"{stamp:%Y-%m-%d %H:%M}"
