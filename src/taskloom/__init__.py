"""taskloom: a self-hosted AI data platform. The public SDK surface is what ``__all__`` lists."""

from __future__ import annotations

from taskloom.errors import (
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
from taskloom.version import __version__

_LAZY = {"Client", "Dataset", "Job", "JobFailed"}


def __getattr__(name: str) -> object:
    # the SDK pulls in httpx and numpy: load it on first use, so that `import taskloom`
    # (and every CLI command) starts fast
    if name in ("Job", "JobFailed"):
        from taskloom.sdk import jobs

        return getattr(jobs, name)
    if name in _LAZY:
        from taskloom.sdk import client

        return getattr(client, name)
    raise AttributeError(f"module 'taskloom' has no attribute {name!r}")


__all__ = [
    "Client",
    "Conflict",
    "Dataset",
    "Forbidden",
    "Invalid",
    "InvalidTransition",
    "Job",
    "JobFailed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "TaskloomError",
    "Unauthorized",
    "Unavailable",
    "__version__",
]
