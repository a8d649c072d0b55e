"""Signing requests the way the NCP API Gateway expects (for taskloom's NCLUE front door).

``NcpSigner`` is an ``httpx.Auth``: give it to any httpx client and every request it sends
carries ``X-NCP-APIGW-TIMESTAMP``, ``X-NCP-IAM-ACCESS-KEY`` and ``X-NCP-APIGW-SIGNATURE-V2``::

    import httpx
    from taskloom.sdk.ncp import NcpSigner

    nclue = httpx.Client(
        base_url="http://127.0.0.1:8000/nclue", auth=NcpSigner(access_key, secret_key)
    )
    nclue.get("/api/v1/tasks")

The signed URI is the request's raw path and query (``request.url.raw_path``) exactly as
httpx sends it, so it includes the ``/nclue`` prefix of the base URL.

The server accepts each signature once (a replay answers 401 ``ncp_replayed_signature``), so
every request, a retry included, is signed anew when it is sent, and one signer never uses a
timestamp twice: two requests in the same millisecond get consecutive milliseconds, or the
second, identical to the first, would be refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

from taskloom.ncp_signature import (
    ACCESS_KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

__all__ = ["NcpSigner"]


class NcpSigner(httpx.Auth):
    """Signs each request with an NCP access key and its secret key.

    ``clock`` (seconds since the epoch, default ``time.time``) is there for tests.
    """

    def __init__(
        self, access_key: str, secret_key: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self._clock = clock
        self._last_ms = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the secret
        return f"NcpSigner(access_key={self.access_key!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:  # a later timestamp than any before: no two requests sign alike
            self._last_ms = max(round(self._clock() * 1000), self._last_ms + 1)
            timestamp = str(self._last_ms)
        uri = request.url.raw_path.decode("ascii")
        request.headers[TIMESTAMP_HEADER] = timestamp
        request.headers[ACCESS_KEY_HEADER] = self.access_key
        request.headers[SIGNATURE_HEADER] = sign(
            self._secret_key, request.method, uri, timestamp, self.access_key
        )
        yield request
