"""The NCLUE dialect's HTTP conventions: NCP signatures, the error envelope, timestamps.

* Authentication is the NCP API Gateway's: ``X-NCP-APIGW-TIMESTAMP``,
  ``X-NCP-IAM-ACCESS-KEY`` and ``X-NCP-APIGW-SIGNATURE-V2`` (see ``taskloom.ncp_signature``),
  checked against the access key / secret pairs bound to taskloom API keys. The signed URI is the
  raw path as sent (``/nclue`` prefix included) plus its query string. The app a request acts
  in: the key's own app, else ``X-Taskloom-App``, else the user's first app; an app the key
  may not reach answers 403.
* Errors are NCP's ``{"error": {"errorCode", "message", "details"}}``: ``message`` is the
  gateway's title for the code, ``details`` taskloom's sentence; ``code`` (taskloom's
  machine-readable code), ``field`` and ``errors`` (every validation problem) are added.
  :func:`nclue_error` is the one place that maps taskloom's errors to these.
* Timestamps are ISO 8601 with an offset, to the second (``2024-11-03T07:20:52+00:00``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool

from taskloom import ncp_signature as nclue_auth
from taskloom import wire
from taskloom.api.errors import too_deep_error
from taskloom.api.responses import FastJSONResponse
from taskloom.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TaskloomError,
    Unauthorized,
    Unavailable,
)
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.store import ncp_replays
from taskloom.store.paging import check_limit
from taskloom.validation import invalid_from

log = logging.getLogger("taskloom.api.nclue")

APP_HEADER = "x-taskloom-app"

# -- errors in NCP's envelope ------------------------------------------------------------------

# (HTTP status, NCP error code, NCP title) per kind of taskloom error; NCP's gateway codes
# where it has one (100, 200, 230, 300, 420, 430, 500, 900), "409" for a state conflict.
_BAD_REQUEST = (400, "100", "Bad Request Exception")
_TABLE: tuple[tuple[type[TaskloomError], tuple[int, str, str]], ...] = (
    (PayloadTooLarge, (413, "430", "Request Entity Too Large")),
    (Invalid, _BAD_REQUEST),
    (Unauthorized, (401, "200", "Authentication Failed")),
    (Forbidden, (403, "230", "Forbidden")),
    (NotFound, (404, "300", "Not Found Exception")),
    (Conflict, (409, "409", "Conflict")),
    (RateLimited, (429, "420", "Rate Limited")),
    (Unavailable, (503, "500", "Endpoint Error")),
)
_UNEXPECTED = (500, "900", "Unexpected Error")


def error_response(
    status: int, error_code: str, title: str, details: str, **extra: Any
) -> FastJSONResponse:
    body = {"errorCode": error_code, "message": title, "details": details}
    body.update({k: v for k, v in extra.items() if v is not None})
    return FastJSONResponse({"error": body}, status_code=status)


def nclue_error(exc: TaskloomError) -> FastJSONResponse:
    """The one mapping from taskloom's errors to NCP's statuses and error codes."""
    status, error_code, title = next(
        (entry for cls, entry in _TABLE if isinstance(exc, cls)), _UNEXPECTED
    )
    if status == 500:
        log.error("server error in the NCLUE dialect: %s", exc.message)
    listed = exc.details.get("errors")
    return error_response(
        status,
        error_code,
        title,
        exc.message,
        code=exc.code,
        field=exc.field or exc.details.get("field"),
        errors=listed if isinstance(listed, list) else None,
    )


class NclueRoute(APIRoute):
    """Renders errors of this router's endpoints (and their dependencies) in NCP's envelope."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except TaskloomError as exc:
                return nclue_error(exc)
            except RequestValidationError as exc:
                inv = invalid_from(exc, request=True)
                return error_response(*_BAD_REQUEST, inv.message, code=inv.code, field=inv.field)
            except DataError as exc:
                reason = (str(exc.orig).strip().splitlines() or ["invalid value"])[0]
                return error_response(
                    *_BAD_REQUEST,
                    f"a value in this request cannot be stored: {reason}",
                    code="invalid_value",
                )
            except RecursionError:
                code, message, details = too_deep_error()
                return error_response(*_BAD_REQUEST, message, code=code, field=details["field"])

        return route


# -- authentication ----------------------------------------------------------------------------


def signed_uri(request: Request) -> str:
    """The URI the client signed: the raw path as sent plus ``?query``."""
    raw = request.scope.get("raw_path") or request.url.path.encode("utf-8")
    path = raw.split(b"?", 1)[0]  # some servers pass the query in raw_path too
    return nclue_auth.request_uri(path, request.scope.get("query_string", b""))


async def nclue_scope(request: Request) -> Scope:
    services: Services = request.app.state.platform.services
    uri = signed_uri(request)
    app_id = request.headers.get(APP_HEADER) or None

    def resolve() -> Scope:
        access_key = nclue_auth.verify_headers(
            request.headers,
            request.method,
            uri,
            services.auth.ncp_secret_for,
            first_use=partial(ncp_replays.first_use, services.auth.store),
        )
        principal = services.auth.authenticate_ncp(access_key)
        try:
            return services.auth.scope(principal, app_id)
        except NotFound as exc:
            if app_id is None:
                raise
            raise Forbidden(
                "this access key may not act in that app", code="app_forbidden", field="app_id"
            ) from exc

    return await run_in_threadpool(resolve)


NclueScope = Annotated[Scope, Depends(nclue_scope)]


# -- bodies and shapes -------------------------------------------------------------------------


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise Invalid("a JSON body is required", code="required", field="body")
    body = wire.loads(raw)
    if not isinstance(body, dict):
        raise Invalid("the body is a JSON object", code="invalid_body", field="body")
    return body


def iso(value: Any) -> str | None:
    """ISO 8601 with an offset, to the second; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.isoformat(timespec="seconds"))


def query_limit(request: Request, default: int, most: int) -> int:
    """The ``limit`` query parameter (``default`` without one), bounded by the store's paging."""
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return default
    try:
        value: Any = int(raw)
    except ValueError:
        value = None  # not a whole number: refused as one out of bounds
    return check_limit(value, most=most)
