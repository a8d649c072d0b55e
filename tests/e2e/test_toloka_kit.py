"""End to end: the official Toloka client, toloka-kit 1.2.3, against a real ``taskloom serve``.

toloka-kit needs httpx<0.28 and cattrs<26, so it lives in its own environment,
``.venv-toloka`` (made by ``scripts/toloka-env.sh`` when missing; that takes a minute the first
time). The requester's side runs there (``toloka_driver.py``, in phases); the workers label
from this side through taskloom's native worker API (``/v1/crowd/workers/...``).
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
DRIVER = Path(__file__).with_name("toloka_driver.py")
TRUTH = {"0": "cat", "1": "dog"}  # label by the parity of the item number in the image URL


@pytest.fixture(scope="module")
def toloka_python() -> str:
    """The python of .venv-toloka, built by scripts/toloka-env.sh when missing."""
    script = ROOT / "scripts" / "toloka-env.sh"
    proc = subprocess.run([str(script)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(
            "could not build .venv-toloka (toloka-kit 1.2.3) with scripts/toloka-env.sh; "
            f"it needs python3.11 (or python3) and a package index:\n{proc.stderr[-4000:]}"
        )
    return proc.stdout.strip().splitlines()[-1]


def drive(python: str, phase: str, server: ServerProcess, state: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [python, str(DRIVER), phase, server.url, server.api_key, str(state)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"toloka-kit phase {phase!r} failed:\n{proc.stderr[-6000:]}\n--- server log ---\n"
        f"{server.output()[-4000:]}"
    )
    return json.loads(state.read_text())


def start(tmp_path: Path, name: str, env: dict[str, str] | None = None) -> ServerProcess:
    if PG_URL:
        reset_postgres(PG_URL)
    data = tmp_path / name
    data.mkdir()
    return ServerProcess(data / "data", env={"TASKLOOM_LEASE_SECONDS": "5", **(env or {})})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    s = start(tmp_path, "main")
    yield s
    s.stop()


def label_of(task: dict[str, Any]) -> str:
    n = int(task["input_values"]["image"].rsplit("/", 1)[1].split(".")[0])
    return TRUTH[str(n % 2)]


def work(http: httpx.Client, pool_id: str, worker_id: str, answer: Any) -> list[str]:
    """One worker takes assignments until none is left, answering with ``answer(task)``."""
    done = []
    while True:
        r = http.post(f"/v1/crowd/workers/{worker_id}/assignments", json={"pool_id": pool_id})
        if r.status_code == 204:
            return done
        assert r.status_code == 201, r.text
        a = r.json()
        solutions = [{"output_values": {"label": answer(t)}} for t in a["tasks"]]
        s = http.post(
            f"/v1/crowd/workers/{worker_id}/assignments/{a['id']}/submit",
            json={"solutions": solutions},
        )
        assert s.status_code == 200, s.text
        done.append(a["id"])


def test_toloka_kit_labelling_flow(toloka_python: str, server: ServerProcess, tmp_path: Path):
    state = tmp_path / "state.json"
    out = drive(toloka_python, "setup", server, state)

    # sync batch: the invalid item is reported by index and field, with Toloka's codes
    assert out["sync_errors"]["input_values.note"]["code"] == "STRING_EXPECTED"
    assert out["sync_errors"]["input_values.image"]["code"] == "VALUE_REQUIRED"
    assert out["refused"]["status"] == 400 and out["refused"]["code"] == "VALIDATION_ERROR"
    assert out["refused"]["payload"]["1"]["input_values.image"]["code"] == "INVALID_URL_SYNTAX"
    # async batch: a TASK.BATCH_CREATE operation, its log echoes each item
    op = out["async_op"]
    assert op["type"] == "TASK.BATCH_CREATE" and op["status"] == "SUCCESS"
    assert op["details"]["total_count"] == 3 and op["details"]["success_count"] == 3
    assert [e["input"]["__item_idx"] for e in out["async_log"]] == ["0", "1", "2"]
    assert all(e["success"] and e["input"]["pool_id"] == out["pool_id"] for e in out["async_log"])
    # the same operation_id: the first operation, no new tasks
    idem = out["idempotent"]
    assert idem["again_id"] == idem["first_id"]
    assert idem["tasks_after"] == idem["tasks_before"]
    # the default path reports the invalid item of an async batch
    assert out["default_errors"]["1"]["input_values.image"] == "VALUE_REQUIRED"
    # every created task is listed exactly once when paging by has_more
    assert sorted(out["paged"]) == sorted(out["created"]) and len(out["created"]) == 9
    assert out["newest_two"][0] == out["created"][-1] and out["newest_has_more"] is True
    assert out["patched_overlap"] == 2
    assert out["pool_status"] == "OPEN"
    assert out["not_found"] == {"status": 404, "code": "DOES_NOT_EXIST"}
    assert out["bad_token"] == {"status": 401, "code": "AUTHENTICATION_ERROR"}

    # workers label through taskloom's own worker API
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60
    )
    workers = []
    for name in ("ann", "bob", "cid"):
        r = http.post("/v1/crowd/workers", json={"external_id": name, "name": name})
        assert r.status_code == 201, r.text
        workers.append(r.json()["id"])
    good_a, good_b, noisy = workers
    n_a = work(http, out["pool_id"], good_a, label_of)
    n_b = work(http, out["pool_id"], good_b, label_of)
    n_c = work(http, out["pool_id"], noisy, lambda t: "dog")
    # one task a suite; the first task's overlap went down to 2, so the third worker misses it
    assert len(n_a) == len(n_b) == 9 and len(n_c) == 8

    state_data = json.loads(state.read_text())
    weighted_task = state_data["created"][2]  # item 2: "cat"
    state_data.update(
        reject_user=noisy,
        skills={good_a: 90.0, good_b: 80.0, noisy: 10.0},
        weighted_task=weighted_task,
    )
    state.write_text(json.dumps(state_data))
    out = drive(toloka_python, "review", server, state)

    submitted = out["submitted"]
    assert len(submitted) == 26 and {s["user_id"] for s in submitted} == set(workers)
    assert len(out["rejected"]) == 1 and len(out["accepted"]) == 25
    assert out["rejected_back"] == out["rejected"]
    # the native API sees the review done through the Toloka door
    r = http.get(f"/v1/crowd/assignments/{out['rejected'][0]}")
    assert r.status_code == 200 and r.json()["status"] == "REJECTED", r.text

    # Dawid-Skene: the two careful workers outvote the one who always says "dog"
    assert out["aggregation_op"]["status"] == "SUCCESS"
    assert out["aggregation_first_page"] == {"n": 2, "has_more": True}
    agg = out["aggregated"]
    assert sorted(agg) == sorted(out["created"])
    tasks = {t: http.get(f"/v1/crowd/tasks/{t}").json() for t in agg}
    for task_id, got in agg.items():
        assert got["label"] == label_of(tasks[task_id]), (task_id, got)
        assert 0.5 < got["confidence"] <= 1.0
    assert out["weighted"]["label"] == label_of(tasks[weighted_task])
    assert out["project_status"] == "ARCHIVED"


def test_toloka_kit_rate_limit(toloka_python: str, tmp_path: Path):
    """Past the per-minute limit toloka-kit gets TOO_MANY_REQUESTS (429); nothing more is made."""
    limited = start(tmp_path, "limited", {"TASKLOOM_CROWD_TASKS_PER_MINUTE": "5"})
    try:
        state = tmp_path / "limit.json"
        state.write_text(json.dumps({"limit": 5}))
        out = drive(toloka_python, "rate_limit", limited, state)
    finally:
        limited.stop()
    assert out["first_batch"] == 5
    assert out["limited"]["status"] == 429 and out["limited"]["code"] == "TOO_MANY_REQUESTS"
    assert out["limited"]["payload"]["interval"] == "MIN"
    assert out["tasks_after"] == 5


def test_toloka_kit_suites_operations_and_skills(
    toloka_python: str, server: ServerProcess, tmp_path: Path
):
    """create_task_suites (its default, asynchronous path), create_task_suites_async,
    find_operations / get_operations, patch_task_suite, get_user_skills and delete_user_skill."""
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60
    )
    workers = []
    for name in ("ann", "bob", "cid"):
        r = http.post("/v1/crowd/workers", json={"name": name})
        assert r.status_code == 201, r.text
        workers.append(r.json()["id"])
    state = tmp_path / "suites.json"
    state.write_text(json.dumps({"workers": workers}))
    out = drive(toloka_python, "suites", server, state)

    # the default path: the invalid suite reported by index, the others found by index
    assert sorted(out["default_suites"]) == ["0", "2"]
    assert out["default_suite_overlap"] == 2  # the pool's default_overlap_for_new_task_suites
    assert out["default_suite_errors"]["1"] == {"tasks": "ARRAY_EXPECTED"}
    op = out["suite_op"]
    assert op["type"] == "TASK_SUITE.BATCH_CREATE" and op["status"] == "SUCCESS"
    assert op["class"] == "TaskSuiteCreateBatchOperation"
    assert op["details"]["success_count"] == 2
    assert op["log_outputs"] == [["task_suite_id"], ["task_suite_id"]]
    idem = out["suite_idempotent"]
    assert idem["same_id"] is True and idem["after"] == idem["before"] == 5

    ops = out["operations"]
    assert op["id"] in ops["suite_success"] and len(ops["suite_success"]) == 3
    assert ops["types"] == ["TaskSuiteCreateBatchOperation"]
    assert ops["paged"] == sorted(ops["paged"]) and len(ops["paged"]) == len(set(ops["paged"]))
    assert set(ops["suite_success"]) <= set(ops["paged"])
    assert ops["newest_has_more"] is True and ops["newest"][0] in ops["paged"]
    assert ops["pool_open"] == []

    patched = out["patched_suite"]
    assert patched["overlap"] == 4 and patched["issuing_order_override"] == 7.5
    assert patched["pool_status"] == "OPEN" and patched["task_overlap"] == 4
    assert patched["lowered"] == 1

    skills = out["user_skills"]
    assert skills["paged"] == sorted(skills["set"])
    assert skills["after_delete"] == sorted(skills["set"][1:])
    assert skills["deleted_again"] == "DOES_NOT_EXIST"
    # the native API agrees: the first worker lost the skill
    r = http.get("/v1/crowd/user-skills", params={"user_id": workers[0]})
    assert r.status_code == 200 and r.json()["data"] == [], r.text
