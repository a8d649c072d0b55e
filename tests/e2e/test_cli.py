"""The ``taskloom`` command, run as a real subprocess against a real server process.

Each call is ``python -m taskloom.cli.main ...`` with ``TASKLOOM_URL``/``TASKLOOM_API_KEY``
pointing at the ``server`` fixture; what the commands did is checked through the SDK.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from taskloom import Client, Unauthorized

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "taskloom.cli.main"]


def run_cli(
    *args: str,
    server: Any = None,
    api_key: str | None = "",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI; ``api_key=""`` means the server's admin key, ``None`` no key at all."""
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TASKLOOM_") or k == "TASKLOOM_GRPC_PORT"
    }
    if server is not None:
        full["TASKLOOM_URL"] = server.url
        key = server.api_key if api_key == "" else api_key
        if key is not None:
            full["TASKLOOM_API_KEY"] = key
    full.update(env or {})
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )


def run_parallel(*calls: tuple[Any, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Independent CLI calls at the same time, each ``(args, kwargs)``; results in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(run_cli, *args, **kw) for args, kw in calls]
        return [f.result() for f in futures]


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(proc).stdout)


def user_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit code 1 and one clean red line on stderr: no traceback."""
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    # the error is the last line and only one line; an earlier line may say what was done
    assert lines and lines[-1].startswith("error: "), proc.stderr
    assert not any(line.startswith("error: ") for line in lines[:-1]), proc.stderr
    err = lines[-1]
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def sdk(server: Any) -> Any:
    with Client(url=server.url, api_key=server.api_key) as c:
        yield c


def by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d for d in docs}


def sample_docs(n: int) -> list[dict[str, Any]]:
    """Documents with every kind of value; vector entries are exact in float32."""
    docs = []
    for i in range(n):
        doc: dict[str, Any] = {
            "_id": f"doc-{i:04d}",
            "title": f"item number {i}",
            "n": i,
            "score": i / 8,
            "ok": i % 3 == 0,
            "kind": "a" if i % 2 else "b",
            "tags": ["x", f"t{i % 5}"],
            "meta": {"source": "gen", "rank": {"value": i * 2}},
            "emb_vector_": [i * 0.25, -0.5, 1.0 + i % 7],
        }
        if i % 10 == 0:
            del doc["meta"]  # documents need not have the same fields
        docs.append(doc)
    return docs


def write_jsonl(path: Path, docs: list[Any]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


# -- keys and connections --------------------------------------------------------------------


def test_keys_create_list_revoke(server: Any, sdk: Any) -> None:
    out = ok(run_cli("keys", "create", "--name", "ci-key", server=server)).stdout
    assert "shown only this once" in out
    secrets = [line.strip() for line in out.splitlines() if line.strip().startswith("tlk_")]
    assert len(secrets) == 1
    secret = secrets[0]
    with Client(url=server.url, api_key=secret) as c:
        key_id = c.me()["key_id"]  # the new key works

    keys = as_json(run_cli("keys", "list", "--json", server=server))
    mine = [k for k in keys if k["name"] == "ci-key"]
    assert len(mine) == 1 and mine[0]["id"] == key_id and not mine[0]["revoked"]
    assert mine[0]["prefix"] == secret[:12] and "api_key" not in mine[0]

    # a key limited to one app sees only that app's keys
    app_id = sdk.me()["app_id"]
    limited = as_json(
        run_cli("keys", "create", "--name", "app-key", "--app-id", app_id, "--json", server=server)
    )
    assert limited["app_id"] == app_id and limited["api_key"].startswith("tlk_")
    seen = as_json(run_cli("keys", "list", "--json", server=server, api_key=limited["api_key"]))
    assert [k["name"] for k in seen] == ["app-key"]

    out = ok(run_cli("keys", "revoke", key_id, server=server)).stdout
    assert "Revoked" in out and key_id in out

    # the revoked key now answers 401, to the SDK, to plain HTTP and to the CLI
    with Client(url=server.url, api_key=secret) as c, pytest.raises(Unauthorized) as exc:
        c.list_datasets()
    assert exc.value.status_code == 401
    resp = httpx.get(f"{server.url}/v1/datasets", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 401
    table, refused, unknown = run_parallel(
        (("keys", "list"), {"server": server}),
        (("datasets", "list"), {"server": server, "api_key": secret}),
        (("keys", "revoke", "no-such-key"), {"server": server}),
    )
    row = next(line for line in ok(table).stdout.splitlines() if key_id in line)
    assert "ci-key" in row and "revoked" in row
    user_error(refused, "invalid or revoked API key")
    user_error(unknown, "key not found")
    assert [k["name"] for k in sdk.list_keys() if not k["revoked"]] == ["bootstrap", "app-key"]


def test_api_key_sources_and_user_errors(server: Any, sdk: Any, tmp_path: Path) -> None:
    # the server wrote credentials.json into its data folder: --data-dir finds the key there
    assert (server.data_dir / "credentials.json").exists()
    no_key = {"server": server, "api_key": None, "cwd": tmp_path}
    ok(run_cli("datasets", "create", "from-creds", "--data-dir", str(server.data_dir), **no_key))
    base = ("datasets", "list", "--json", "--url", server.url)
    env_dir = {"TASKLOOM_DATA_DIR": str(server.data_dir)}
    target = tmp_path / "nope.jsonl"
    (
        missing,
        from_env_dir,
        from_option,
        wrong,
        export_unknown,
        import_unknown,
        job_unknown,
        bad_params,
        bad_kind,
    ) = run_parallel(
        (("datasets", "list"), no_key),
        (("datasets", "list", "--json"), {**no_key, "env": env_dir}),
        ((*base, "--api-key", server.api_key), {"cwd": tmp_path}),
        # an explicit key wins over the file
        ((*base, "--api-key", "tlk_wrong", "--data-dir", str(server.data_dir)), {}),
        (("datasets", "export", "nope", str(target)), {"server": server}),
        (
            ("datasets", "import", "nope", str(write_jsonl(tmp_path / "a.jsonl", [{}]))),
            {"server": server},
        ),
        (("jobs", "show", "no-such-job"), {"server": server}),
        (("jobs", "submit", "sleep", "--params", '{"seconds": -1}'), {"server": server}),
        (("jobs", "submit", "no-such-kind"), {"server": server}),
    )
    # no key anywhere: a message that says where a key can come from
    err = user_error(missing, "API key is required")
    assert "--api-key" in err and "TASKLOOM_API_KEY" in err and "--data-dir" in err
    assert [d["name"] for d in as_json(from_env_dir)] == ["from-creds"]
    assert [d["name"] for d in as_json(from_option)] == ["from-creds"]
    user_error(wrong, "invalid or revoked API key")

    user_error(export_unknown, "dataset 'nope' not found")
    assert not target.exists() and not list(tmp_path.glob(".nope.jsonl.*"))
    user_error(import_unknown, "dataset 'nope' not found")
    user_error(job_unknown, "job 'no-such-job' not found")
    user_error(bad_params, "seconds")
    user_error(bad_kind, "no-such-kind")
    assert [d["name"] for d in sdk.list_datasets()] == ["from-creds"]
    assert sdk.jobs.list() == []


def test_errors_found_without_a_server(tmp_path: Path) -> None:
    # a pyarrow that cannot be imported, as when the [parquet] extra is not installed
    fake = tmp_path / "site" / "pyarrow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    parquet = tmp_path / "x.parquet"
    parquet.write_bytes(b"PAR1")
    text = tmp_path / "x.txt"
    text.write_text("{}\n")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {"PYTHONPATH": str(tmp_path / "site"), "TASKLOOM_URL": down, "TASKLOOM_API_KEY": "k"}
    no_pyarrow, unknown_ext, unreachable, bad_filter, bad_params = run_parallel(
        (("datasets", "import", "x", str(parquet)), {"env": env}),
        (("datasets", "import", "x", str(text)), {"env": env}),
        (("datasets", "list", "--url", down, "--api-key", "tlk_x"), {}),
        (("datasets", "export", "x", "-", "--filter", "{nope"), {"env": env}),
        (("jobs", "submit", "sleep", "--params", "[1, 2"), {"env": env}),
    )
    user_error(no_pyarrow, "pyarrow", "pip install 'taskloom[parquet]'")
    user_error(unknown_ext, "--format")
    user_error(unreachable, "cannot reach taskloom", down, "taskloom serve")
    # malformed option values are usage errors (exit code 2), also without a traceback
    for proc, option in ((bad_filter, "--filter"), (bad_params, "--params")):
        assert proc.returncode == 2 and option in proc.stderr and "not valid JSON" in proc.stderr
        assert "Traceback" not in proc.stderr


# -- datasets --------------------------------------------------------------------------------


def test_datasets_create_list_and_import_jsonl(server: Any, sdk: Any, tmp_path: Path) -> None:
    ok(run_cli("datasets", "create", "items", server=server))
    listed, again = run_parallel(
        (("datasets", "list", "--json"), {"server": server}),
        (("datasets", "create", "items"), {"server": server}),
    )
    assert [(d["name"], d["document_count"]) for d in as_json(listed)] == [("items", 0)]
    user_error(again, "dataset 'items' exists")

    docs = sample_docs(250)
    src = write_jsonl(tmp_path / "items.jsonl", docs)
    proc = ok(
        run_cli("datasets", "import", "items", str(src), "--batch-size", "100", server=server)
    )
    assert "Imported 250 documents" in proc.stdout

    ds = sdk.dataset("items")
    assert ds.count() == 250
    stored = by_id(list(ds.iter()))
    for d in docs:
        got = stored[d["_id"]]
        vec = got.pop("emb_vector_")
        assert got == {k: v for k, v in d.items() if k != "emb_vector_"}
        assert np.array_equal(np.asarray(vec, dtype=np.float32), np.float32(d["emb_vector_"]))
    assert ds.schema()["emb_vector_"] == {"type": "vector", "dim": 3}

    # --no-overwrite: an existing _id is invalid; the default replaces the document
    write_jsonl(src, [{"_id": "doc-0001", "title": "changed"}])
    keep, table = run_parallel(
        (("datasets", "import", "items", str(src), "--no-overwrite"), {"server": server}),
        (("datasets", "list"), {"server": server}),
    )
    user_error(keep, "line 1", "exists")
    row = next(line for line in ok(table).stdout.splitlines() if "items" in line)
    assert "250" in row and "emb_vector_" in row
    assert ds.get("doc-0001")["title"] == "item number 1"
    ok(run_cli("datasets", "import", "items", str(src), server=server))
    assert ds.get("doc-0001") == {"_id": "doc-0001", "title": "changed"}
    assert ds.count() == 250

    # invalid lines and documents
    lines = [
        json.dumps({"_id": "a", "emb_vector_": [1.0, 2.0]}),
        json.dumps({"_id": "b", "emb_vector_": [1.0, 2.0, 3.0]}),  # wrong dimension
        "{not json",
        json.dumps(["not", "an", "object"]),
        json.dumps({"_id": "c", "emb_vector_": [3.0, 4.0]}),
    ]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(lines) + "\n")
    stopped = run_cli("datasets", "import", "mixed", str(mixed), "--create", server=server)
    # without --skip-invalid the import stops at the first unreadable line
    user_error(stopped, "line 3", "not valid JSON", "--skip-invalid")
    assert sdk.dataset("mixed").count() == 0

    res = as_json(
        run_cli(
            "datasets", "import", "mixed", str(mixed), "--skip-invalid", "--json", server=server
        )
    )
    assert res["inserted"] == 2
    failed = {f["where"]: f for f in res["failed"]}
    assert set(failed) == {"line 2", "line 3", "line 4"}
    assert failed["line 2"]["_id"] == "b" and failed["line 2"]["code"] == "dimension_mismatch"
    assert sorted(d["_id"] for d in sdk.dataset("mixed").iter()) == ["a", "c"]

    write_jsonl(mixed, [{"_id": "d", "emb_vector_": [1.0, 2.0]}, {"_id": "e", "emb_vector_": "x"}])
    report, refused = run_parallel(
        # the human report lists the failures on stderr, and exits 0
        (("datasets", "import", "mixed", str(mixed), "--skip-invalid"), {"server": server}),
        (("datasets", "import", "mixed-2", str(mixed), "--create"), {"server": server}),
    )
    assert "Imported 1 document " in ok(report).stdout
    assert "1 document could not be imported" in report.stderr and "line 2" in report.stderr
    # an invalid document names its line and field; its batch is written whole or not at all
    user_error(refused, "line 2", "emb_vector_")
    assert sdk.dataset("mixed-2").count() == 0


def test_import_csv_and_parquet(server: Any, sdk: Any, tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["_id", "name", "age", "height", "active", "zip", "city.name", "tags", "emb_vector_"]
        )
        w.writerow(["1", "Ann", "42", "1.75", "true", "007", "Oslo", '["a", "b"]', "[0.5, 1.5]"])
        w.writerow(["2", "Bob, Jr.", "-3", "", "FALSE", "12345", "Rome", "[]", "[2, 3]"])
        w.writerow(["3", 'Quote "Q"', "1e3", "2.", "yes", "", "", "plain", ""])

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "_id": ["p1", "p2", "p3"],
            "label": ["cat", "dog", None],
            "weight": [1.5, 2.25, 3.0],
            "count": pa.array([1, 2, 3], type=pa.int32()),
            "info": [{"a": 1, "b": "x"}, {"a": 2, "b": None}, None],
            "emb_vector_": pa.array(
                [[0.25, 0.5, 0.75, 1.0], [1.0, 2.0, 3.0, 4.0], [-1.0, 0.0, 1.0, 2.0]],
                type=pa.list_(pa.float32()),
            ),
        }
    )
    parquet = tmp_path / "animals.parquet"
    pq.write_table(table, parquet)

    inferred, as_text, animals = run_parallel(
        (("datasets", "import", "people", str(src), "--create"), {"server": server}),
        (
            ("datasets", "import", "people-text", str(src), "--create", "--no-infer-types"),
            {"server": server},
        ),
        (("datasets", "import", "animals", str(parquet), "--create", "--json"), {"server": server}),
    )
    assert "Imported 3 documents" in ok(inferred).stdout
    docs = by_id(list(sdk.dataset("people").iter()))
    assert docs["1"] == {
        "_id": "1",
        "name": "Ann",
        "age": 42,
        "height": 1.75,
        "active": True,
        "zip": "007",
        "city": {"name": "Oslo"},
        "tags": ["a", "b"],
        "emb_vector_": [0.5, 1.5],
    }
    assert isinstance(docs["1"]["age"], int)
    # empty cells are left out; an empty vector cell means no vector
    assert docs["2"] == {
        "_id": "2",
        "name": "Bob, Jr.",
        "age": -3,
        "active": False,
        "zip": 12345,
        "city": {"name": "Rome"},
        "tags": [],
        "emb_vector_": [2.0, 3.0],
    }
    assert docs["3"] == {
        "_id": "3",
        "name": 'Quote "Q"',
        "age": 1000.0,
        "height": 2.0,
        "active": "yes",
        "tags": "plain",
    }

    ok(as_text)
    raw = by_id(list(sdk.dataset("people-text").iter()))
    assert raw["1"]["age"] == "42" and raw["1"]["active"] == "true"
    assert raw["1"]["tags"] == '["a", "b"]' and raw["2"]["height"] == ""
    assert raw["1"]["emb_vector_"] == [0.5, 1.5]  # vector columns are always parsed

    assert json.loads(ok(animals).stdout) == {"inserted": 3, "failed": []}
    docs = by_id(list(sdk.dataset("animals").iter()))
    assert docs["p1"] == {
        "_id": "p1",
        "label": "cat",
        "weight": 1.5,
        "count": 1,
        "info": {"a": 1, "b": "x"},
        "emb_vector_": [0.25, 0.5, 0.75, 1.0],
    }
    assert docs["p2"]["info"] == {"a": 2}  # null cells are left out
    assert "label" not in docs["p3"] and "info" not in docs["p3"]
    assert docs["p3"]["emb_vector_"] == [-1.0, 0.0, 1.0, 2.0]
    assert sdk.dataset("animals").schema()["emb_vector_"] == {"type": "vector", "dim": 4}


def test_export_and_import_round_trip(server: Any, sdk: Any, tmp_path: Path) -> None:
    docs = sample_docs(120)
    src = write_jsonl(tmp_path / "src.jsonl", docs)
    ok(run_cli("datasets", "import", "orig", str(src), "--create", server=server))

    out = tmp_path / "out.jsonl"
    jsonl, subset, selected, to_csv, to_parquet = run_parallel(
        (("datasets", "export", "orig", str(out), "--page-size", "50"), {"server": server}),
        (
            ("datasets", "export", "orig", "-", "--filter", '{"kind": "a"}', "--no-vectors"),
            {"server": server},
        ),
        (("datasets", "export", "orig", "-", "--select", "n,meta.source"), {"server": server}),
        (("datasets", "export", "orig", str(tmp_path / "out.csv")), {"server": server}),
        (("datasets", "export", "orig", str(tmp_path / "out.parquet")), {"server": server}),
    )
    # JSON Lines keeps everything exactly
    assert "Exported 120 documents" in ok(jsonl).stdout
    assert [json.loads(line) for line in out.read_text().splitlines()] == docs

    # a filter, no vectors, to standard output (the summary goes to stderr)
    got = [json.loads(line) for line in ok(subset).stdout.splitlines()]
    want = [{k: v for k, v in d.items() if k != "emb_vector_"} for d in docs if d["kind"] == "a"]
    assert got == want and len(got) == 60
    assert "Exported 60 documents" in subset.stderr

    # --select keeps _id and the fields asked for
    got = [json.loads(line) for line in ok(selected).stdout.splitlines()]
    assert got[1] == {"_id": "doc-0001", "n": 1, "meta": {"source": "gen"}}
    assert got[0] == {"_id": "doc-0000", "n": 0}

    # CSV and Parquet read back into what was exported
    ok(to_csv)
    ok(to_parquet)
    header = (tmp_path / "out.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "_id" and "meta.rank.value" in header and "emb_vector_" in header
    back = run_parallel(
        *(
            (
                ("datasets", "import", f"copy-{ext}", str(tmp_path / f"out.{ext}"), "--create"),
                {"server": server},
            )
            for ext in ("csv", "parquet")
        )
    )
    original = by_id(list(sdk.dataset("orig").iter()))
    for ext, proc in zip(("csv", "parquet"), back, strict=True):
        assert "Imported 120 documents" in ok(proc).stdout
        assert by_id(list(sdk.dataset(f"copy-{ext}").iter())) == original, ext


# -- jobs ------------------------------------------------------------------------------------


def _wait_status(sdk: Any, job_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sdk.jobs.get(job_id).status != status:
        assert time.monotonic() < deadline, f"job {job_id} never became {status}"
        time.sleep(0.05)


def test_jobs_submit_list_show_watch_cancel(server: Any, sdk: Any) -> None:
    noop_run, sleeper_run = run_parallel(
        (("jobs", "submit", "noop", "--wait"), {"server": server}),
        (
            ("jobs", "submit", "sleep", "--params", '{"seconds": 0.6, "steps": 3}', "--json"),
            {"server": server},
        ),
    )
    assert "completed" in ok(noop_run).stdout
    noop = sdk.jobs.list(kind="noop")[0]
    assert noop.status == "completed" and noop.result == {"ok": True}
    sleeper = as_json(sleeper_run)
    assert sleeper["kind"] == "sleep" and sleeper["params"]["seconds"] == 0.6

    proc = ok(run_cli("jobs", "watch", sleeper["id"], server=server))
    assert "100%" in proc.stdout and "completed" in proc.stdout
    shown, table, kinds = run_parallel(
        (("jobs", "show", sleeper["id"], "--json"), {"server": server}),
        (("jobs", "show", sleeper["id"], "--events"), {"server": server}),
        (("jobs", "kinds", "--json"), {"server": server}),
    )
    shown = as_json(shown)
    assert shown["status"] == "completed" and shown["result"] == {"slept": 0.6}
    assert shown["progress"] == 100
    table = ok(table).stdout
    assert sleeper["id"] in table and "completed" in table and "slept 0.40s" in table
    assert {"noop", "sleep"} <= {k["name"] for k in as_json(kinds)}

    # a long job on a dataset: listed as active, cancelled while it runs
    sdk.create_dataset("docs")
    args = ("jobs", "submit", "sleep", "--dataset", "docs", "--params", '{"seconds": 60}', "--json")
    long = as_json(run_cli(*args, server=server))
    _wait_status(sdk, long["id"], "in_progress")
    active, on_docs, listing, timed_out = run_parallel(
        (("jobs", "list", "--active-only", "--json"), {"server": server}),
        (("jobs", "list", "--dataset", "docs", "--json"), {"server": server}),
        (("jobs", "list"), {"server": server}),
        (("jobs", "watch", long["id"], "--timeout", "0.5"), {"server": server}),
    )
    assert [j["id"] for j in as_json(active)] == [long["id"]]
    assert [j["id"] for j in as_json(on_docs)] == [long["id"]]
    row = next(line for line in ok(listing).stdout.splitlines() if long["id"] in line)
    assert "in_progress" in row and "docs" in row and "sleep" in row
    assert "3 jobs" in listing.stdout
    assert timed_out.returncode == 124 and "still in_progress" in timed_out.stderr

    proc = ok(run_cli("jobs", "cancel", long["id"], server=server))
    assert long["id"] in proc.stdout
    # watch exits non-zero when the job was cancelled
    watched = run_cli("jobs", "watch", long["id"], server=server)
    assert watched.returncode == 3, watched.stderr
    assert "cancelled" in watched.stderr and "Traceback" not in watched.stderr
    assert sdk.jobs.get(long["id"]).status == "cancelled"

    # a registered job is cancelled at once; cancelling it again is a user error
    held = sdk.jobs.submit("sleep", params={"seconds": 60}, queue=False)
    assert "cancelled" in ok(run_cli("jobs", "cancel", held.id, server=server)).stdout
    stopped, newest, again, waited = run_parallel(
        (
            ("jobs", "list", "--status", "cancelled", "--status", "failed", "--json"),
            {"server": server},
        ),
        (("jobs", "list", "--limit", "1", "--json"), {"server": server}),
        (("jobs", "cancel", held.id), {"server": server}),
        (("jobs", "submit", "noop", "--wait", "--json"), {"server": server}),
    )
    assert [j["id"] for j in as_json(stopped)] == [held.id, long["id"]]  # newest first
    assert len(as_json(newest)) == 1
    user_error(again, "already cancelled")
    assert as_json(waited)["status"] == "completed"
    assert sdk.jobs.get(held.id).status == "cancelled"
