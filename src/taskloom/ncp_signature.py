"""NCP API Gateway request signatures (the NCLUE front door's authentication), pure functions.

A client sends three headers:

- ``X-NCP-APIGW-TIMESTAMP``: epoch milliseconds when it signed;
- ``X-NCP-IAM-ACCESS-KEY``: its access key;
- ``X-NCP-APIGW-SIGNATURE-V2``: ``base64(HMAC-SHA256(secret_key, message))`` with
  ``message = "{METHOD} {URI}\\n{timestamp}\\n{access_key}"``.

``URI`` is the request target exactly as the client sent it: the raw (still
percent-encoded) path, with the ``/nclue`` prefix when there is one, plus ``?`` and the query
string when there is one. It is never re-encoded or normalised on either side, so what was
signed is what is checked (:func:`request_uri` builds it from an ASGI scope's ``raw_path``
and ``query_string``).

The server accepts a timestamp at most 5 minutes away from its clock, either way (the edge
included), and compares signatures in constant time. Every failure is ``Unauthorized``
(401, as the NCP gateway answers, its error code 200 "Authentication Failed") with a code
of its own: ``ncp_missing_headers``, ``ncp_invalid_timestamp``, ``ncp_stale_timestamp``,
``ncp_unknown_access_key``, ``ncp_invalid_signature``, ``ncp_replayed_signature``.
``Forbidden`` (403) is left to the caller, for a known, correctly signed key that may not
touch what it asks for.

A signed request is good once: :func:`verify_headers` takes a ``first_use`` callback that
records each accepted signature until its window closes (the server's is
``taskloom.store.ncp_replays.first_use``, in the database) and refuses one already recorded,
so the same headers sent again within the 5 minutes answer 401 ``ncp_replayed_signature``.
A client that retries a request signs it anew (``taskloom.sdk.ncp.NcpSigner`` does, with a
timestamp later than any it used before).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from taskloom.errors import Unauthorized

__all__ = [
    "ACCESS_KEY_HEADER",
    "FirstUse",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WINDOW_MS",
    "request_uri",
    "sign",
    "string_to_sign",
    "verify",
    "verify_headers",
]

TIMESTAMP_HEADER = "x-ncp-apigw-timestamp"
ACCESS_KEY_HEADER = "x-ncp-iam-access-key"
SIGNATURE_HEADER = "x-ncp-apigw-signature-v2"
WINDOW_MS = 5 * 60 * 1000

Clock = Callable[[], float]
"""Seconds since the epoch (``time.time``), injectable for tests."""

FirstUse = Callable[[str, str, int], bool]
"""``first_use(access_key, signature, expires_ms)``: record a signature as used until
``expires_ms`` (epoch milliseconds, its timestamp plus the window); False when it already
was (a replay). It must decide atomically: of two concurrent calls with one signature, one wins.
"""


def string_to_sign(method: str, uri: str, timestamp_ms: int | str, access_key: str) -> str:
    """The message the signature covers."""
    return f"{method.upper()} {uri}\n{timestamp_ms}\n{access_key}"


def sign(secret_key: str, method: str, uri: str, timestamp_ms: int | str, access_key: str) -> str:
    """The ``X-NCP-APIGW-SIGNATURE-V2`` value of a request."""
    message = string_to_sign(method, uri, timestamp_ms, access_key)
    digest = hmac.new(secret_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def request_uri(raw_path: bytes | str, query_string: bytes | str = b"") -> str:
    """The signed URI of a request: its raw path, plus ``?query`` when there is a query."""
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return f"{path}?{query}" if query else path


def _parse_timestamp(timestamp_ms: int | str) -> int:
    if isinstance(timestamp_ms, int) and not isinstance(timestamp_ms, bool):
        return timestamp_ms
    text = str(timestamp_ms)
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} must be epoch milliseconds (digits only)",
            code="ncp_invalid_timestamp",
        )
    return int(text)


def _check_fresh(timestamp_ms: int | str, clock: Clock, window_ms: int) -> None:
    ts = _parse_timestamp(timestamp_ms)
    now_ms = round(clock() * 1000)
    if abs(now_ms - ts) > window_ms:
        raise Unauthorized(
            "the request timestamp is more than 5 minutes away from the server's clock",
            code="ncp_stale_timestamp",
            details={"server_time_ms": now_ms},
        )


def verify(
    secret_key: str,
    method: str,
    uri: str,
    timestamp_ms: int | str,
    access_key: str,
    signature: str,
    *,
    clock: Clock = time.time,
    window_ms: int = WINDOW_MS,
) -> None:
    """Accept the request or raise ``Unauthorized`` (stale timestamp, bad signature)."""
    _check_fresh(timestamp_ms, clock, window_ms)
    # sign the timestamp as the client sent it (leading zeros and all)
    expected = sign(secret_key, method, uri, str(timestamp_ms), access_key)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
        raise Unauthorized("the request signature does not match", code="ncp_invalid_signature")


def verify_headers(
    headers: Mapping[str, str],
    method: str,
    uri: str,
    secret_for: Callable[[str], str | None],
    *,
    clock: Clock = time.time,
    window_ms: int = WINDOW_MS,
    first_use: FirstUse | None = None,
) -> str:
    """Check a request's NCP headers and return its access key.

    ``headers`` is looked up with lowercase names (Starlette's ``Headers`` and httpx's are
    case-insensitive; a plain dict must use lowercase keys). ``secret_for(access_key)``
    returns the key's secret, or None for a key that does not exist. The timestamp is
    checked before the key is looked up, so a stale replay costs no lookup. With
    ``first_use``, a correct signature is recorded there last, and one recorded before is
    refused (``ncp_replayed_signature``); only signatures that verified are ever recorded.
    """
    missing = [
        name
        for name in (TIMESTAMP_HEADER, ACCESS_KEY_HEADER, SIGNATURE_HEADER)
        if not headers.get(name)
    ]
    if missing:
        raise Unauthorized(
            f"missing authentication headers: {', '.join(missing)}",
            code="ncp_missing_headers",
            details={"missing": missing},
        )
    timestamp = headers[TIMESTAMP_HEADER].strip()
    access_key = headers[ACCESS_KEY_HEADER].strip()
    signature = headers[SIGNATURE_HEADER].strip()
    _check_fresh(timestamp, clock, window_ms)
    secret = secret_for(access_key)
    if secret is None:
        raise Unauthorized("unknown access key", code="ncp_unknown_access_key")
    verify(secret, method, uri, timestamp, access_key, signature, clock=clock, window_ms=window_ms)
    if first_use is not None and not first_use(
        access_key, signature, _parse_timestamp(timestamp) + window_ms
    ):
        raise Unauthorized(
            "this signature was already used: sign each request anew (a new timestamp)",
            code="ncp_replayed_signature",
        )
    return access_key
