"""The service's OpenAPI document (`/docs.json`), complete and true to what it answers.

BentoML writes the document from the APIs and the mounted FastAPI routes, but names the
service `cip` at version `None`, lists errors it does not send (and not those it does),
has no security scheme and leaves out the collector. `complete_spec` fixes that: the
project's title and version, the bearer key, the report's session cookie and the
collector's write key as security schemes, every status each route answers with the error
bodies the service really sends, and the collector's Segment routes.
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

from serving.collector.spec import MESSAGE_TYPES, message_schemas

__all__ = ["TITLE", "complete_spec", "project_version"]

TITLE = "Customer intelligence platform"
DESCRIPTION = (
    "Live churn and LTV scores, golden-record profiles and segments of a customer named by "
    "any identifier, the marketers' report, and a Segment-compatible event collector under "
    "`/v1`. Send the API key as `Authorization: Bearer <key>`; a browser opens the report "
    'after signing in at `/login`. Errors are JSON `{"error": "..."}` (the collector\'s '
    'are Segment\'s `{"success": false, "code": ..., "message": ...}`).'
)
SHORT_PATHS = {
    "track": "t",
    "identify": "i",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}

_ERRORS = {
    400: "The request is malformed: bad JSON, a missing or invalid field (named, never echoed).",
    401: "No API key, a malformed Authorization header or a wrong key.",
    403: "The form was posted from another site.",
    404: "No customer with this identifier (or no report yet).",
    413: "The body is over the size limit, or the batch over the batch limit.",
    415: "A form or multipart body where JSON is expected.",
    503: (
        "Models, features or the customer directory are not loaded, or an erasure is still "
        "pending (the reason is given)."
    ),
}
# Statuses each operation answers besides its success, by (method, path).
_ANSWERS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/score"): (400, 401, 404, 413, 415, 503),
    ("post", "/score_batch"): (400, 401, 413, 415, 503),
    ("post", "/reload"): (400, 401, 413, 415),
    ("get", "/profile"): (400, 401, 404, 503),
    ("post", "/profile"): (400, 401, 404, 413, 415, 503),
    ("get", "/status"): (401,),
    ("get", "/report"): (401, 404),
    ("get", "/readyz"): (503,),
    ("post", "/privacy/forget"): (400, 401, 413, 415, 503),
    ("get", "/privacy/export"): (400, 401),
}
_PUBLIC = {"/livez", "/healthz", "/readyz", "/metrics", "/login", "/logout"}


def project_version() -> str:
    """The installed package's version (`pyproject.toml`)."""
    try:
        return metadata.version("customer-intelligence-platform")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def complete_spec(spec: dict[str, Any], *, session_cookie: str) -> dict[str, Any]:
    """BentoML's document (`Service.openapi_spec.asdict()`) made complete and true."""
    spec = copy.deepcopy(spec)
    spec["info"] = {"title": TITLE, "version": project_version(), "description": DESCRIPTION}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError", "HTTPValidationError"):
        schemas.pop(name, None)
    schemas.pop("ValidationError", None)
    schemas.update(_SCHEMAS)
    schemas.update(message_schemas())
    spec["components"]["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "The API key."},
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": session_cookie,
            "description": "Set by signing in at `/login` (the report pages only).",
        },
        "writeKey": {
            "type": "http",
            "scheme": "basic",
            "description": "A source's write key as the user name, empty password "
            "(or `writeKey` in the body), as Segment's libraries send it.",
        },
    }
    spec["security"] = [{"apiKey": []}]
    paths = spec["paths"]
    for path, item in paths.items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _complete(operation, method=method, path=path)
    paths["/metrics"]["get"]["responses"] = {
        "200": {"description": "Prometheus metrics", "content": {"text/plain": {"schema": {}}}}
    }
    paths.update(_session_paths())
    paths.update(_unsubscribe_paths())
    paths.update(_collector_paths())
    return spec


def _complete(operation: dict[str, Any], *, method: str, path: str) -> None:
    success = {k: v for k, v in operation["responses"].items() if str(k).startswith("2")}
    if path == "/report":
        success = {
            "307": {"description": "The latest report, under `/exports/`."},
            "303": {"description": "A browser without a session: the login form."},
        }
    if path in ("/livez", "/healthz", "/readyz"):
        success = {"200": {"description": "Alive (or ready)."}}
    operation["responses"] = {**success, **_error_responses(_ANSWERS.get((method, path), ()))}
    if path in _PUBLIC:
        operation["security"] = []
    elif path == "/report":
        operation["security"] = [{"apiKey": []}, {"session": []}]
    else:
        operation["security"] = [{"apiKey": []}]
    if "requestBody" in operation and 413 not in _ANSWERS.get((method, path), ()):
        operation["responses"].update(_error_responses((413,)))


