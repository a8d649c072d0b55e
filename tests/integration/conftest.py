"""Fixtures for the integration tests: HTTP clients on the real app, in this process.

The app runs on ``httpx.ASGITransport`` (the SDK's embedded transport), so requests take the
same path as on a server, and an exception that escapes the app fails the test instead of
turning into a quiet 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from taskloom.api.app import create_app
from taskloom.runtime import Platform
from taskloom.sdk.client import Client
from taskloom.sdk.transport import EmbeddedTransport

from .clarifai_helpers import door  # noqa: F401  (the Clarifai door's fixture)

BASE_URL = "http://taskloom.test"


@pytest.fixture
def admin_key(platform: Platform) -> str:
    key = platform.settings.bootstrap_api_key
    assert key
    return key


@pytest.fixture
def app(platform: Platform) -> FastAPI:
    return create_app(platform)


@pytest.fixture
def transport(app: FastAPI) -> Iterator[EmbeddedTransport]:
    t = EmbeddedTransport(app)
    yield t
    t.close()


HttpFactory = Callable[..., httpx.Client]


@pytest.fixture
def make_http(transport: EmbeddedTransport, admin_key: str) -> Iterator[HttpFactory]:
    """``make_http(key, app_id=None)``: a raw HTTP client that sends that key (or none)."""
    made: list[httpx.Client] = []

    def make(key: str | None = admin_key, app_id: str | None = None) -> httpx.Client:
        headers = {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if app_id is not None:
            headers["X-Taskloom-App"] = app_id
        c = httpx.Client(base_url=BASE_URL, transport=transport, headers=headers)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def http(make_http: HttpFactory) -> httpx.Client:
    """Raw HTTP with the admin key."""
    return make_http()


@pytest.fixture
def sdk(transport: EmbeddedTransport, admin_key: str) -> Iterator[Client]:
    """The SDK client with the admin key, talking to the in-process app."""
    c = Client(url=BASE_URL, api_key=admin_key, transport=transport, retries=0)
    yield c
    c._http.close()


def error_of(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``resp`` is the API's error envelope with this status (and code); return it."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["code"], str) and err["code"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    if code is not None:
        assert err["code"] == code, err
    return err
