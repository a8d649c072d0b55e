"""The exception hierarchy shared by the services, the API and the SDK.

    TaskloomError
     ├── Invalid            422      bad input; ``field`` names the offending field path
     │    ├── MalformedJSON     400
     │    └── PayloadTooLarge   413
     ├── Unauthorized       401
     ├── Forbidden          403
     ├── NotFound           404      also what another tenant's object answers
     ├── Conflict           409      state or uniqueness conflicts
     │    └── InvalidTransition     a job cannot move from its state
     ├── RateLimited        429
     ├── Unavailable        503
     ├── ServerError        500      only ever a bug
     └── JobFailed                   raised inside a job kind: fail now, no retry

Every error has a stable machine-readable ``code``; the API renders
``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from typing import Any


class TaskloomError(Exception):
    """Something went wrong in taskloom."""

    status_code: int = 500
    code: str = "error"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or (self.__doc__ or self.__class__.__name__).strip()
        if code:
            self.code = code
        self.field = field
        self.details: dict[str, Any] = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class Invalid(TaskloomError):
    """The request is not valid."""

    status_code = 422
    code = "invalid"


class MalformedJSON(Invalid):
    """The request body is not valid JSON."""

    status_code = 400
    code = "malformed_json"


class PayloadTooLarge(Invalid):
    """The request body is too large."""

    status_code = 413
    code = "payload_too_large"


class Unauthorized(TaskloomError):
    """A valid API key is required."""

    status_code = 401
    code = "unauthorized"


class Forbidden(TaskloomError):
    """This key may not do that."""

    status_code = 403
    code = "forbidden"


class NotFound(TaskloomError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Conflict(TaskloomError):
    """The request conflicts with the current state."""

    status_code = 409
    code = "conflict"


class InvalidTransition(Conflict):
    """The job cannot move to that state from the state it is in."""

    code = "invalid_transition"


class RateLimited(TaskloomError):
    """Too many requests."""

    status_code = 429
    code = "rate_limited"


class Unavailable(TaskloomError):
    """The service is unavailable; try again."""

    status_code = 503
    code = "unavailable"


class ServerError(TaskloomError):
    """Internal server error."""

    status_code = 500
    code = "internal_error"


class JobFailed(TaskloomError):
    """The job failed and should not be retried."""

    code = "job_failed"


class Cancelled(TaskloomError):
    """The job was cancelled."""

    code = "cancelled"


_BY_STATUS: dict[int, type[TaskloomError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Invalid,
    429: RateLimited,
    503: Unavailable,
}


def error_for_status(status: int, body: dict[str, Any] | None) -> TaskloomError:
    """Rebuild the typed error from an API error response (used by the SDK)."""
    err = (body or {}).get("error") or {}
    cls = _BY_STATUS.get(status, ServerError)
    if status == 409 and err.get("code") == InvalidTransition.code:
        cls = InvalidTransition
    details = err.get("details") or {}
    exc = cls(err.get("message") or f"HTTP {status}", code=err.get("code"), details=details)
    exc.field = details.get("field")
    exc.status_code = status
    return exc
