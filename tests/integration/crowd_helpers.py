"""What the crowd API tests share: a spec, a pool body, and small request helpers."""

from __future__ import annotations

from typing import Any

import httpx

from taskloom.jobs.worker import Worker

SPEC = {
    "input_spec": {
        "image": {"type": "url"},
        "n": {"type": "integer", "required": False, "min_value": 0},
    },
    "output_spec": {"label": {"type": "string", "allowed_values": ["cat", "dog"]}},
}
POOL = {
    "private_name": "batch 1",
    "reward_per_assignment": 0.05,
    "assignment_max_duration_seconds": 600,
    "will_expire": "2035-01-01T00:00:00Z",
    "defaults": {"default_overlap_for_new_tasks": 2, "default_overlap_for_new_task_suites": 2},
}
JSON = {"Content-Type": "application/json"}
REQUIRED = {"code": "VALUE_REQUIRED", "message": "Value must be present and not equal to null"}


def make_project(client: httpx.Client, name: str = "Cats") -> dict[str, Any]:
    r = client.post("/v1/crowd/projects", json={"public_name": name, "task_spec": SPEC})
    assert r.status_code == 201, r.text
    return r.json()


def make_pool(client: httpx.Client, project_id: str | None = None, **over: Any) -> dict[str, Any]:
    project_id = project_id or make_project(client)["id"]
    r = client.post("/v1/crowd/pools", json={"project_id": project_id, **POOL, **over})
    assert r.status_code == 201, r.text
    return r.json()


def task(pool_id: str, i: int = 0, **over: Any) -> dict[str, Any]:
    return {"pool_id": pool_id, "input_values": {"image": f"https://img.test/{i}.png"}, **over}


def tasks_in(client: httpx.Client, pool_id: str) -> list[dict[str, Any]]:
    r = client.get("/v1/crowd/tasks", params={"pool_id": pool_id, "limit": 1000})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def run_jobs(services: Any) -> None:
    worker = Worker(services.jobs, services=services)
    while worker.run_one():
        pass


def open_pool_with_tasks(http: httpx.Client, n: int, overlap: int, **pool_over: Any) -> dict:
    pool = make_pool(http, **pool_over)
    r = http.post("/v1/crowd/tasks", json=[task(pool["id"], i, overlap=overlap) for i in range(n)])
    assert r.status_code == 201, r.text
    assert http.post(f"/v1/crowd/pools/{pool['id']}/open").status_code == 200
    return pool


def register(http: httpx.Client, name: str) -> dict[str, Any]:
    r = http.post("/v1/crowd/workers", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def label_all(http: httpx.Client, worker_id: str, pool_id: str, answer: Any) -> list[dict]:
    """The worker labels until the pool has nothing left for them (204)."""
    done = []
    for _ in range(50):
        r = http.post(f"/v1/crowd/workers/{worker_id}/assignments", json={"pool_id": pool_id})
        if r.status_code == 204:
            assert r.content == b""
            return done
        assert r.status_code == 201, r.text
        a = r.json()
        solutions = [{"output_values": {"label": answer(t)}} for t in a["tasks"]]
        r = http.post(
            f"/v1/crowd/workers/{worker_id}/assignments/{a['id']}/submit",
            json={"solutions": solutions},
        )
        assert r.status_code == 200, r.text
        done.append(r.json())
    raise AssertionError("the pool never ran out")
