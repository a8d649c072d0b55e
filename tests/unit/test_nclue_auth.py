"""NCP API Gateway signatures (``taskloom.ncp_signature``, ``taskloom.sdk.ncp``):
the signature is the documented HMAC, each wrong part of a request is refused with its own
code, and the 5-minute window holds at its edges."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from taskloom.errors import Unauthorized
from taskloom.ncp_signature import (
    ACCESS_KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WINDOW_MS,
    request_uri,
    sign,
    verify,
    verify_headers,
)
from taskloom.sdk.ncp import NcpSigner

ACCESS = "ncp_iam_BPAMKR1aTr0qHQ8wM3dF"
SECRET = "ncp_iam_BPKMKRdSIyxvvK2hd2Qi5AQwvsTVZh6Z8X"
TS = 1_730_618_452_123
NOW = TS / 1000
URI = "/nclue/api/v1/tasks?page=2&size=10"


def by_hand(secret: str, message: str) -> str:
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_signature_is_the_documented_hmac():
    expected = by_hand(SECRET, f"GET {URI}\n{TS}\n{ACCESS}")
    assert sign(SECRET, "GET", URI, TS, ACCESS) == expected
    assert sign(SECRET, "get", URI, str(TS), ACCESS) == expected  # method upper-cased
    assert len(base64.b64decode(expected)) == 32


def test_a_correct_request_passes():
    sig = sign(SECRET, "POST", URI, TS, ACCESS)
    verify(SECRET, "POST", URI, TS, ACCESS, sig, clock=lambda: NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"secret": SECRET + "x"},
        {"access": "ncp_iam_other"},
        {"method": "DELETE"},
        {"uri": "/api/v1/tasks?page=2&size=10"},  # without the /nclue prefix
        {"uri": "/nclue/api/v1/tasks?page=3&size=10"},  # another query
        {"uri": "/nclue/api/v1/tasks"},  # the query left out
        {"uri": "/nclue/api/v1/tasks?size=10&page=2"},  # the query reordered
        {"timestamp": TS + 1},
    ],
    ids=lambda c: next(iter(c)) + ":" + str(next(iter(c.values())))[-24:],
)
def test_any_signed_part_changed_is_refused(change):
    sig = sign(SECRET, "POST", URI, TS, ACCESS)
    args = {"secret": SECRET, "access": ACCESS, "method": "POST", "uri": URI, "timestamp": TS}
    args.update(change)
    with pytest.raises(Unauthorized) as err:
        verify(
            args["secret"],
            args["method"],
            args["uri"],
            args["timestamp"],
            args["access"],
            sig,
            clock=lambda: NOW,
        )
    assert err.value.code == "ncp_invalid_signature" and err.value.status_code == 401


def test_a_mangled_signature_is_refused():
    sig = sign(SECRET, "GET", URI, TS, ACCESS)
    for bad in (sig[:-2] + "AA", "", "é" * 44, sig.lower()):
        with pytest.raises(Unauthorized) as err:
            verify(SECRET, "GET", URI, TS, ACCESS, bad, clock=lambda: NOW)
        assert err.value.code == "ncp_invalid_signature"


@pytest.mark.parametrize(
    ("offset_ms", "ok"),
    [
        (0, True),
        (300_000, True),
        (-300_000, True),
        (300_001, False),
        (-300_001, False),
        (3_600_000, False),
    ],
)
def test_the_five_minute_window(offset_ms, ok):
    sig = sign(SECRET, "GET", URI, TS, ACCESS)
    clock = lambda: (TS + offset_ms) / 1000  # noqa: E731 - the server's clock, offset
    if ok:
        verify(SECRET, "GET", URI, TS, ACCESS, sig, clock=clock)
    else:
        with pytest.raises(Unauthorized) as err:
            verify(SECRET, "GET", URI, TS, ACCESS, sig, clock=clock)
        assert err.value.code == "ncp_stale_timestamp"


@pytest.mark.parametrize("bad", ["", "abc", "1.7e12", "-1730618452123", " 12", "１２３"])
def test_a_timestamp_that_is_not_milliseconds_is_refused(bad):
    with pytest.raises(Unauthorized) as err:
        verify(SECRET, "GET", URI, bad, ACCESS, "x", clock=lambda: NOW)
    assert err.value.code == "ncp_invalid_timestamp"


def headers_for(method: str = "GET", uri: str = URI, **override: str) -> dict[str, str]:
    h = {
        TIMESTAMP_HEADER: str(TS),
        ACCESS_KEY_HEADER: ACCESS,
        SIGNATURE_HEADER: sign(SECRET, method, uri, TS, ACCESS),
    }
    h.update(override)
    return {k: v for k, v in h.items() if v is not None}


def lookup(key: str) -> str | None:
    return SECRET if key == ACCESS else None


def test_headers_pass_and_name_the_key():
    assert verify_headers(headers_for(), "GET", URI, lookup, clock=lambda: NOW) == ACCESS


@pytest.mark.parametrize("header", [TIMESTAMP_HEADER, ACCESS_KEY_HEADER, SIGNATURE_HEADER])
def test_each_missing_header_is_refused(header):
    h = headers_for()
    del h[header]
    with pytest.raises(Unauthorized) as err:
        verify_headers(h, "GET", URI, lookup, clock=lambda: NOW)
    assert err.value.code == "ncp_missing_headers"
    assert err.value.details["missing"] == [header]


def test_an_unknown_access_key_is_refused():
    h = headers_for(**{ACCESS_KEY_HEADER: "ncp_iam_nobody"})
    with pytest.raises(Unauthorized) as err:
        verify_headers(h, "GET", URI, lookup, clock=lambda: NOW)
    assert err.value.code == "ncp_unknown_access_key"


def test_a_stale_request_is_refused_before_the_key_is_looked_up():
    looked_up = []

    def spy(key: str) -> str | None:
        looked_up.append(key)
        return SECRET

    with pytest.raises(Unauthorized) as err:
        verify_headers(headers_for(), "GET", URI, spy, clock=lambda: NOW + 301)
    assert err.value.code == "ncp_stale_timestamp" and looked_up == []


def test_request_uri_keeps_the_raw_path_and_query():
    assert request_uri(b"/nclue/api/v1/tasks", b"") == "/nclue/api/v1/tasks"
    assert request_uri(b"/nclue/api/v1/tasks/a%2Fb", b"q=x%20y&z=1") == (
        "/nclue/api/v1/tasks/a%2Fb?q=x%20y&z=1"
    )


def test_the_sdk_signer_signs_what_httpx_sends():
    seen: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        uri = request_uri(request.url.raw_path.split(b"?")[0], request.url.query)
        seen["uri"] = uri
        key = verify_headers(request.headers, request.method, uri, lookup, clock=lambda: NOW)
        return httpx.Response(200, json={"key": key})

    signer = NcpSigner(ACCESS, SECRET, clock=lambda: NOW)
    with httpx.Client(
        base_url="http://testserver/nclue", auth=signer, transport=httpx.MockTransport(handler)
    ) as client:
        r = client.get("/api/v1/tasks", params={"name": "pet food", "page": 2})
        assert r.json() == {"key": ACCESS}
        assert seen["uri"] == "/nclue/api/v1/tasks?name=pet+food&page=2"
        assert r.request.headers[TIMESTAMP_HEADER] == str(TS)
        assert client.post("/api/v1/tasks", json={"name": "x"}).status_code == 200
    assert SECRET not in repr(signer)


def test_a_request_signed_with_another_secret_is_refused_through_the_signer():
    def handler(request: httpx.Request) -> httpx.Response:
        uri = request.url.raw_path.decode()
        verify_headers(request.headers, request.method, uri, lookup, clock=lambda: NOW)
        return httpx.Response(200)

    signer = NcpSigner(ACCESS, "not-the-secret", clock=lambda: NOW)
    client = httpx.Client(auth=signer, transport=httpx.MockTransport(handler))
    with client, pytest.raises(Unauthorized) as err:
        client.get("http://testserver/nclue/api/v1/tasks")
    assert err.value.code == "ncp_invalid_signature"


# -- replays: a signature is good once ---------------------------------------------------------


class Seen:
    """An in-memory ``first_use``: the signatures recorded, with their expiry."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, access_key: str, signature: str, expires_ms: int) -> bool:
        first = all(sig != signature for _, sig, _ in self.calls)
        self.calls.append((access_key, signature, expires_ms))
        return first


