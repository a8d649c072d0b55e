"""The Relevance dialect's HTTP conventions: credentials, parameters, the error envelope.

* ``Authorization: <project>:<api_key>``: the project is a taskloom app id; the key must be
  valid and allowed to act in that app (else 401, without saying which part is wrong).
* Parameters: GET requests carry them in the query string (a repeated key is a list, Python's
  ``True``/``False`` are booleans), POST requests in a JSON body. The relevanceai SDK also
  sends a ``{}`` body with its GETs; any JSON body's keys are read over the query string's.
* Success is 200 (the SDK treats any other status as a failure). Errors are
  ``{"message", "code", "details"}`` with the status of the matching taskloom error: 400
  malformed JSON, 401, 403, 404 (also another tenant's dataset), 409, 422. The SDK raises
  its ``APIError`` on 404 and 422 and retries the others.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict
from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool

from taskloom import wire
from taskloom.api.errors import too_deep_error
from taskloom.api.responses import FastJSONResponse
from taskloom.errors import Invalid, NotFound, TaskloomError, Unauthorized
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.validation import invalid_from, parse_model

M = TypeVar("M", bound=BaseModel)

# The cursor after the last page: Relevance clients page until a page comes back empty, so
# the last page carries a cursor to that empty page rather than none.
END_CURSOR = "end"


# -- errors in Relevance's envelope ------------------------------------------------------------


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> FastJSONResponse:
    return FastJSONResponse(
        {"message": message, "code": code, "details": details or {}}, status_code=status
    )


class RelevanceRoute(APIRoute):
    """Renders errors raised by this router's endpoints (and their dependencies) in the
    dialect's envelope instead of the native one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except TaskloomError as exc:
                return error_response(exc.status_code, exc.code, exc.message, exc.details)
            except RequestValidationError as exc:
                inv = invalid_from(exc, request=True)
                return error_response(422, inv.code, inv.message, inv.details)
            except DataError as exc:
                reason = (str(exc.orig).strip().splitlines() or ["invalid value"])[0]
                return error_response(
                    422, "invalid_value", f"a value in this request cannot be stored: {reason}"
                )
            except RecursionError:
                return error_response(400, *too_deep_error())

        return route


# -- authentication: Authorization: <project>:<api_key> ---------------------------------------


async def relevance_scope(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Scope:
    project, sep, key = (authorization or "").strip().partition(":")
    if not sep or not project.strip() or not key.strip():
        raise Unauthorized(
            "send Authorization: <project>:<api_key> (the project is a taskloom app id)",
            code="missing_credentials",
        )
    services: Services = request.app.state.platform.services

    def resolve() -> Scope:
        principal = services.auth.authenticate(key.strip())
        try:
            return services.auth.scope(principal, project.strip())
        except NotFound as exc:
            # the key is valid but not for this project: say no more than that
            raise Unauthorized(
                "this API key cannot act in that project", code="invalid_credentials"
            ) from exc

    return await run_in_threadpool(resolve)


RelevanceScope = Annotated[Scope, Depends(relevance_scope)]


# -- parameters: query string (GET) and JSON body (POST) --------------------------------------


async def request_params(request: Request) -> dict[str, Any]:
    """The request's parameters: the query string, then the JSON body's keys over it."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 else values[0]
    raw = await request.body()
    if raw.strip():
        body = wire.loads(raw)
        if not isinstance(body, dict):
            raise Invalid("the body is a JSON object", code="invalid_body", field="body")
        out.update(body)
    return out


Params = Annotated[dict[str, Any], Depends(request_params)]


def parse(model: type[M], params: dict[str, Any]) -> M:
    return parse_model(model, params)


def _as_list(value: Any) -> Any:
    """A key given once in a query string is a string; ids may be numbers."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


StrList = Annotated[builtins.list[str], BeforeValidator(_as_list)]


class RelevanceIn(BaseModel):
    # The SDK sends options taskloom has no use for (insert_date, update_schema…); unknown
    # keys are ignored, as Relevance's API does.
    model_config = ConfigDict(extra="ignore")


def selected(fields: builtins.list[str] | None) -> builtins.list[str] | None:
    return fields or None  # Relevance: an empty list means every field


def unsupported(message: str, field: str) -> Invalid:
    return Invalid(message, code="unsupported", field=field)
