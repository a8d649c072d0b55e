"""The NCLUE front door against a real ``taskloom serve`` process, over HTTP, every request
signed the NCP way (``httpx`` + ``taskloom.sdk.ncp.NcpSigner``) with the pair the first start
wrote to credentials.json or one made by ``taskloom keys create --hmac``.

A task trains to completion with its statuses seen in order and metrics; a training fails
with its reason; deleting follows the seed's rule; every validation rule of the seed answers
400 in NCP's error body; bad signatures, unknown keys and stale timestamps answer 401.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

import taskloom
from conftest import PG_URL, ServerProcess, reset_postgres
from taskloom.sdk.ncp import NcpSigner

V1 = "/api/v1"
SEED_FIELDS = {
    "task_id",
    "task_name",
    "created_at",
    "train_feature_id",
    "train_feature_name",
    "train_bucket",
    "train_file_path",
    "test_feature_id",
    "test_feature_name",
    "test_bucket",
    "test_file_path",
}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d([+-]\d\d:\d\d)$")
ORDER = ["registered", "pending", "in_progress", "completed", "failed"]
FORBIDDEN = "&$@=;:+,?*\\{}^%`[]<>~#|\"'"
PATH_FIELDS = ("train_file_path", "test_file_path")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server for the module: its credentials, a bucket of files, a feature table."""
    if PG_URL:
        reset_postgres(PG_URL)
    server = ServerProcess(tmp_path_factory.mktemp("nclue") / "data", workers=2)
    try:
        creds = json.loads((server.data_dir / "credentials.json").read_text())
        c = taskloom.Client(url=server.url, api_key=server.api_key)
        rng = np.random.default_rng(7)
        n = 800
        x = rng.normal(size=(n, 3))
        label = (x[:, 0] + 0.7 * x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
        keys = [f"user-{i:04d}" for i in range(n)]
        features = "user,recency,visits,noise\n" + "".join(
            f"{k},{a:.5f},{b:.5f},{z:.5f}\n" for k, (a, b, z) in zip(keys, x, strict=True)
        )
        labels = "user\tinterest\n" + "".join(
            f"{k}\t{y}\n" for k, y in zip(keys, label, strict=True)
        )
        c.buckets.create("nclue-data")
        c.buckets.put("nclue-data", "features/users.csv", features.encode())
        c.buckets.put("nclue-data", "task_dataset/interest.tsv", labels.encode())
        c.buckets.put("nclue-data", "task_dataset/one_class.tsv", b"user\tinterest\nuser-0001\t1\n")
        table = c.features.create_from_file(
            "shopping-behaviour-2024", "nclue-data", "features/users.csv", "user"
        )
        nclue = httpx.Client(
            base_url=f"{server.url}/nclue",
            auth=NcpSigner(creds["ncp_access_key"], creds["ncp_secret_key"]),
            timeout=30,
        )
        yield {"server": server, "creds": creds, "client": c, "feature": table, "nclue": nclue}
        nclue.close()
        c.close()
    finally:
        server.stop()


def body(env: dict[str, Any], **over: Any) -> dict[str, Any]:
    out = {
        "name": "Prediction model for purchase interest",
        "train_feature_id": env["feature"]["id"],
        "train_bucket": "nclue-data",
        "train_file_path": "task_dataset/interest.tsv",
    }
    out.update(over)
    return {k: v for k, v in out.items() if v is not ...}


def ncp_error(resp: httpx.Response, status: int, error_code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    payload = resp.json()
    assert set(payload) == {"error"}, payload
    err = payload["error"]
    assert err["errorCode"] == error_code, err
    assert err["message"] and err["details"], err
    return err


def follow(nclue: httpx.Client, task_id: str, timeout: float = 120) -> tuple[list[str], dict]:
    """Poll the task; the distinct statuses seen, in order, and the last answer."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        resp = nclue.get(f"{V1}/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        task = resp.json()
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in ("completed", "failed"):
            return seen, task
        assert time.monotonic() < deadline, f"task still {task['status']}"
        time.sleep(0.02)


def assert_in_order(statuses: list[str], last: str) -> None:
    assert statuses[-1] == last, statuses
    positions = [ORDER.index(s) for s in statuses]
    assert positions == sorted(positions) and len(set(positions)) == len(positions), statuses


def test_a_task_trains_with_its_statuses_in_order(env: dict[str, Any]) -> None:
    nclue = env["nclue"]
    resp = nclue.post(f"{V1}/tasks", json=body(env))
    assert resp.status_code == 200, resp.text
    created = resp.json()
    assert set(created) == SEED_FIELDS
    assert created["task_name"] == "Prediction model for purchase interest"
    assert created["train_feature_id"] == env["feature"]["id"]
    assert created["train_feature_name"] == "shopping-behaviour-2024"
    assert created["train_bucket"] == "nclue-data"
    assert created["train_file_path"] == "task_dataset/interest.tsv"
    for name in ("test_feature_id", "test_feature_name", "test_bucket", "test_file_path"):
        assert created[name] is None
    assert ISO_WITH_OFFSET.match(created["created_at"]), created["created_at"]

    seen, task = follow(nclue, created["task_id"])
    assert_in_order(seen, "completed")
    assert {k: task[k] for k in SEED_FIELDS} == created
    metrics = task["metrics"]
    assert metrics["roc_auc"] > 0.8 and metrics["accuracy"] > metrics["baseline_accuracy"]
    assert task["error"] is None

    # the job's own history holds every status of the seed's lifecycle, in order
    c = env["client"]
    job_id = c.request("GET", f"/v1/task-models/{created['task_id']}")["job_id"]
    history = [e["status"] for e in c.jobs.get(job_id).events() if e.get("status")]
    steps = [s for s in ORDER if s in history]
    assert steps == ["registered", "pending", "in_progress", "completed"], history

    listed = nclue.get(f"{V1}/tasks").json()["tasks"]
    assert created["task_id"] in [t["task_id"] for t in listed]
    # a completed task cannot be deleted
    err = ncp_error(nclue.delete(f"{V1}/tasks/{created['task_id']}"), 409, "409")
    assert err["code"] == "task_not_deletable"


def test_a_task_with_a_test_set(env: dict[str, Any]) -> None:
    nclue = env["nclue"]
    fid = env["feature"]["id"]
    req = body(
        env,
        test_feature_id=fid,
        test_bucket="nclue-data",
        test_file_path="task_dataset/interest.tsv",
    )
    created = nclue.post(f"{V1}/tasks", json=req).json()
    assert created["test_feature_id"] == fid
    assert created["test_feature_name"] == "shopping-behaviour-2024"
    assert created["test_bucket"] == "nclue-data"
    seen, task = follow(nclue, created["task_id"])
    assert_in_order(seen, "completed")


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"train_file_path": "task_dataset/missing.tsv"}, "file_missing"),
        ({"train_file_path": "task_dataset/one_class.tsv"}, "single_class"),
    ],
)
def test_a_failing_training_says_why(env: dict[str, Any], over: dict[str, Any], code: str) -> None:
    nclue = env["nclue"]
    created = nclue.post(f"{V1}/tasks", json=body(env, **over)).json()
    seen, task = follow(nclue, created["task_id"])
    assert_in_order(seen, "failed")
    assert task["error"]["code"] == code and task["error"]["message"]
    assert task["metrics"] is None
    ncp_error(nclue.delete(f"{V1}/tasks/{created['task_id']}"), 409, "409")


def test_an_unknown_feature_table_is_404_at_once(env: dict[str, Any]) -> None:
    nclue = env["nclue"]
    err = ncp_error(
        nclue.post(f"{V1}/tasks", json=body(env, train_feature_id="no-such-feature")), 404, "300"
    )
    assert err["code"] == "feature_not_found" and err["field"] == "train_feature_id"


def test_a_registered_task_can_be_deleted(env: dict[str, Any]) -> None:
    """Deleting is allowed while registered (made here through the native API, which can
    leave the job unqueued), and the task is gone afterwards."""
    nclue, c = env["nclue"], env["client"]
    resp = c.request("POST", "/v1/task-models", json={**body(env), "queue": False})
    task_id = resp["id"]
    got = nclue.get(f"{V1}/tasks/{task_id}").json()
    assert got["status"] == "registered"
    resp = nclue.delete(f"{V1}/tasks/{task_id}")
    assert resp.status_code == 204, resp.text
    ncp_error(nclue.get(f"{V1}/tasks/{task_id}"), 404, "300")
    ncp_error(nclue.delete(f"{V1}/tasks/{task_id}"), 404, "300")


# -- validation: every rule of the seed --------------------------------------------------------


def refused(env: dict[str, Any], req: dict[str, Any], field: str) -> dict[str, Any]:
    err = ncp_error(env["nclue"].post(f"{V1}/tasks", json=req), 400, "100")
    assert err["field"] == field, err
    return err


def test_name_length(env: dict[str, Any]) -> None:
    err = refused(env, body(env, name="n" * 41), "name")
    assert err["code"] == "name_too_long"
    refused(env, body(env, name="가" * 41), "name")
    # 40 characters are fine (a missing file: the task fails fast, nothing trains)
    ok = env["nclue"].post(
        f"{V1}/tasks", json=body(env, name="n" * 40, train_file_path="task_dataset/none.tsv")
    )
    assert ok.status_code == 200 and ok.json()["task_name"] == "n" * 40
    follow(env["nclue"], ok.json()["task_id"])


@pytest.mark.parametrize("char", list(FORBIDDEN))
def test_each_forbidden_path_character(env: dict[str, Any], char: str) -> None:
    for name in PATH_FIELDS:
        path = f"task_dataset/pet{char}food.tsv"
        test = {"test_bucket": "nclue-data", "test_file_path": "task_dataset/interest.tsv"}
        req = body(env, **{**test, name: path})
        assert refused(env, req, name)["code"] == "invalid_file_path"


def test_control_and_high_byte_characters(env: dict[str, Any]) -> None:
    codes = [*range(0, 32), *range(128, 256)]
    for name in PATH_FIELDS:
        for code in codes:
            path = f"task_dataset/a{chr(code)}b.tsv"
            test = {"test_bucket": "nclue-data", "test_file_path": "task_dataset/interest.tsv"}
            req = body(env, **{**test, name: path})
            assert refused(env, req, name)["code"] == "invalid_file_path", code


@pytest.mark.parametrize("field", ["name", "train_feature_id", "train_bucket", "train_file_path"])
def test_missing_fields(env: dict[str, Any], field: str) -> None:
    err = refused(env, body(env, **{field: ...}), field)
    assert err["code"] == "required"
    refused(env, body(env, **{field: None}), field)
    refused(env, body(env, **{field: 17}), field)


def test_empty_body_and_not_json(env: dict[str, Any]) -> None:
    nclue = env["nclue"]
    err = ncp_error(nclue.post(f"{V1}/tasks", json={}), 400, "100")
    assert {e["field"] for e in err["errors"]} >= {
        "name",
        "train_feature_id",
        "train_bucket",
        "train_file_path",
    }
    ncp_error(
        nclue.post(f"{V1}/tasks", content=b"{", headers={"content-type": "application/json"}),
        400,
        "100",
    )


# -- signatures --------------------------------------------------------------------------------


def test_signatures_keys_and_clocks(env: dict[str, Any]) -> None:
    url, creds = env["server"].url, env["creds"]
    access, secret = creds["ncp_access_key"], creds["ncp_secret_key"]

    def client(a: str, s: str, clock: Callable[[], float] = time.time) -> httpx.Client:
        return httpx.Client(base_url=f"{url}/nclue", auth=NcpSigner(a, s, clock=clock))

    with client(access, secret + "x") as wrong:
        err = ncp_error(wrong.get(f"{V1}/tasks"), 401, "200")
        assert err["code"] == "ncp_invalid_signature"
    with client("TLNCPNOSUCHKEY000000", secret) as unknown:
        assert ncp_error(unknown.get(f"{V1}/tasks"), 401, "200")["code"] == (
            "ncp_unknown_access_key"
        )
    for offset in (-301.0, 301.0):
        with client(access, secret, clock=lambda o=offset: time.time() + o) as skewed:
            err = ncp_error(skewed.get(f"{V1}/features"), 401, "200")
            assert err["code"] == "ncp_stale_timestamp"
    with httpx.Client(base_url=f"{url}/nclue") as unsigned:
        ncp_error(unsigned.get(f"{V1}/tasks"), 401, "200")
    # the query string is part of what is signed, and sent as signed it passes
    with client(access, secret) as good:
        assert good.get(f"{V1}/tasks", params={"limit": 2}).status_code == 200
        features = good.get(f"{V1}/features").json()["features"]
        assert [f["feature_name"] for f in features] == ["shopping-behaviour-2024"]


def test_cli_keys_create_hmac_gives_a_working_pair(env: dict[str, Any]) -> None:
    server = env["server"]
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TASKLOOM_") or k == "TASKLOOM_GRPC_PORT"
    }
    full.update(TASKLOOM_URL=server.url, TASKLOOM_API_KEY=server.api_key)
    proc = subprocess.run(
        [sys.executable, "-m", "taskloom.cli.main", "keys", "create", "--hmac", "--json"],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)
    with httpx.Client(
        base_url=f"{server.url}/nclue",
        auth=NcpSigner(key["ncp_access_key"], key["ncp_secret_key"]),
    ) as nclue:
        assert nclue.get(f"{V1}/tasks").status_code == 200


def test_cli_signs_nclue_requests_with_the_data_folders_keys(env: dict[str, Any]) -> None:
    """``taskloom nclue`` reads the pair from credentials.json and signs each request."""
    server = env["server"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TASKLOOM_", "NCP_"))}

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "taskloom.cli.main", "nclue", *args, "--url", server.url],
            capture_output=True,
            text=True,
            env={**base, **extra},
            timeout=60,
        )

    made = cli("create-task", json.dumps(body(env)), "--data-dir", str(server.data_dir))
    assert made.returncode == 0, made.stderr
    task = json.loads(made.stdout)
    assert task["task_name"] == body(env)["name"] and task["test_bucket"] is None
    shown = cli("task", task["task_id"], "--data-dir", str(server.data_dir))
    assert shown.returncode == 0 and json.loads(shown.stdout)["task_id"] == task["task_id"]
    feats = cli("features", "--data-dir", str(server.data_dir))
    assert env["feature"]["id"] in feats.stdout
    # a wrong secret is refused by the server: the command fails and prints the NCP error
    bad = cli(
        "tasks", NCP_ACCESS_KEY=env["creds"]["ncp_access_key"], NCP_SECRET_KEY="not-the-secret"
    )
    assert bad.returncode == 1 and '"errorCode": "200"' in bad.stdout
    # no pair anywhere: a clear message
    none = cli("tasks", "--data-dir", str(server.data_dir / "nowhere"))
    assert none.returncode != 0 and "no NCP key pair" in (none.stderr + none.stdout)
