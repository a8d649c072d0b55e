"""NCLUE replays against real ``taskloom serve`` processes: the same signed headers are
accepted once, by the server that saw them and by the next server process started on the same
data folder (SQLite) or database (PostgreSQL), while requests signed anew keep passing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conftest import PG_URL, ServerProcess, reset_postgres
from taskloom.sdk.ncp import NcpSigner

pytestmark = pytest.mark.e2e

V1 = "/nclue/api/v1"
SIGNED = ("x-ncp-apigw-timestamp", "x-ncp-iam-access-key", "x-ncp-apigw-signature-v2")


def replayed(url: str, sent: httpx.Response) -> httpx.Response:
    """The request behind ``sent`` again, unchanged, from a client that cannot sign."""
    headers = {name: sent.request.headers[name] for name in SIGNED}
    return httpx.request(
        sent.request.method, f"{url}{sent.request.url.raw_path.decode()}", headers=headers
    )


def refused_as_replay(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    err = resp.json()["error"]
    assert err["errorCode"] == "200" and err["message"] == "Authentication Failed", err
    assert err["code"] == "ncp_replayed_signature", err


def test_a_replay_is_refused_by_the_server_and_after_its_restart(tmp_path: Path) -> None:
    if PG_URL:
        reset_postgres(PG_URL)
    data = tmp_path / "data"
    server = ServerProcess(data, workers=0)
    try:
        creds = json.loads((data / "credentials.json").read_text())
        signer = NcpSigner(creds["ncp_access_key"], creds["ncp_secret_key"])
        with httpx.Client(base_url=server.url, auth=signer, timeout=30) as nclue:
            first = nclue.get(f"{V1}/tasks", params={"limit": 5})
            assert first.status_code == 200, first.text
            refused_as_replay(replayed(server.url, first))
            assert nclue.get(f"{V1}/tasks", params={"limit": 5}).status_code == 200
    finally:
        server.stop()
    restarted = ServerProcess(data, workers=0)
    try:
        refused_as_replay(replayed(restarted.url, first))
        with httpx.Client(base_url=restarted.url, auth=signer, timeout=30) as nclue:
            assert nclue.get(f"{V1}/tasks", params={"limit": 5}).status_code == 200
    finally:
        restarted.stop()