def test_the_same_headers_twice_are_refused_as_a_replay():
    seen = Seen()
    h = headers_for()
    assert verify_headers(h, "GET", URI, lookup, clock=lambda: NOW, first_use=seen) == ACCESS
    with pytest.raises(Unauthorized) as err:
        verify_headers(h, "GET", URI, lookup, clock=lambda: NOW + 1, first_use=seen)
    assert err.value.code == "ncp_replayed_signature"
    assert err.value.status_code == 401
    # recorded until the timestamp's window closes, then the stale check refuses it anyway
    assert seen.calls[0] == (ACCESS, h[SIGNATURE_HEADER], TS + WINDOW_MS)


def test_only_correct_signatures_are_recorded():
    seen = Seen()
    wrong = headers_for(**{SIGNATURE_HEADER: sign("other", "GET", URI, TS, ACCESS)})
    stale = headers_for()
    for h, clock, code in (
        (wrong, lambda: NOW, "ncp_invalid_signature"),
        (stale, lambda: NOW + 301, "ncp_stale_timestamp"),
    ):
        with pytest.raises(Unauthorized) as err:
            verify_headers(h, "GET", URI, lookup, clock=clock, first_use=seen)
        assert err.value.code == code
    assert seen.calls == []  # a forged signature cannot block a real one


def test_the_signer_signs_each_send_anew_even_in_one_millisecond():
    """With a clock that never moves, every request (and a retry of the same request) still
    gets its own timestamp and signature, so a replay-refusing server accepts them all."""
    seen = Seen()

    def handler(request: httpx.Request) -> httpx.Response:
        uri = request.url.raw_path.decode()
        verify_headers(
            request.headers, request.method, uri, lookup, clock=lambda: NOW, first_use=seen
        )
        return httpx.Response(200)

    client = httpx.Client(
        auth=NcpSigner(ACCESS, SECRET, clock=lambda: NOW), transport=httpx.MockTransport(handler)
    )
    with client:
        for _ in range(3):
            assert client.get("http://testserver/nclue/api/v1/tasks").status_code == 200
        retried = client.build_request("POST", "http://testserver/nclue/api/v1/tasks", json={})
        assert client.send(retried).status_code == 200
        assert client.send(retried).status_code == 200  # a retry is signed again
    stamps = [expires - WINDOW_MS for _, _, expires in seen.calls]
    assert stamps == [TS + i for i in range(5)]
    assert len({sig for _, sig, _ in seen.calls}) == 5