def _error_responses(statuses: tuple[int, ...], schema: str = "Error") -> dict[str, Any]:
    body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {str(s): {"description": _ERRORS[s], "content": body} for s in statuses}


def _session_paths() -> dict[str, Any]:
    page = {"text/html": {"schema": {"type": "string"}}}
    form = {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "next": {"type": "string"}},
                "required": ["key"],
            }
        }
    }
    return {
        "/login": {
            "get": {
                "tags": ["Report"],
                "summary": "The login form of the report (asks for the API key)",
                "security": [],
                "parameters": [
                    {"name": "next", "in": "query", "required": False, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "The form.", "content": page}},
            },
            "post": {
                "tags": ["Report"],
                "summary": "Sign in with the API key: sets the session cookie",
                "security": [],
                "requestBody": {"required": True, "content": form},
                "responses": {
                    "303": {"description": "Signed in: back to the page asked for."},
                    "401": {"description": _ERRORS[401], "content": page},
                    "403": {"description": _ERRORS[403], "content": page},
                    "413": {"description": _ERRORS[413], "content": page},
                },
            },
        },
        "/logout": {
            "post": {
                "tags": ["Report"],
                "summary": "Sign out: clears the session cookie",
                "security": [],
                "responses": {"303": {"description": "Signed out: to the login form."}},
            }
        },
    }


def _unsubscribe_paths() -> dict[str, Any]:
    page = {"text/html": {"schema": {"type": "string"}}}
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    answers = {
        "400": {"description": "The token is not one the platform signed.", "content": page},
        "404": {"description": "A path no token can be (a line break in it).",
                "content": {"text/plain": {"schema": {"type": "string"}}}},
        "503": {"description": "The warehouse is busy: nothing was recorded, try again "
                "(`Retry-After`).", "content": page},
    }  # fmt: skip
    return {
        "/unsubscribe/{token}": {
            "get": {
                "tags": ["Journeys"],
                "summary": "The unsubscribe link of a journey email: a page with one button",
                "security": [],
                "parameters": [token],
                "responses": {
                    "200": {"description": "The page.", "content": page},
                    "400": answers["400"],
                    "404": answers["404"],
                },
            },
            "post": {
                "tags": ["Journeys"],
                "summary": "Withdraw the consent of the message's channel (the button, or a "
                "mail client's one-click unsubscribe, RFC 8058)",
                "security": [],
                "parameters": [token],
                "responses": {"200": {"description": "Unsubscribed.", "content": page}, **answers},
            },
        }
    }


def _collector_paths() -> dict[str, Any]:
    errors = {
        "400": "The message (or every message of the batch) breaks the tracking spec; "
        "`rejected` lists a batch's bad messages.",
        "401": "No write key, or an unknown one.",
        "503": "The collector cannot write its log: nothing was accepted, retry later.",
    }
    failure = {
        code: {
            "description": text,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CollectorError"}}
            },
        }
        for code, text in errors.items()
    }

    def operation(summary: str, request: str, answer: str) -> dict[str, Any]:
        return {
            "post": {
                "tags": ["Collector"],
                "summary": summary,
                "security": [{"writeKey": []}, {}],
                "requestBody": {
                    "required": True,
                    "content": {
                        media: {"schema": {"$ref": f"#/components/schemas/{request}"}}
                        for media in ("application/json", "text/plain")
                    },
                },
                "responses": {
                    "200": {
                        "description": "Accepted: on disk before this answer.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{answer}"}
                            }
                        },
                    },
                    **failure,
                },
            }
        }

    paths = {}
    for kind in MESSAGE_TYPES:
        request = f"{kind.capitalize()}Message"
        for path in (kind, SHORT_PATHS[kind]):
            summary = f"One `{kind}` call (Segment tracking API)"
            paths[f"/v1/{path}"] = operation(summary, request, "CollectorAccepted")
    for path in ("batch", "import", "b"):
        paths[f"/v1/{path}"] = operation("Many calls in one request", "Batch", "BatchAccepted")
    return paths


_REJECTED = {
    "type": "object",
    "properties": {
        "index": {"type": "integer"},
        "messageId": {"type": "string", "nullable": True},
        "reason": {"type": "string"},
    },
    "required": ["index", "messageId", "reason"],
}
_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "What is wrong, naming the field but never echoing the value sent.",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "CollectorError": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "rejected": {"type": "array", "items": _REJECTED},
        },
        "required": ["success", "code", "message"],
    },
    "CollectorAccepted": {
        "type": "object",
        "properties": {"success": {"type": "boolean", "enum": [True]}},
        "required": ["success"],
    },
    "BatchAccepted": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "accepted": {"type": "integer", "minimum": 1},
            "rejected": {"type": "array", "items": _REJECTED},
        },
        "required": ["success", "accepted", "rejected"],
    },
}
