"""Clarifai statuses: every answer carries ``status`` (``code``, ``description``, ``details``);
an error is an answer with a non-success code, not a gRPC error (the SDK reads
``response.status.code``).

A taskloom error becomes one status: its class picks the Clarifai code (a missing app is
``CONN_DOES_NOT_EXIST``, a bad value ``CONN_INVALID_REQUEST``, a refused key
``CONN_KEY_INVALID``, ...), ``description`` is its message, and ``details`` names
taskloom's machine-readable code and the offending field: ``invalid_limit (field
per_page)``.
"""

from __future__ import annotations

from typing import Any

from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from taskloom.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    RateLimited,
    TaskloomError,
    Unauthorized,
    Unavailable,
)

SUCCESS = status_code_pb2.SUCCESS
MIXED_STATUS = status_code_pb2.MIXED_STATUS

# the first class an error is an instance of picks its code
_CODES: tuple[tuple[type[TaskloomError], int], ...] = (
    (Unauthorized, status_code_pb2.CONN_KEY_INVALID),
    (Forbidden, status_code_pb2.CONN_INSUFFICIENT_SCOPES),
    (NotFound, status_code_pb2.CONN_DOES_NOT_EXIST),
    (RateLimited, status_code_pb2.CONN_THROTTLED),
    (Unavailable, status_code_pb2.RPC_SERVER_UNAVAILABLE),
    (Conflict, status_code_pb2.CONN_INVALID_REQUEST),
    (Invalid, status_code_pb2.CONN_INVALID_REQUEST),
)


def ok(description: str = "Ok") -> status_pb2.Status:
    return status_pb2.Status(code=SUCCESS, description=description)


def code_of(exc: TaskloomError) -> int:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return status_code_pb2.INTERNAL_UNCATEGORIZED


def details_of(exc: TaskloomError) -> str:
    field: Any = exc.details.get("field")
    return f"{exc.code} (field {field})" if field else exc.code


def error(exc: TaskloomError) -> status_pb2.Status:
    """The status of an answer refused with ``exc``."""
    return status_pb2.Status(code=code_of(exc), description=exc.message, details=details_of(exc))


def internal() -> status_pb2.Status:
    """A failure of taskloom itself (a bug): logged with its traceback, nothing leaked."""
    return status_pb2.Status(
        code=status_code_pb2.INTERNAL_UNCATEGORIZED,
        description="internal error",
        details="internal_error",
    )
