"""Schemas the whole native API shares: the error envelope and the error statuses a route
declares, so ``/openapi.json`` describes every answer the server gives.

Every error answer is ``{"error": {"code", "message", "details"}}`` (``api/errors.py`` makes
them); ``details.field`` names the offending field where there is one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Machine-readable error code, e.g. `dataset_not_found`.")
    message: str = Field(description="What went wrong, for people.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="`field` (the offending field) and more."
    )


class ErrorEnvelope(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


_DESCRIPTIONS = {
    400: "Bad request (malformed JSON, a body that cannot be read)",
    401: "No valid API key",
    403: "The key may not do this",
    404: "Not found (also for another app's object)",
    409: "Conflict with the object's state",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Rate limited",
    503: "Unavailable",
}

# every authenticated route may answer these
COMMON_ERRORS = (400, 401, 403, 422)


def error_responses(*statuses: int, common: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each status with the error envelope as its schema."""
    codes = sorted({*statuses, *(COMMON_ERRORS if common else ())})
    return {
        code: {"model": ErrorEnvelope, "description": _DESCRIPTIONS.get(code, "Error")}
        for code in codes
    }
