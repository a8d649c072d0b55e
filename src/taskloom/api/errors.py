"""One place that turns errors into HTTP answers: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskloom import wire
from taskloom.api.responses import FastJSONResponse
from taskloom.errors import TaskloomError

log = logging.getLogger("taskloom.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


_BODY_NOT_PARSED = "There was an error parsing the body"  # FastAPI's words


def too_deep_error() -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) for a value nested too deep to process."""
    return (
        "too_deep",
        f"a value in this request nests too deep (at most {wire.MAX_BODY_DEPTH} levels)",
        {"field": "body", "max_depth": wire.MAX_BODY_DEPTH},
    )


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _loc_to_field(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(TaskloomError)
    async def _taskloom(_: Request, exc: TaskloomError) -> FastJSONResponse:
        return FastJSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code)

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> FastJSONResponse:
        # The database refused a value of the request (PostgreSQL stores no NUL character
        # in text, for one): the request is at fault, not the server.
        reason = (str(exc.orig).strip().splitlines() or ["invalid value"])[0]
        log.warning("the database refused a value: %s", reason)
        return FastJSONResponse(
            error_body("invalid_value", f"a value in this request cannot be stored: {reason}"),
            422,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> FastJSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return FastJSONResponse(
                error_body(
                    "malformed_json", "the request body is not valid JSON", {"field": "body"}
                ),
                400,
            )
        if first.get("type") == "model_attributes_type" and tuple(first.get("loc", ())) == (
            "body",
        ):
            return FastJSONResponse(
                error_body(
                    "invalid_body",
                    "the body must be a JSON object (send Content-Type: application/json)",
                    {"field": "body"},
                ),
                422,
            )
        field = _loc_to_field(first.get("loc", ()))
        listed = [
            {
                "field": _loc_to_field(e.get("loc", ())),
                "message": e.get("msg"),
                "type": e.get("type"),
            }
            for e in errors
        ]
        msg = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return FastJSONResponse(
            error_body("invalid", msg, {"field": field or "body", "errors": listed}), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> FastJSONResponse:
        if exc.status_code == 400 and exc.detail == _BODY_NOT_PARSED:
            # FastAPI's own body parsing failed on something that is not a JSONDecodeError
            # (stdlib json's RecursionError on a very deep body, a bad encoding)
            return FastJSONResponse(
                error_body(
                    "malformed_json",
                    "the request body cannot be read as JSON (too deep or badly encoded)",
                    {"field": "body"},
                ),
                400,
            )
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return FastJSONResponse(
            error_body(code, str(exc.detail), getattr(exc, "details", None)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RecursionError)
    async def _recursion(_: Request, exc: RecursionError) -> FastJSONResponse:
        # the last line of defence: bodies are refused past wire.MAX_BODY_DEPTH when they
        # are read, so a value that still recursed too far is refused rather than a 500
        log.warning("a request recursed too deep: %s", exc)
        return FastJSONResponse(error_body(*too_deep_error()), 400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> FastJSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return FastJSONResponse(
            error_body("internal_error", "internal server error (a bug; see the server log)"), 500
        )
