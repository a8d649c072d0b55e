"""``/openapi.json`` describes what the native API does: every operation has its success
answer's schema and its error statuses with the error envelope; and the answers of a real
walk through the API (datasets, documents, search, centroids, jobs, blobs, buckets, feature
tables, crowd) conform to the schemas they are documented with.

The dialect front doors (``/relevance``, ``/toloka``, ``/nclue``) answer in their own
shapes and the web pages in HTML; they are not part of this contract.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from .crowd_helpers import POOL, SPEC, run_jobs, task

NATIVE = "/v1/"
ENVELOPE = "#/components/schemas/ErrorEnvelope"
METHODS = {"get", "put", "post", "patch", "delete"}
# answers without a key
PUBLIC = {("get", "/v1/health")}


def native_operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in spec["paths"].items()
        if path.startswith(NATIVE)
        for method, op in ops.items()
        if method in METHODS
    ]


def test_every_native_operation_documents_its_answers(app: FastAPI) -> None:
    spec = app.openapi()
    ops = native_operations(spec)
    assert len(ops) > 100
    problems = []
    for method, path, op in ops:
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        ok = {s: r for s, r in responses.items() if s.startswith("2")}
        if not ok:
            problems.append(f"{where}: no 2xx answer")
        for status, resp in ok.items():
            if status == "204":
                if resp.get("content"):
                    problems.append(f"{where}: 204 with a body")
                continue
            content = resp.get("content") or {}
            schemas = [c.get("schema") for c in content.values()]
            if not schemas or not all(schemas):
                problems.append(f"{where}: {status} has no schema")
            elif "application/json" in content and content["application/json"]["schema"] in (
                {},
                {"type": "object"},
            ):
                problems.append(f"{where}: {status} says nothing of its body")
        errors = {s: r for s, r in responses.items() if s.startswith(("4", "5"))}
        for status in () if (method, path) in PUBLIC else ("401", "422"):
            if status not in errors:
                problems.append(f"{where}: {status} not documented")
        if "{" in path and "404" not in errors:
            problems.append(f"{where}: names an object but documents no 404")
        for status, resp in errors.items():
            schema = resp.get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": ENVELOPE}:
                problems.append(f"{where}: {status} is not the error envelope: {schema}")
    assert not problems, "\n".join(problems)
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert sorted(detail["required"]) == ["code", "details", "message"]


class Checked:
    """An HTTP client whose every answer is checked against the operation's schema."""

    def __init__(self, http: httpx.Client, app: FastAPI) -> None:
        self.http = http
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, method: str, path: str, status: int, **kw: Any) -> Any:
        resp = self.http.request(method, path, **kw)
        assert resp.status_code == status, f"{method} {path}: {resp.text}"
        op = self.schema.find_operation_by_path(method.lower(), path.split("?")[0])
        assert op is not None, f"{method} {path} is not documented"
        try:
            resp.elapsed  # noqa: B018 - the in-process transport does not time answers
        except RuntimeError:
            resp.elapsed = timedelta(0)
        op.validate_response(resp)
        self.seen.add((method.lower(), op.path))
        return resp.json() if resp.content and "json" in resp.headers["content-type"] else None


