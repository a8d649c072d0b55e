"""The error envelope and the error statuses a route declares.

Every error answer is ``{"error": {"code", "message", "details"}}`` (``api/errors.py`` and
the body-size middleware make them); ``details.field`` names the offending field where
there is one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="Machine-readable error code, e.g. `dataset_not_found`.")
    message: str = Field(description="What went wrong, for people.")
    details: dict[str, Any] = Field(
        description="`field` (the offending field) and more; `{}` when there is nothing more."
    )


class ErrorEnvelope(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


DESCRIPTIONS = {
    400: "Bad request: the body is not valid JSON",
    401: "No valid API key (or worker token)",
    403: "The key may not do this",
    404: "Not found (also another app's object, and an X-Taskloom-App the key cannot use)",
    409: "Conflict with the object's state",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input; `details.field` names it",
    429: "Rate limited; `Retry-After` says when to try again",
    503: "Unavailable; try again later",
}

# every authenticated route may answer these (no or a bad key; invalid parameters)
COMMON_ERRORS = (401, 422)
# a route that acts in an app (``ScopeDep``) answers 404 for an X-Taskloom-App it cannot use
SCOPE_ERRORS = (404,)
# a route that reads a JSON body: 400 when it is not JSON, 413 past the body limit
BODY_ERRORS = (400, 413)

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}


def error_responses(
    *statuses: int, common: bool = True, scope: bool = True, body: bool = False
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error status it answers, with the error
    envelope as its schema. ``common``: 401 and 422; ``scope``: 404 (the app);
    ``body``: 400 and 413."""
    codes = set(statuses)
    if common:
        codes.update(COMMON_ERRORS)
    if scope:
        codes.update(SCOPE_ERRORS)
    if body:
        codes.update(BODY_ERRORS)
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(codes):
        entry: dict[str, Any] = {
            "model": ErrorEnvelope,
            "description": DESCRIPTIONS.get(code, "Error"),
        }
        if code == 429:
            entry["headers"] = _RETRY_AFTER
        out[code] = entry
    return out


def also(status: int, model: type[BaseModel], description: str) -> dict[int | str, dict[str, Any]]:
    """One more success answer of a route (a route that answers 200 or 201, 200 or 202)."""
    return {status: {"model": model, "description": description}}
