"""Privacy requests over HTTP: `POST /privacy/forget` and `GET /privacy/export`.

The erasure and the access export are the pipelines' flows; the service is handed them
as a `PrivacyDesk` by the top layer (`pipelines.api`), since serving never imports
pipelines. Both routes need the API key like every other; bad input is a 400 naming what
is wrong (values are never echoed back), an erasure that could not finish a 503 saying it
is pending and will be completed by the next request.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

import anyio.to_thread
from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse

__all__ = ["ForgetRequest", "PersonRef", "PrivacyDesk", "add_privacy_routes"]

KINDS = ("email", "phone", "user_id", "customer_id")


class PrivacyDesk(Protocol):
    """What the service calls for privacy requests: (kind, value) pairs in, a JSON-ready
    answer out. `forget` answers `status` `done` or `pending` (with `error`); both raise
    ValueError on an identifier that cannot be one."""

    def forget(self, identifiers: list[tuple[str, str]]) -> dict[str, Any]: ...

    def export(self, identifiers: list[tuple[str, str]]) -> dict[str, Any]: ...


class PersonRef(BaseModel):
    """A person named by one or more identifiers."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str | None = Field(None, description="An e-mail address.")
    phone: str | None = Field(None, description="A phone number, any format.")
    user_id: str | None = Field(None, description="A site or app account id.")
    customer_id: str | None = Field(None, description="The platform's customer id.")

    @model_validator(mode="after")
    def _named(self) -> PersonRef:
        if not self.pairs():
            raise ValueError("name the person by email, phone, user_id or customer_id")
        return self

    def pairs(self) -> list[tuple[str, str]]:
        return [(k, v) for k in KINDS if (v := getattr(self, k))]


class Named(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(pattern="^(email|phone|user_id|customer_id)$")
    value: str = Field(min_length=1)


class ForgetRequest(PersonRef):
    """People to forget: one by the fields, or many as `identifiers` (up to 2,000, which
    fit in the request size limit; `cip privacy forget --file` takes any number)."""

    identifiers: list[Named] = Field(default_factory=list, max_length=2_000)

    @model_validator(mode="after")
    def _named(self) -> ForgetRequest:
        if not self.pairs():
            raise ValueError("name someone: email, phone, user_id, customer_id or identifiers")
        return self

    def pairs(self) -> list[tuple[str, str]]:
        return super().pairs() + [(i.kind, i.value) for i in self.identifiers]


def add_privacy_routes(routes: FastAPI, *, desk: PrivacyDesk, after_forget: Any) -> None:
    """Add the two routes to `routes`; `after_forget()` runs after an erasure (reload what
    the service keeps in memory)."""

    @routes.post("/privacy/forget", tags=["Privacy"])
    async def forget(request: ForgetRequest) -> JSONResponse:
        """Erase everyone named from every store and suppress their identifiers; an
        identifier that matches no one is suppressed all the same (`unmatched`)."""
        try:
            answer = await anyio.to_thread.run_sync(desk.forget, request.pairs())
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 400)
        await anyio.to_thread.run_sync(after_forget)
        return JSONResponse(answer, 200 if answer["status"] == "done" else 503)

    @routes.get("/privacy/export", tags=["Privacy"])
    async def export(ref: Annotated[PersonRef, Query()]) -> JSONResponse:
        """Everything held about the person, as one JSON document (an access request);
        `matched` is false, and `customers` empty, when nothing is held."""
        try:
            document = await anyio.to_thread.run_sync(desk.export, ref.pairs())
        except ValueError as error:
            return JSONResponse({"error": str(error)}, 400)
        return JSONResponse(document)