def test_real_answers_conform_to_their_schemas(http: httpx.Client, app: FastAPI, services) -> None:
    call = Checked(http, app)
    call("GET", "/v1/health", 200)
    call("GET", "/v1/me", 200)
    call("POST", "/v1/users", 201, json={"name": "bob"})
    call("GET", "/v1/apps", 200)
    call("POST", "/v1/apps", 201, json={"name": "second"})
    key = call("POST", "/v1/keys", 201, json={"name": "k", "hmac": True})
    call("GET", "/v1/keys", 200)
    call("DELETE", f"/v1/keys/{key['id']}", 200)
    # datasets and documents
    call("POST", "/v1/datasets", 201, json={"name": "ds"})
    call("GET", "/v1/datasets", 200)
    call("GET", "/v1/datasets/ds", 200)
    docs = [
        {"_id": "a", "x": 1, "tag": "u", "v_vector_": [1, 0, 0]},
        {"_id": "b", "x": 2, "tag": "v", "v_vector_": [0, 1, 0]},
        {"_id": "c", "x": 3, "tag": "u", "v_vector_": [0, 0, 1]},
        {"_id": "d", "v_vector_": [1, 2]},
    ]
    body = {"documents": docs, "skip_invalid": True}
    call("POST", "/v1/datasets/ds/documents", 200, json=body)
    body = {"documents": [{"_id": "a", "y": 3}, {"_id": "zz", "y": 1}], "skip_invalid": True}
    call("PATCH", "/v1/datasets/ds/documents", 200, json=body)
    call("GET", "/v1/datasets/ds/schema", 200)
    call("GET", "/v1/datasets/ds/documents?page_size=1", 200)
    call("POST", "/v1/datasets/ds/documents/query", 200, json={"page_size": 1, "select": ["x"]})
    call("POST", "/v1/datasets/ds/documents/get", 200, json={"ids": ["a", "nope"]})
    call("POST", "/v1/datasets/ds/documents/count", 200, json={"filter": {"x": {"$gt": 1}}})
    call("GET", "/v1/datasets/ds/documents/count", 200)
    call("GET", "/v1/datasets/ds/documents/a", 200)
    # search and indexes
    q = {"vector": [1, 0, 0], "vector_field": "v_vector_", "top_k": 2}
    call("POST", "/v1/datasets/ds/search", 200, json=q)
    call("POST", "/v1/datasets/ds/search", 200, json={**q, "top_k": 1, "select": ["x"]})
    call("POST", "/v1/datasets/ds/indexes", 200, json={"vector_field": "v_vector_", "wait": True})
    call("GET", "/v1/datasets/ds/indexes", 200)
    # jobs and centroids
    params = {"vector_field": "v_vector_", "n_clusters": 2, "random_state": 1}
    job = call("POST", "/v1/jobs", 201, json={"kind": "cluster", "dataset": "ds", "params": params})
    run_jobs(services)
    call("GET", "/v1/job-kinds", 200)
    call("GET", "/v1/jobs?limit=1", 200)
    call("GET", f"/v1/jobs/{job['id']}", 200)
    call("GET", f"/v1/jobs/{job['id']}/events", 200)
    again = {"kind": "noop", "queue": False, "idempotency_key": "once"}
    later = call("POST", "/v1/jobs", 201, json=again)
    call("POST", "/v1/jobs", 200, json=again)
    call("POST", f"/v1/jobs/{later['id']}/start", 200)
    call("POST", f"/v1/jobs/{later['id']}/cancel", 200)
    call("DELETE", f"/v1/jobs/{later['id']}", 200)
    failing = call(
        "POST",
        "/v1/jobs",
        201,
        json={
            "kind": "cluster",
            "dataset": "ds",
            "params": {"vector_field": "v_vector_", "n_clusters": 50},
        },
    )
    run_jobs(services)
    call("GET", f"/v1/jobs/{failing['id']}", 200)
    vf = "vector_field=v_vector_"
    base = "/v1/datasets/ds/centroids"
    call("GET", f"{base}?{vf}&include_vector=true&page_size=1", 200)
    call("GET", f"{base}/clusterings", 200)
    call("GET", f"{base}/info?{vf}", 200)
    call("GET", f"{base}/sizes?{vf}", 200)
    ref = {"vector_field": "v_vector_"}
    call("POST", f"{base}/get", 200, json={**ref, "cluster_ids": ["cluster-0"]})
    call("POST", f"{base}/documents", 200, json={**ref, "cluster_ids": ["cluster-0"]})
    call("POST", f"{base}/closest", 200, json=ref)
    call("POST", f"{base}/furthest", 200, json={**ref, "cluster_ids": ["cluster-1"]})
    call("GET", f"{base}/metadata?{vf}", 200)
    call("POST", f"{base}/metadata", 200, json={**ref, "metadata": {"a": 1}})
    mine = {"vector_field": "v_vector_", "alias": "mine", "cluster_centers": {"c1": [1, 0, 0]}}
    call("POST", f"{base}/insert", 201, json=mine)
    call("DELETE", f"{base}?{vf}&alias=mine", 200)
    call("DELETE", f"{base}?{vf}&clear_labels=true", 200)
    call("POST", "/v1/datasets/ds/documents/delete", 200, json={"ids": ["b"]})
    call("DELETE", "/v1/datasets/ds/documents/a", 200)
    # blobs, buckets, feature tables
    text = {"content-type": "text/plain"}
    call("PUT", "/v1/blobs/y.txt", 201, content=b"hello", headers=text)
    call("GET", "/v1/blobs?limit=1", 200)
    call("GET", "/v1/blobs/y.txt", 200)
    call("DELETE", "/v1/blobs/y.txt", 204)
    call("POST", "/v1/buckets", 201, json={"name": "bkt"})
    call("GET", "/v1/buckets", 200)
    call("GET", "/v1/buckets/bkt", 200)
    csv = b"k,a,b\nx,1,2\ny,3,\n"
    call(
        "PUT", "/v1/buckets/bkt/files/f.csv", 201, content=csv, headers={"content-type": "text/csv"}
    )
    call("GET", "/v1/buckets/bkt/files", 200)
    call("GET", "/v1/buckets/bkt/files/f.csv", 200)
    source = {"kind": "file", "bucket": "bkt", "path": "f.csv", "key_column": "k"}
    feature = call("POST", "/v1/features", 201, json={"name": "ft", "source": source})
    call("GET", "/v1/features", 200)
    call("GET", f"/v1/features/{feature['id']}", 200)
    call("POST", f"/v1/features/{feature['id']}/lookup", 200, json={"keys": ["x", "y", "z"]})
    source = {"kind": "dataset", "dataset": "ds", "fields": ["x"]}
    other = call("POST", "/v1/features", 201, json={"name": "ft2", "source": source})
    call("DELETE", f"/v1/features/{other['id']}", 204)
    call("GET", "/v1/models", 200)
    call("GET", "/v1/task-models", 200)
    call("DELETE", "/v1/buckets/bkt/files/f.csv", 204)
    call("DELETE", "/v1/datasets/ds", 200)
    _crowd(call, services)


