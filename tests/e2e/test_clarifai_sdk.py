"""End to end: the official Clarifai SDK (clarifai 12.5.0, unmodified) against a real
``taskloom serve`` through its gRPC door.

The SDK pins numpy, protobuf and much else, so it lives in its own environment,
``.venv-clarifai`` (made by ``scripts/clarifai-env.sh`` when missing; minutes the first
time). ``clarifai_driver.py`` runs there, one phase per call, and prints what it saw.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PG_URL, ServerProcess, reset_postgres

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("clarifai_driver.py")


@pytest.fixture(scope="module")
def clarifai_python() -> str:
    script = ROOT / "scripts" / "clarifai-env.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.fail(
            "could not build .venv-clarifai (clarifai 12.5.0) with scripts/clarifai-env.sh; "
            f"it needs python3.11 (or python3) and a package index:\n{proc.stderr[-4000:]}"
        )
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    if PG_URL:
        reset_postgres(PG_URL)
    data = tmp_path / "data"
    s = ServerProcess(data)
    yield s
    s.stop()


def drive(python: str, phase: str, server: ServerProcess, user_id: str, *rest: str) -> Any:
    proc = subprocess.run(
        [python, str(DRIVER), phase, server.grpc_url, user_id, server.api_key, *rest],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"clarifai phase {phase!r} failed:\n{proc.stderr[-6000:]}\n--- server log ---\n"
        f"{server.output()[-4000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def me(server: ServerProcess, key: str | None = None) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/v1/me", headers={"Authorization": f"Bearer {key or server.api_key}"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_apps_through_the_official_sdk(clarifai_python: str, served: ServerProcess) -> None:
    user_id = me(served)["user_id"]
    out = drive(clarifai_python, "apps", served, user_id)
    assert out["created"] == "e2e-cats"
    assert out["listed"] == ["default", "e2e-cats", "e2e-dogs"]
    assert out["page_1_of_1"] == ["default"] and out["page_2_of_1"] == ["e2e-cats"]
    assert out["got"] == {"id": "e2e-cats", "workflow": "Universal", "description": "cats"}
    assert out["patched"] == "many cats"
    assert out["after_delete"] == ["default", "e2e-cats"]
    assert out["deleted_app_found"] is False and "CONN_DOES_NOT_EXIST" in out["deleted_app_error"]
    # the native API sees the same apps
    r = httpx.get(f"{served.url}/v1/apps", headers={"Authorization": f"Bearer {served.api_key}"})
    assert sorted(a["name"] for a in r.json()["data"]) == ["default", "e2e-cats"]


def test_a_wrong_pat_and_another_users_app_are_refused(
    clarifai_python: str, served: ServerProcess
) -> None:
    headers = {"Authorization": f"Bearer {served.api_key}"}
    r = httpx.post(
        f"{served.url}/v1/users", json={"name": "bob", "app_name": "bobs"}, headers=headers
    )
    assert r.status_code == 201, r.text
    bob = r.json()
    admin_id = me(served)["user_id"]
    out = drive(clarifai_python, "refused", served, admin_id, bob["user_id"], "bobs")
    assert "CONN_KEY_INVALID" in out["wrong_pat"]
    assert "CONN_DOES_NOT_EXIST" in out["other_users_app"]
    assert out["own_apps"] == ["default"]
