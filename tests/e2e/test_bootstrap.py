"""A new data folder, first and second starts, and who may open a folder at the same time."""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import PG_URL, free_port, reset_postgres
from taskloom import Client, Conflict, Unauthorized

pytestmark = pytest.mark.e2e

BOOTSTRAP_KEY = f"tlk_e2e_bootstrap_{secrets.token_hex(8)}"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TASKLOOM_* setting of the caller's, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TASKLOOM_") or k == "TASKLOOM_GRPC_PORT"
    }
    env.update(extra)
    return env


class Proc:
    """A ``taskloom`` command in its own process, its output in a log file."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "taskloom.cli.main", *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def wait_for(self, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited early:\n{self.output()}")
            time.sleep(0.05)
        raise RuntimeError(f"process did not get ready:\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Serve(Proc):
    """``taskloom serve`` on a free port; on PostgreSQL when the test run uses it."""

    def __init__(self, data_dir: Path, *, workers: int = 0, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if PG_URL:
            env.setdefault("TASKLOOM_DATABASE_URL", PG_URL)
        self.env = clean_env(**env)
        args = ["serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        args += ["--workers", str(workers)]
        super().__init__(args, data_dir.parent / f"serve-{self.port}.log", self.env)
        self.wait_for(self.healthy)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False


def read_credentials(data_dir: Path) -> dict[str, str]:
    return json.loads((data_dir / "credentials.json").read_text())


# -- first and second start --------------------------------------------------------------------


def test_first_start_creates_admin_app_and_key_and_a_restart_keeps_them(tmp_path: Path) -> None:
    if PG_URL:
        reset_postgres(PG_URL)
    data = tmp_path / "data"
    assert not data.exists()

    first = Serve(data)
    try:
        creds_path = data / "credentials.json"
        creds = read_credentials(data)
        assert set(creds) == {"user_id", "app_id", "api_key", "ncp_access_key", "ncp_secret_key"}
        assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
        key = creds["api_key"]
        assert key.startswith("tlk_") and len(key) >= 30
        shown = first.output()
        assert "New data folder" in shown and key in shown

        with Client(url=first.url, api_key=key) as c:
            me = c.me()
            assert (me["user_id"], me["app_id"], me["is_admin"]) == (
                creds["user_id"],
                creds["app_id"],
                True,
            )
            assert [a["id"] for a in c.list_apps()] == [creds["app_id"]]
            (only_key,) = c.list_keys()
            assert key.startswith(only_key["prefix"]) and only_key["app_id"] is None
            c.create_dataset("survives-restart")
        with Client(url=first.url, api_key="tlk_not_a_key") as bad, pytest.raises(Unauthorized):
            bad.list_datasets()
        saved = creds_path.read_bytes()
        saved_mtime = creds_path.stat().st_mtime_ns
    finally:
        assert first.stop() == 0, first.output()

    second = Serve(data)
    try:
        shown = second.output()
        assert "New data folder" not in shown and key not in shown
        assert creds_path.read_bytes() == saved
        assert creds_path.stat().st_mtime_ns == saved_mtime
        with Client(url=second.url, api_key=key) as c:
            assert len(c.list_keys()) == 1
            assert c.me()["user_id"] == creds["user_id"]
            assert [d["name"] for d in c.list_datasets()] == ["survives-restart"]
    finally:
        assert second.stop() == 0, second.output()


# -- one server on a folder bootstrapped with a given key ---------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """No worker threads of its own: a job done here was done by a worker process."""
    if PG_URL:
        reset_postgres(PG_URL)
    s = Serve(
        tmp_path_factory.mktemp("bootstrap") / "data",
        TASKLOOM_BOOTSTRAP_API_KEY=BOOTSTRAP_KEY,
        TASKLOOM_POLL_INTERVAL="0.2",
    )
    yield s
    s.stop()


def test_bootstrap_api_key_becomes_the_admin_key(keyed_server: Serve) -> None:
    creds = read_credentials(keyed_server.data_dir)
    assert creds["api_key"] == BOOTSTRAP_KEY
    with Client(url=keyed_server.url, api_key=BOOTSTRAP_KEY) as c:
        assert c.me()["is_admin"] is True
        assert c.me()["app_id"] == creds["app_id"]
        assert len(c.list_keys()) == 1


def test_health_and_api_docs_respond(keyed_server: Serve) -> None:
    health = httpx.get(f"{keyed_server.url}/v1/health", timeout=10)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["database"] == ("postgresql" if PG_URL else "sqlite")

    docs = httpx.get(f"{keyed_server.url}/docs", timeout=10)
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "swagger" in docs.text.lower()

    spec = httpx.get(f"{keyed_server.url}/openapi.json", timeout=10).json()
    assert spec["info"]["title"] == "taskloom"
    assert {"/v1/health", "/v1/datasets", "/v1/jobs", "/v1/jobs/{job_id}/stream"} <= set(
        spec["paths"]
    )

    assert httpx.get(f"{keyed_server.url}/v1/datasets", timeout=10).status_code == 401


def test_embedded_client_refuses_a_folder_a_server_uses(keyed_server: Serve) -> None:
    with pytest.raises(Conflict) as refused:
        Client(path=keyed_server.data_dir)
    assert refused.value.code == "data_dir_in_use"
    assert "Client(url=" in refused.value.message
    assert keyed_server.healthy() and keyed_server.proc.poll() is None
    with Client(url=keyed_server.url, api_key=BOOTSTRAP_KEY) as c:
        assert c.list_datasets() == []


def test_a_worker_process_shares_the_folder_with_a_server(keyed_server: Serve) -> None:
    worker = Proc(
        ["worker", "--data-dir", str(keyed_server.data_dir)],
        keyed_server.data_dir.parent / "worker.log",
        keyed_server.env,
    )
    try:
        worker.wait_for(lambda: "taskloom worker:" in worker.output())
        with Client(url=keyed_server.url, api_key=BOOTSTRAP_KEY) as c:
            job = c.jobs.submit("noop").wait(timeout=30)
            assert job.status == "completed"
            (claim,) = [e for e in job.events() if e["status"] == "in_progress"]
            assert claim["data"]["worker"].split(":")[1] == str(worker.pid)
        assert keyed_server.healthy()
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(15) == 0, worker.output()
    finally:
        worker.stop()


# -- embedded clients hold their folder alone ---------------------------------------------------


@pytest.fixture
def sqlite_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded clients here use SQLite in their folder, whatever the environment says."""
    for name in list(os.environ):
        if name.startswith("TASKLOOM_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("sqlite_env")
def test_a_second_embedded_client_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    first = Client(path=folder, workers=0)
    try:
        first.create_dataset("mine")
        with pytest.raises(Conflict) as refused:
            Client(path=folder, workers=0)
        assert refused.value.code == "data_dir_in_use"
        assert first.dataset("mine").count() == 0  # the refusal did not disturb the first
    finally:
        first.close()

    with Client(path=folder, workers=0) as again:
        assert [d["name"] for d in again.list_datasets()] == ["mine"]


@pytest.mark.usefixtures("sqlite_env")
def test_serve_refuses_a_folder_an_embedded_client_holds(tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    with Client(path=folder, workers=0):
        serve = Proc(
            ["serve", "--port", str(free_port()), "--data-dir", str(folder)],
            tmp_path / "serve.log",
            clean_env(),
        )
        try:
            rc = serve.proc.wait(60)
        finally:
            serve.stop()
        assert rc != 0
        assert "in use" in serve.output()
