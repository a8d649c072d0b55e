"""taskloom: a self-hosted AI data platform. The public SDK surface is what ``__all__`` lists."""

from __future__ import annotations

__version__ = "0.1.0"

from taskloom.errors import (  # noqa: E402
    Conflict,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    TaskloomError,
    Unauthorized,
    Unavailable,
)
from taskloom.sdk.client import Client, Dataset, Job  # noqa: E402

__all__ = [
    "Client",
    "Conflict",
    "Dataset",
    "Forbidden",
    "Invalid",
    "InvalidTransition",
    "Job",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TaskloomError",
    "Unauthorized",
    "Unavailable",
    "__version__",
]
