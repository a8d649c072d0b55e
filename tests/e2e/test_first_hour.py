"""A new user's first hour, end to end against a real ``taskloom serve`` process: a failed job
is an error, the SDK finds the key the CLI finds, ``serve`` on a busy port, a prompt SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from test_cli import run_cli

import taskloom
from conftest import ServerProcess
from taskloom import Client, Unauthorized
from taskloom.errors import TaskloomError

pytestmark = pytest.mark.e2e


def one_document_dataset(sdk: Client, name: str = "one") -> None:
    ds = sdk.create_dataset(name)
    ds.insert([{"_id": "a", "title": "alone", "emb_vector_": [0.1, 0.2, 0.3]}])


def test_wait_raises_job_failed_with_the_jobs_code_and_message(server: Any) -> None:
    with Client(url=server.url, api_key=server.api_key) as sdk:
        one_document_dataset(sdk)
        job = sdk.jobs.submit(
            "cluster", dataset="one", params={"vector_field": "emb_vector_", "n_clusters": 2}
        )
        with pytest.raises(taskloom.JobFailed) as caught:
            job.wait(timeout=60)
        err = caught.value
        assert isinstance(err, TaskloomError)
        assert err.code == "TOO_FEW_DOCUMENTS"
        assert err.job.id == job.id and err.job.status == "failed"
        assert "TOO_FEW_DOCUMENTS" in str(err) and job.id in str(err)
        assert err.reason == job.error["message"]

        # asked not to raise, wait returns the failed job
        again = sdk.jobs.get(job.id).wait(timeout=60, raise_on_failure=False)
        assert again.status == "failed" and again.error["code"] == "TOO_FEW_DOCUMENTS"
        # a completed job still just returns
        assert sdk.jobs.submit("noop").wait(timeout=60).status == "completed"


def test_cli_wait_on_a_failed_job_exits_non_zero_with_code_and_message(server: Any) -> None:
    with Client(url=server.url, api_key=server.api_key) as sdk:
        one_document_dataset(sdk)
    params = json.dumps({"vector_field": "emb_vector_", "n_clusters": 2})
    args = ("jobs", "submit", "cluster", "--dataset", "one", "--params", params, "--wait")
    proc = run_cli(*args, server=server)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "failed" in last and "TOO_FEW_DOCUMENTS" in last, last
    proc = run_cli(*args, "--json", server=server)
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["code"] == "TOO_FEW_DOCUMENTS"


# -- the API key: the SDK looks where the CLI looks ------------------------------------------


def test_client_finds_the_key_the_cli_finds_and_says_where_it_looked(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("TASKLOOM_API_KEY", "TASKLOOM_DATA_DIR", "TASKLOOM_URL"):
        monkeypatch.delenv(var, raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # nothing anywhere: the 401 names every place looked at
    with Client(url=server.url) as c, pytest.raises(Unauthorized) as caught:
        c.list_datasets()
    msg = str(caught.value)
    looked = str((elsewhere / "taskloom-data" / "credentials.json").absolute())
    assert "API key is required" in msg and "TASKLOOM_API_KEY" in msg and looked in msg, msg

    # ./taskloom-data/credentials.json, as `taskloom serve` writes it, like the CLI
    (elsewhere / "taskloom-data").mkdir()
    creds = elsewhere / "taskloom-data" / "credentials.json"
    creds.write_text(json.dumps({"api_key": server.api_key}))
    with Client(url=server.url) as c:
        c.create_dataset("found")
        assert c.api_key_source == str(creds.absolute())
    proc = run_cli("datasets", "list", "--json", "--url", server.url, cwd=elsewhere)
    assert [d["name"] for d in json.loads(proc.stdout)] == ["found"], proc.stderr

    # TASKLOOM_DATA_DIR points at the server's folder; TASKLOOM_API_KEY wins over any file
    creds.unlink()
    monkeypatch.setenv("TASKLOOM_DATA_DIR", str(server.data_dir))
    with Client(url=server.url) as c:
        assert [d["name"] for d in c.list_datasets()] == ["found"]
    monkeypatch.setenv("TASKLOOM_API_KEY", "tlk_wrong")
    with Client(url=server.url) as c, pytest.raises(Unauthorized) as caught:
        c.list_datasets()
    assert "key from TASKLOOM_API_KEY" in str(caught.value)
    # Client() with no argument at all: TASKLOOM_URL and the key from the environment
    monkeypatch.setenv("TASKLOOM_API_KEY", server.api_key)
    monkeypatch.setenv("TASKLOOM_URL", server.url)
    with Client() as c:
        assert [d["name"] for d in c.list_datasets()] == ["found"]


# -- taskloom serve ---------------------------------------------------------------------------


def test_serve_on_a_busy_port_says_what_to_do_and_writes_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        proc = run_cli("serve", "--port", str(port), "--data-dir", str(data), timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Errno" not in proc.stderr, proc.stderr
    assert f"127.0.0.1:{port} is already in use" in proc.stderr
    assert f"--port {port + 1}" in proc.stderr and "TASKLOOM_PORT" in proc.stderr
    assert "API key" not in proc.stderr  # no bootstrap happened
    assert not data.exists()


def test_serve_help_shows_defaults_and_variables_and_flags_take_no_value() -> None:
    env = {"COLUMNS": "200"}
    text = run_cli("serve", "--help", env=env).stdout
    for option, var, default in (
        ("--host", "TASKLOOM_HOST", "127.0.0.1"),
        ("--port", "TASKLOOM_PORT", "8000"),
        ("--data-dir", "TASKLOOM_DATA_DIR", "./taskloom-data"),
        ("--workers", "TASKLOOM_WORKERS", "2"),
    ):
        lines = text.splitlines()
        at = next(i for i, x in enumerate(lines) if f" {option} " in x)
        block = " ".join(lines[at : at + 3])  # the option's help, its variable, its default
        assert var in block and default in block, block
    submit = run_cli("jobs", "submit", "--help", env=env).stdout
    assert "<bool>" not in submit and "<bool>" not in text
    importing = run_cli("datasets", "import", "--help", env=env).stdout
    assert "taskloom[parquet]" not in importing and "pyarrow" in importing


def test_sigterm_stops_an_idle_server_promptly_and_cleanly(tmp_path: Path) -> None:
    serve = ServerProcess(tmp_path / "data", workers=2)
    try:
        with Client(url=serve.url, api_key=serve.api_key) as c:
            c.create_dataset("d").insert([{"_id": "a", "n": 1}])
            c.jobs.submit("noop").wait(timeout=30)
        time.sleep(1.0)  # idle: workers waiting for jobs, no request open
        started = time.monotonic()
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(30) == 0, serve.output()
        took = time.monotonic() - started
        output = serve.output()
    finally:
        serve.stop()
    # "within a second or two" (it took 3-6 s: the interpreter's last garbage collection
    # walked every object of the imported libraries)
    assert took < 2.0, f"SIGTERM to exit took {took:.2f}s"
    assert "Traceback" not in output


# -- CLI --------------------------------------------------------------------------------------


def test_cli_import_into_a_missing_dataset_suggests_create_and_tables_fit(
    server: Any, tmp_path: Path
) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"_id": "a", "title": "x"}\n')
    proc = run_cli("datasets", "import", "nope", str(docs), server=server)
    assert proc.returncode == 1 and "--create" in proc.stderr.strip().splitlines()[-1]
    assert (
        run_cli("datasets", "import", "nope", str(docs), "--create", server=server).returncode == 0
    )
    for _ in range(3):
        run_cli("jobs", "submit", "noop", "--wait", server=server)
    for args in (("jobs", "list"), ("datasets", "list")):
        out = run_cli(*args, server=server, env={"COLUMNS": "60"}).stdout
        assert out.strip() and max(len(line) for line in out.splitlines()) <= 60, out
