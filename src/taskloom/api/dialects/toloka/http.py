"""The Toloka dialect's HTTP conventions: credentials, the error envelope, timestamps, search.

* ``Authorization: OAuth <token>`` or ``ApiKey <token>`` (``Bearer`` works too), where the
  token is a taskloom API key. The app a request acts in: the key's own app, else the one
  named by ``X-Act-Under-Account-ID`` (toloka-kit's ``act_under_account_id``) or
  ``X-Taskloom-App``, else the user's first app.
* Errors are Toloka's ``{request_id, code, message, payload}``. :func:`toloka_error` is the
  one place that maps taskloom's errors to Toloka's codes and statuses.
* Timestamps are ISO 8601 in UTC without a zone (``2024-05-01T12:30:00.123``), as Toloka
  sends them; toloka-kit reads a zoneless time as UTC.
* Searches take Toloka's query: equality filters, ``<field>_lt|lte|gt|gte`` ranges,
  ``sort=id,-created`` and ``limit``; answers are ``{items, has_more}``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool

from taskloom.api.responses import FastJSONResponse
from taskloom.errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TaskloomError,
    Unauthorized,
    Unavailable,
)
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.validation import invalid_from
from taskloom.wire import loads as read_json

log = logging.getLogger("taskloom.api.toloka")

MAX_LIMIT = 100_000
DEFAULT_LIMIT = 50

# -- errors in Toloka's envelope ---------------------------------------------------------------


def error_response(
    status: int,
    code: str,
    message: str,
    payload: Any = None,
    headers: dict[str, str] | None = None,
) -> FastJSONResponse:
    body = {"request_id": uuid.uuid4().hex, "code": code, "message": message, "payload": payload}
    return FastJSONResponse(body, status_code=status, headers=headers)


def _field_code(exc: TaskloomError) -> str:
    # taskloom's own codes are snake_case; the spec validator already speaks Toloka's words
    return exc.code if exc.code.isupper() else exc.code.upper()


# pydantic's error types (``details.errors[].type``, see taskloom.validation) in Toloka's words
_PYDANTIC_CODES = {
    "missing": "VALUE_REQUIRED",
    "int_type": "INTEGER_EXPECTED",
    "int_parsing": "INTEGER_EXPECTED",
    "float_type": "FLOAT_EXPECTED",
    "float_parsing": "FLOAT_EXPECTED",
    "bool_type": "BOOLEAN_EXPECTED",
    "bool_parsing": "BOOLEAN_EXPECTED",
    "string_type": "STRING_EXPECTED",
    "list_type": "ARRAY_EXPECTED",
    "dict_type": "OBJECT_EXPECTED",
    "model_type": "OBJECT_EXPECTED",
    "model_attributes_type": "OBJECT_EXPECTED",
    "greater_than": "VALUE_LESS_THAN_MIN",
    "greater_than_equal": "VALUE_LESS_THAN_MIN",
    "less_than": "VALUE_GREATER_THAN_MAX",
    "less_than_equal": "VALUE_GREATER_THAN_MAX",
    "string_too_short": "VALUE_LESS_THAN_MIN",
    "string_too_long": "VALUE_GREATER_THAN_MAX",
    "datetime_parsing": "INVALID_DATE_TIME",
    "datetime_type": "INVALID_DATE_TIME",
}


def _error_code(err: dict[str, Any]) -> str:
    if err.get("code"):
        return str(err["code"]).upper()
    return _PYDANTIC_CODES.get(str(err.get("type")), "VALUE_NOT_ALLOWED")


def _validation_payload(exc: TaskloomError) -> dict[str, Any]:
    """Toloka's VALIDATION_ERROR payload: ``{field path: {code, message}}`` (a batch:
    ``{index: {field path: {code, message}}}``)."""
    details = exc.details
    if isinstance(details.get("validation_errors"), dict):
        return details["validation_errors"]
    listed = details.get("errors")
    if isinstance(listed, list) and listed:
        out: dict[str, Any] = {}
        for err in listed:
            if isinstance(err, dict):
                name = str(err.get("field") or "body")
                out.setdefault(
                    name,
                    {
                        "code": _error_code(err),
                        "message": str(err.get("message") or exc.message),
                    },
                )
        if out:
            return out
    name = exc.field or details.get("field") or "body"
    return {str(name): {"code": _field_code(exc), "message": exc.message}}


def toloka_error(exc: TaskloomError) -> FastJSONResponse:
    """The one mapping from taskloom's errors to Toloka's codes and statuses."""
    if isinstance(exc, PayloadTooLarge):
        return error_response(413, "VALIDATION_ERROR", exc.message, _validation_payload(exc))
    if isinstance(exc, Invalid):
        return error_response(400, "VALIDATION_ERROR", exc.message, _validation_payload(exc))
    if isinstance(exc, Unauthorized):
        return error_response(401, "AUTHENTICATION_ERROR", exc.message)
    if isinstance(exc, Forbidden):
        return error_response(403, "ACCESS_DENIED", exc.message)
    if isinstance(exc, NotFound):
        return error_response(404, "DOES_NOT_EXIST", exc.message, _extra(exc))
    if isinstance(exc, Conflict):
        # Toloka-worded conflicts (OPERATION_ALREADY_EXISTS, ...) keep their code: toloka-kit
        # acts on some of them; the rest are CONFLICT_STATE
        specific = exc.code.isupper() and not isinstance(exc, InvalidTransition)
        return error_response(
            409, exc.code if specific else "CONFLICT_STATE", exc.message, _extra(exc)
        )
    if isinstance(exc, RateLimited):
        payload = _rate_payload(exc)
        wait = payload.get("retry_after")
        headers = {"Retry-After": str(int(wait))} if isinstance(wait, int | float) else None
        return error_response(429, "TOO_MANY_REQUESTS", exc.message, payload, headers)
    if isinstance(exc, Unavailable):
        return error_response(503, "REMOTE_SERVICE_UNAVAILABLE", exc.message)
    log.error("server error in the Toloka dialect: %s", exc.message)
    return error_response(500, "INTERNAL_ERROR", exc.message)


def _extra(exc: TaskloomError) -> dict[str, Any] | None:
    return {k: v for k, v in exc.details.items() if _jsonable(v)} or None


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict) or value is None


_INTERVALS = {"minute": "MIN", "min": "MIN", "hour": "HOUR", "day": "DAY"}


def _rate_payload(exc: TaskloomError) -> dict[str, Any]:
    """``{interval: MIN|HOUR|DAY, limit}``: toloka-kit waits out a ``MIN`` quota and retries."""
    out = _extra(exc) or {}
    raw = str(out.get("interval") or out.get("window") or out.get("period") or "").lower()
    if raw in _INTERVALS:
        out["interval"] = _INTERVALS[raw]
    elif raw.upper() in ("MIN", "HOUR", "DAY"):
        out["interval"] = raw.upper()
    return out


class TolokaRoute(APIRoute):
    """Renders errors of this router's endpoints (and their dependencies) in Toloka's
    envelope. Anything else is a bug and goes to the app's 500 handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except TaskloomError as exc:
                return toloka_error(exc)
            except RequestValidationError as exc:
                return toloka_error(invalid_from(exc, request=True))
            except DataError as exc:
                reason = (str(exc.orig).strip().splitlines() or ["invalid value"])[0]
                return error_response(
                    400,
                    "VALIDATION_ERROR",
                    f"a value in this request cannot be stored: {reason}",
                    {"body": {"code": "VALUE_NOT_ALLOWED", "message": reason}},
                )

        return route