def _crowd(call: Checked, services: Any) -> None:
    project = call(
        "POST", "/v1/crowd/projects", 201, json={"public_name": "Cats", "task_spec": SPEC}
    )
    pid = project["id"]
    call("GET", "/v1/crowd/projects", 200)
    call("GET", f"/v1/crowd/projects/{pid}", 200)
    call("PATCH", f"/v1/crowd/projects/{pid}", 200, json={"private_comment": "x"})
    pool = call("POST", "/v1/crowd/pools", 201, json={"project_id": pid, **POOL})
    pool_id = pool["id"]
    call("GET", "/v1/crowd/pools", 200)
    call("GET", f"/v1/crowd/pools/{pool_id}", 200)
    call("PATCH", f"/v1/crowd/pools/{pool_id}", 200, json={"private_comment": "y"})
    one = call("POST", "/v1/crowd/tasks?allow_defaults=true", 201, json=task(pool_id, 0))
    batch = [task(pool_id, 1), {"pool_id": pool_id, "input_values": {}}]
    call("POST", "/v1/crowd/tasks?skip_invalid_items=true&allow_defaults=true", 201, json=batch)
    op = call(
        "POST", "/v1/crowd/tasks?async_mode=true&allow_defaults=true", 202, json=[task(pool_id, 2)]
    )
    run_jobs(services)
    call("GET", f"/v1/crowd/operations/{op['id']}", 200)
    call("GET", f"/v1/crowd/operations/{op['id']}/log", 200)
    call("GET", f"/v1/crowd/tasks?pool_id={pool_id}", 200)
    call("GET", f"/v1/crowd/tasks/{one['id']}", 200)
    call("PATCH", f"/v1/crowd/tasks/{one['id']}", 200, json={"overlap": 3})
    call("PATCH", f"/v1/crowd/tasks/{one['id']}/set-overlap-or-min", 200, json={"overlap": 2})
    suite = {"pool_id": pool_id, "tasks": [{"input_values": {"image": "https://img.test/s.png"}}]}
    made = call("POST", "/v1/crowd/task-suites?allow_defaults=true", 201, json=suite)
    call("POST", "/v1/crowd/task-suites?allow_defaults=true", 201, json=[suite])
    call("GET", "/v1/crowd/task-suites", 200)
    call("GET", f"/v1/crowd/task-suites/{made['id']}", 200)
    call("PATCH", f"/v1/crowd/task-suites/{made['id']}", 200, json={"overlap": 2})
    call(
        "PATCH", f"/v1/crowd/task-suites/{made['id']}/set-overlap-or-min", 200, json={"overlap": 1}
    )
    call("POST", f"/v1/crowd/pools/{pool_id}/open", 200)
    skill = call("POST", "/v1/crowd/skills", 201, json={"name": "accuracy"})
    call("GET", "/v1/crowd/skills", 200)
    call("GET", f"/v1/crowd/skills/{skill['id']}", 200)
    worker = call("POST", "/v1/crowd/workers", 201, json={"name": "w1"})
    wid = worker["id"]
    us = {"skill_id": skill["id"], "user_id": wid, "value": 80}
    call("PUT", "/v1/crowd/user-skills", 200, json=us)
    call("GET", "/v1/crowd/user-skills", 200)
    given = call("POST", f"/v1/crowd/workers/{wid}/assignments", 201, json={"pool_id": pool_id})
    answers = [{"output_values": {"label": "cat"}} for _ in given["tasks"]]
    path = f"/v1/crowd/workers/{wid}/assignments/{given['id']}"
    call("POST", f"{path}/submit", 200, json={"solutions": answers})
    call("GET", "/v1/crowd/assignments", 200)
    call("GET", f"/v1/crowd/assignments/{given['id']}", 200)
    call("PATCH", f"/v1/crowd/assignments/{given['id']}", 200, json={"status": "ACCEPTED"})
    skipped = call("POST", f"/v1/crowd/workers/{wid}/assignments", 201, json={"pool_id": pool_id})
    call("POST", f"/v1/crowd/workers/{wid}/assignments/{skipped['id']}/skip", 200)
    token = {"Authorization": f"Worker {worker['token']}"}
    call("GET", "/v1/crowd/me", 200, headers=token)
    mine = call("POST", "/v1/crowd/me/assignments", 201, json={"pool_id": pool_id}, headers=token)
    call("POST", f"/v1/crowd/me/assignments/{mine['id']}/skip", 200, headers=token)
    agg = {"task_id": given["tasks"][0]["id"], "method": "majority_vote"}
    call("POST", "/v1/crowd/aggregations", 200, json=agg)
    job = call(
        "POST", "/v1/crowd/aggregations", 202, json={"pool_id": pool_id, "method": "majority_vote"}
    )
    run_jobs(services)
    call("GET", f"/v1/crowd/aggregations/{job['id']}/results", 200)
    call("DELETE", f"/v1/crowd/user-skills/{skill['id']}:{wid}", 204)
    call("POST", f"/v1/crowd/pools/{pool_id}/close", 200)
    call("POST", f"/v1/crowd/pools/{pool_id}/archive", 200)
    call("POST", f"/v1/crowd/projects/{pid}/archive", 200)


