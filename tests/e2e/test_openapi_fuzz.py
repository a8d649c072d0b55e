"""A bounded schemathesis run over the native API (``/v1/...``) of a real server process.

Every operation of ``/openapi.json`` gets a few generated requests, valid ones and invalid
ones, sent over HTTP with a valid API key (a worker token on ``/v1/crowd/me``); each answer
must be no 5xx, have a documented status, and match the schema documented for that status.
A third pass sends valid requests whose path names objects that exist (a dataset with
documents and a clustering, a bucket with a file, a feature table, jobs, a crowd project,
pool, tasks, a suite, a skill, a worker and an assignment), so the success answers are
checked too and not only the 404s. The run is deterministic (``derandomize``) and small:
it guards the schema's honesty and the server's error handling, not deep behaviour (the
other tests do that).

The dialect front doors (``/relevance``, ``/toloka``, ``/nclue``) and the web pages are not
in it: they answer in their own shapes, outside this contract.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from conftest import PG_URL, ServerProcess, reset_postgres

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# requests per operation and pass (valid, invalid, valid on existing objects): ~117
# operations x 3 passes, about two minutes on two cores
# (TASKLOOM_FUZZ_EXAMPLES=50 for a deeper run by hand)
EXAMPLES = int(os.environ.get("TASKLOOM_FUZZ_EXAMPLES", "5"))

POOL = {
    "private_name": "fuzz",
    "reward_per_assignment": 0.05,
    "assignment_max_duration_seconds": 600,
    "will_expire": "2035-01-01T00:00:00Z",
    "defaults": {"default_overlap_for_new_tasks": 2, "default_overlap_for_new_task_suites": 2},
}
SPEC = {
    "input_spec": {"image": {"type": "url"}},
    "output_spec": {"label": {"type": "string", "allowed_values": ["cat", "dog"]}},
}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if PG_URL:
        reset_postgres(PG_URL)
    s = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data", workers=1)
    yield s
    s.stop()


def _ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def _wait(http: httpx.Client, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while _ok(http.get(f"/v1/jobs/{job_id}"))["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.1)


def _seed(server: ServerProcess) -> tuple[str, dict[str, str], dict[str, str]]:
    """Objects for the requests to find: (worker token, path parameters by name, blob and
    bucket-file paths by route prefix)."""
    auth = {"Authorization": f"Bearer {server.api_key}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
        _ok(http.post("/v1/datasets", json={"name": "ds"}), 201)
        docs = [
            {"_id": "a", "x": 1, "v_vector_": [1.0, 0.0]},
            {"_id": "b", "x": 2, "v_vector_": [0.0, 1.0]},
        ]
        _ok(http.post("/v1/datasets/ds/documents", json={"documents": docs}))
        params = {"vector_field": "v_vector_", "n_clusters": 2, "random_state": 1}
        job = _ok(
            http.post("/v1/jobs", json={"kind": "cluster", "dataset": "ds", "params": params}),
            201,
        )
        _wait(http, job["id"])
        _ok(http.post("/v1/buckets", json={"name": "bkt"}), 201)
        csv = b"k,a\nx,1\ny,2\n"
        _ok(http.put("/v1/buckets/bkt/files/f.csv", content=csv), 201)
        _ok(http.put("/v1/blobs/y.txt", content=b"hello"), 201)
        source = {"kind": "file", "bucket": "bkt", "path": "f.csv", "key_column": "k"}
        feature = _ok(http.post("/v1/features", json={"name": "ft", "source": source}), 201)
        key = _ok(http.post("/v1/keys", json={"name": "spare"}), 201)
        spec = {"public_name": "Cats", "task_spec": SPEC}
        project = _ok(http.post("/v1/crowd/projects", json=spec), 201)
        pool = _ok(http.post("/v1/crowd/pools", json={"project_id": project["id"], **POOL}), 201)
        tasks = [
            {"pool_id": pool["id"], "input_values": {"image": f"https://img.test/{i}.png"}}
            for i in range(3)
        ]
        made = _ok(http.post("/v1/crowd/tasks?allow_defaults=true", json=tasks), 201)
        suite = {"pool_id": pool["id"], "tasks": [{"input_values": tasks[0]["input_values"]}]}
        suite = _ok(http.post("/v1/crowd/task-suites?allow_defaults=true", json=suite), 201)
        _ok(http.post(f"/v1/crowd/pools/{pool['id']}/open"))
        skill = _ok(http.post("/v1/crowd/skills", json={"name": "accuracy"}), 201)
        worker = _ok(http.post("/v1/crowd/workers", json={"name": "fuzz"}), 201)
        _ok(
            http.put(
                "/v1/crowd/user-skills",
                json={"skill_id": skill["id"], "user_id": worker["id"], "value": 50},
            )
        )
        given_ = _ok(
            http.post(
                f"/v1/crowd/workers/{worker['id']}/assignments", json={"pool_id": pool["id"]}
            ),
            201,
        )
        op = _ok(http.post("/v1/crowd/tasks?async_mode=true&allow_defaults=true", json=tasks), 202)
        _wait(http, op["id"])
    ids = {
        "name": "ds",
        "doc_id": "a",
        "job_id": job["id"],
        "bucket": "bkt",
        "feature_id": feature["id"],
        "key_id": key["id"],
        "project_id": project["id"],
        "pool_id": pool["id"],
        "task_id": made["items"]["0"]["id"],
        "suite_id": suite["id"],
        "skill_id": skill["id"],
        "user_skill_id": f"{skill['id']}:{worker['id']}",
        "worker_id": worker["id"],
        "assignment_id": given_["id"],
        "operation_id": op["id"],
    }
    paths = {"/v1/blobs/": "y.txt", "/v1/buckets/": "f.csv"}
    return worker["token"], ids, paths


class Fuzz:
    def __init__(self, server: ServerProcess, token: str) -> None:
        self.url = server.url
        self.key_auth = {"authorization": f"Bearer {server.api_key}"}
        self.worker_auth = {"authorization": f"Worker {token}"}
        self.failures: list[str] = []
        self.statuses: dict[str, set[int]] = {}
        self.runs = 0

    def run(
        self, op: schemathesis.APIOperation, mode: GenerationMode, pinned: dict[str, str]
    ) -> None:
        label = f"{op.method.upper()} {op.path}"
        auth = self.worker_auth if op.path.startswith("/v1/crowd/me") else self.key_auth
        strategy = op.as_strategy(generation_mode=mode, path_parameters=pinned or None)

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            # act in the key's own app: a generated X-Taskloom-App is only ever a 404
            if case.headers:
                case.headers.pop("x-taskloom-app", None)
            resp = case.call_and_validate(base_url=self.url, headers=auth, checks=CHECKS)
            self.statuses.setdefault(label, set()).add(resp.status_code)

        self.runs += 1
        try:
            check()
        except Unsatisfiable:
            # no invalid request exists: every parameter is a free string (a name, an id)
            # and there is no body, so negative generation has nothing to negate
            assert mode is GenerationMode.NEGATIVE, label
        except (Exception, BaseExceptionGroup) as exc:  # collected, reported together
            self.failures.append(f"{label} ({mode.value}, pinned={bool(pinned)}): {exc}")


def test_native_api_conforms_to_its_schema(fuzz_server: ServerProcess) -> None:
    token, ids, paths = _seed(fuzz_server)
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json").include(
        path_regex="^/v1/"
    )
    ops = [result.ok() for result in schema.get_all_operations()]
    fuzz = Fuzz(fuzz_server, token)
    started = time.monotonic()
    for op in ops:
        for mode in GenerationMode:
            fuzz.run(op, mode, {})
    # on existing objects; deletions last, so the other operations still find them
    for op in sorted(ops, key=lambda o: o.method.lower() == "delete"):
        names = [p.name for p in op.path_parameters]
        if not names:
            continue
        pinned = {n: ids[n] for n in names if n in ids}
        if "path" in names:
            pinned["path"] = next(v for k, v in paths.items() if op.path.startswith(k))
        fuzz.run(op, GenerationMode.POSITIVE, pinned)
    elapsed = time.monotonic() - started
    seen = sorted(f"{k}: {sorted(v)}" for k, v in fuzz.statuses.items())
    print(f"{fuzz.runs} runs in {elapsed:.0f}s; statuses seen:", *seen, sep="\n  ")
    assert len(ops) > 100 and fuzz.runs > 250, (len(ops), fuzz.runs)
    assert not fuzz.failures, "\n\n".join(fuzz.failures)