# -- authentication ----------------------------------------------------------------------------

_SCHEMES = ("oauth", "apikey", "bearer")


def token_of(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not value.strip():
        raise Unauthorized(
            "send Authorization: OAuth <token> (or ApiKey <token>) with a taskloom API key",
            code="missing_credentials",
        )
    return value.strip()


async def toloka_scope(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_act_under_account_id: Annotated[str | None, Header()] = None,
    x_taskloom_app: Annotated[str | None, Header()] = None,
) -> Scope:
    token = token_of(authorization)
    services: Services = request.app.state.platform.services
    app_id = x_taskloom_app or x_act_under_account_id

    def resolve() -> Scope:
        return services.auth.scope(services.auth.authenticate(token), app_id)

    return await run_in_threadpool(resolve)


TolokaScope = Annotated[Scope, Depends(toloka_scope)]


# -- bodies and shapes -------------------------------------------------------------------------


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise Invalid("a JSON body is required", code="VALUE_REQUIRED", field="body")
    return read_json(raw)


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise Invalid("the body is a JSON object", code="OBJECT_EXPECTED", field="body")
    return body


def toloka_time(value: datetime) -> str:
    """UTC, no zone, milliseconds: ``2024-05-01T12:30:00.123``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds")


def wire(value: Any) -> Any:
    """A service object (a dict or a record) as Toloka sends it: datetimes as zoneless UTC ISO
    strings."""
    if isinstance(value, Mapping):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    if isinstance(value, datetime):
        return toloka_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def answer(value: Any, status: int = 200) -> FastJSONResponse:
    return FastJSONResponse(wire(value), status_code=status)


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise Invalid(f"{name} is true or false", code="BOOLEAN_EXPECTED", field=name)


# -- search requests ---------------------------------------------------------------------------

_OPS = ("lt", "lte", "gt", "gte")


def parse_time(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise Invalid(
            f"{name} is an ISO 8601 date and time", code="INVALID_DATE_TIME", field=name
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Search:
    """A Toloka search request: equality filters, ranges, sort keys and a limit."""

    equals: dict[str, Any] = field(default_factory=dict)
    ranges: list[tuple[str, str, Any]] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int = DEFAULT_LIMIT


def parse_search(
    request: Request,
    *,
    equals: Iterable[str],
    ranges: dict[str, str],
    sorts: Iterable[str],
    multi: Iterable[str] = (),
    default_sort: str = "id",
) -> Search:
    """Read a search query. ``ranges`` maps a field to its kind (``str``, ``int``, ``time``);
    ``multi`` names equality filters that take a comma-separated list (assignment status)."""
    q = request.query_params
    out = Search()
    multi = set(multi)
    for name in equals:
        raw = q.get(name)
        if raw is None or raw == "":
            continue
        out.equals[name] = (
            [p.strip() for p in raw.split(",") if p.strip()] if name in multi else raw
        )
    for name, kind in ranges.items():
        for op in _OPS:
            key = f"{name}_{op}"
            raw = q.get(key)
            if raw is None or raw == "":
                continue
            value: Any = raw
            if kind == "time":
                value = parse_time(raw, key)
            elif kind == "int":
                try:
                    value = int(raw)
                except ValueError as exc:
                    raise Invalid(
                        f"{key} is an integer", code="INTEGER_EXPECTED", field=key
                    ) from exc
            out.ranges.append((name, op, value))
    allowed = set(sorts)
    for part in (q.get("sort") or default_sort).split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("-+")
        if name not in allowed:
            raise Invalid(
                f"sort by one of {', '.join(sorted(allowed))}",
                code="VALUE_NOT_ALLOWED",
                field="sort",
            )
        out.sort.append((name, desc))
    if not any(name == "id" for name, _ in out.sort) and "id" in allowed:
        out.sort.append(("id", False))  # a total order, so has_more paging never repeats
    raw_limit = q.get("limit")
    if raw_limit:
        try:
            out.limit = int(raw_limit)
        except ValueError as exc:
            raise Invalid("limit is an integer", code="INTEGER_EXPECTED", field="limit") from exc
        if not 1 <= out.limit <= MAX_LIMIT:
            raise Invalid(
                f"limit is 1 to {MAX_LIMIT}",
                code="VALUE_LESS_THAN_MIN" if out.limit < 1 else "VALUE_GREATER_THAN_MAX",
                field="limit",
            )
    return out


def page(items: list[Any], has_more: bool) -> FastJSONResponse:
    return answer({"items": items, "has_more": has_more})