@pytest.mark.parametrize(
    ("method", "path", "kw", "status"),
    [
        ("GET", "/v1/datasets/nope", {}, 404),
        (
            "POST",
            "/v1/datasets",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            400,
        ),
        ("POST", "/v1/datasets", {"json": {"name": 3}}, 422),
        ("POST", "/v1/jobs/nope/cancel", {}, 404),
    ],
)
def test_error_answers_conform(http: httpx.Client, app: FastAPI, method, path, kw, status) -> None:
    Checked(http, app)(method, path, status, **kw)


def test_no_key_is_a_documented_401(make_http, app: FastAPI) -> None:
    Checked(make_http(None), app)("GET", "/v1/datasets", 401)


def test_task_model_answers_conform(http: httpx.Client, app: FastAPI, services) -> None:
    call = Checked(http, app)
    call("POST", "/v1/buckets", 201, json={"name": "training"})
    rows = ["k,a,b"] + [f"u{i},{i % 7},{(i * 3) % 5}" for i in range(300)]
    labels = ["k\tlabel"] + [f"u{i}\t{'yes' if i % 7 > 3 else 'no'}" for i in range(300)]
    csv = {"content-type": "text/csv"}
    call("PUT", "/v1/buckets/training/files/users.csv", 201, content="\n".join(rows), headers=csv)
    call("PUT", "/v1/buckets/training/files/labels.tsv", 201, content="\n".join(labels))
    source = {"kind": "file", "bucket": "training", "path": "users.csv", "key_column": "k"}
    feature = call("POST", "/v1/features", 201, json={"name": "users", "source": source})
    body = {
        "name": "interest",
        "train_feature_id": feature["id"],
        "train_bucket": "training",
        "train_file_path": "labels.tsv",
        "queue": False,
        "hyperparameters": {"max_iter": 20},
    }
    tm = call("POST", "/v1/task-models", 201, json=body)
    call("GET", f"/v1/task-models/{tm['id']}", 200)
    call("POST", f"/v1/task-models/{tm['id']}/start", 200)
    run_jobs(services)
    done = call("GET", f"/v1/task-models/{tm['id']}", 200)
    assert done["status"] == "completed", done
    call("GET", "/v1/task-models?limit=1", 200)
    call("GET", "/v1/models", 200)
    call("GET", f"/v1/models/{tm['id']}", 200)
    call("GET", f"/v1/models/{tm['id']}/versions", 200)
    call("POST", f"/v1/task-models/{tm['id']}/predict", 200, json={"keys": ["u1", "nope"]})
    call("POST", f"/v1/task-models/{tm['id']}/predict", 200, json={"rows": [[1, None]]})
    out = {"bucket": "training", "output_path": "out.tsv"}
    call("POST", f"/v1/task-models/{tm['id']}/batch-predictions", 202, json=out)
    call("DELETE", f"/v1/task-models/{tm['id']}", 409)
    failing = call("POST", "/v1/task-models", 201, json={**body, "train_file_path": "nope.tsv"})
    run_jobs(services)
    call("POST", f"/v1/task-models/{failing['id']}/start", 200)
    run_jobs(services)
    failed = call("GET", f"/v1/task-models/{failing['id']}", 200)
    assert failed["status"] == "failed", failed
    call("GET", f"/v1/models/{failing['id']}/versions", 200)
    other = call("POST", "/v1/task-models", 201, json={**body, "name": "gone"})
    call("DELETE", f"/v1/task-models/{other['id']}", 204)
