"""The native crowd API (``/v1/crowd``), the requester's side: projects, pools, tasks, task
suites, skills, tenancy, and no 500 on any crowd route (workers: test_crowd_workers_api.py)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from .conftest import error_of
from .crowd_helpers import (
    JSON,
    POOL,
    REQUIRED,
    SPEC,
    make_pool,
    make_project,
    open_pool_with_tasks,
    register,
    run_jobs,
    task,
    tasks_in,
)


@pytest.fixture
def pool(http: httpx.Client) -> dict[str, Any]:
    return make_pool(http)


@pytest.fixture
def bob(http: httpx.Client, make_http: Any) -> httpx.Client:
    """A second tenant's client."""
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    assert r.status_code == 201, r.text
    return make_http(r.json()["api_key"])


# -- projects and pools ---------------------------------------------------------------------------


def test_projects_are_created_read_listed_changed_and_archived(http):
    project = make_project(http)
    assert project["public_name"] == "Cats" and project["status"] == "ACTIVE"
    assert set(project["task_spec"]["input_spec"]) == {"image", "n"}
    assert http.get(f"/v1/crowd/projects/{project['id']}").json() == project

    r = http.patch(f"/v1/crowd/projects/{project['id']}", json={"public_description": "d"})
    assert r.status_code == 200, r.text
    assert r.json()["public_description"] == "d" and r.json()["public_name"] == "Cats"

    listed = http.get("/v1/crowd/projects").json()
    assert listed["count"] == 1 and listed["cursor"] is None
    assert [p["id"] for p in listed["data"]] == [project["id"]]

    r = http.post(f"/v1/crowd/projects/{project['id']}/archive")
    assert r.status_code == 200 and r.json()["status"] == "ARCHIVED"
    assert http.get("/v1/crowd/projects", params={"status": "ACTIVE"}).json()["count"] == 0
    error_of(http.patch(f"/v1/crowd/projects/{project['id']}", json={"public_name": "x"}), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_spec": SPEC}, "public_name"),
        ({"public_name": "x"}, "task_spec"),
        ({"public_name": "", "task_spec": SPEC}, "public_name"),
        ({"public_name": "x", "task_spec": SPEC, "owner": "me"}, "owner"),
        ({"public_name": "x", "task_spec": {**SPEC, "extra": {}}}, "task_spec.extra"),
        ({"public_name": "x", "task_spec": {"input_spec": {}}}, "task_spec.output_spec"),
        ({"public_name": "x", "task_spec": SPEC, "metadata": []}, "metadata"),
        (
            {"public_name": "x", "task_spec": SPEC, "assignments_issuing_type": "BY_HAND"},
            "assignments_issuing_type",
        ),
    ],
)
def test_project_bodies_name_the_bad_field(http, body, field):
    err = error_of(http.post("/v1/crowd/projects", json=body), 422)
    assert err["details"]["field"] == field, err
    assert http.get("/v1/crowd/projects").json()["count"] == 0


def test_a_bad_field_spec_names_its_path(http):
    spec = {**SPEC, "input_spec": {"image": {"type": "picture"}}}
    r = http.post("/v1/crowd/projects", json={"public_name": "x", "task_spec": spec})
    err = error_of(r, 422)
    assert err["details"]["field"].startswith("task_spec.input_spec.image"), err


def test_pools_open_close_and_archive(http, pool):
    assert pool["status"] == "CLOSED" and pool["private_name"] == "batch 1"
    pid = pool["id"]
    r = http.post(f"/v1/crowd/pools/{pid}/open")
    assert r.status_code == 200 and (r.json()["status"], r.json()["changed"]) == ("OPEN", True)
    r = http.post(f"/v1/crowd/pools/{pid}/open")
    assert (r.json()["status"], r.json()["changed"]) == ("OPEN", False)
    error_of(http.post(f"/v1/crowd/pools/{pid}/archive"), 409)  # close it first
    assert http.post(f"/v1/crowd/pools/{pid}/close").json()["status"] == "CLOSED"
    assert http.post(f"/v1/crowd/pools/{pid}/archive").json()["status"] == "ARCHIVED"
    error_of(http.post(f"/v1/crowd/pools/{pid}/open"), 409)
    assert http.get(f"/v1/crowd/pools/{pid}").json()["status"] == "ARCHIVED"
    listed = http.get("/v1/crowd/pools", params={"project_id": pool["project_id"]}).json()
    assert [p["id"] for p in listed["data"]] == [pid]
    assert http.get("/v1/crowd/pools", params={"status": "OPEN"}).json()["count"] == 0


def test_pool_updates_keep_what_is_not_sent(http, pool):
    r = http.patch(f"/v1/crowd/pools/{pool['id']}", json={"reward_per_assignment": 0.1})
    assert r.status_code == 200, r.text
    assert r.json()["reward_per_assignment"] == 0.1
    assert r.json()["private_name"] == "batch 1" and r.json()["defaults"] == POOL["defaults"]
    err = error_of(http.patch(f"/v1/crowd/pools/{pool['id']}", json={"project_id": "x"}), 422)
    assert err["details"]["field"] == "project_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"will_expire": None}, "will_expire"),
        ({"will_expire": "soon"}, "will_expire"),
        ({"reward_per_assignment": -1}, "reward_per_assignment"),
        ({"assignment_max_duration_seconds": 0}, "assignment_max_duration_seconds"),
        ({"private_name": 5}, "private_name"),
        ({"bogus": 1}, "bogus"),
        (
            {"defaults": {"default_overlap_for_new_tasks": 0}},
            "defaults.default_overlap_for_new_tasks",
        ),
        ({"mixer_config": {"real_tasks_count": 1, "golden": 1}}, "mixer_config.golden"),
        ({"mixer_config": {"real_tasks_count": 0}}, "mixer_config.real_tasks_count"),
        (
            {"dynamic_overlap_config": {"max_overlap": 3, "min_confidence": 2, "fields": []}},
            "dynamic_overlap_config.min_confidence",
        ),
        (
            {
                "dynamic_overlap_config": {
                    "max_overlap": 3,
                    "min_confidence": 0.9,
                    "fields": [{"name": "nope"}],
                }
            },
            "dynamic_overlap_config.fields.0.name",
        ),
        ({"quality_control": {"configs": "all"}}, "quality_control.configs"),
    ],
)
def test_pool_bodies_name_the_bad_field(http, change, field):
    project = make_project(http)
    body = {"project_id": project["id"], **POOL, **change}
    body = {k: v for k, v in body.items() if v is not None}
    err = error_of(http.post("/v1/crowd/pools", json=body), 422)
    assert err["details"]["field"] == field, err
    assert http.get("/v1/crowd/pools").json()["count"] == 0


# -- tasks ----------------------------------------------------------------------------------------


def test_one_task_is_created_and_read_back(http, pool):
    body = task(
        pool["id"],
        1,
        overlap=3,
        reserved_for=["w1"],
        baseline_solutions=[{"output_values": {"label": "cat"}, "confidence_weight": 0.8}],
    )
    r = http.post("/v1/crowd/tasks", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["pool_id"] == pool["id"]
    assert created["input_values"] == {"image": "https://img.test/1.png"}
    assert (created["overlap"], created["remaining_overlap"]) == (3, 3)
    assert created["reserved_for"] == ["w1"] and created["created"]
    got = http.get(f"/v1/crowd/tasks/{created['id']}").json()
    assert got == created


def test_one_invalid_task_is_422_naming_the_field(http, pool):
    err = error_of(
        http.post("/v1/crowd/tasks", json={"pool_id": pool["id"], "input_values": {}}), 422
    )
    assert (err["code"], err["details"]["field"]) == ("VALUE_REQUIRED", "input_values.image")
    bad = task(pool["id"], input_values={"image": "https://a.test/x", "color": "red"})
    err = error_of(http.post("/v1/crowd/tasks", json=bad), 422)
    assert (err["code"], err["details"]["field"]) == ("VALUE_NOT_ALLOWED", "input_values.color")
    bad = task(pool["id"], input_values={"image": "no url"})
    err = error_of(http.post("/v1/crowd/tasks", json=bad), 422)
    assert (err["code"], err["details"]["field"]) == ("INVALID_URL_SYNTAX", "input_values.image")
    assert tasks_in(http, pool["id"]) == []


def test_allow_defaults_takes_the_pools_overlap(http, pool):
    err = error_of(http.post("/v1/crowd/tasks", json=task(pool["id"])), 422)
    assert err["details"]["field"] == "overlap"
    r = http.post("/v1/crowd/tasks", params={"allow_defaults": "true"}, json=task(pool["id"]))
    assert r.status_code == 201, r.text
    assert r.json()["overlap"] == POOL["defaults"]["default_overlap_for_new_tasks"]


def test_a_batch_keyed_by_index_with_skip_invalid_items(http, pool):
    items = [task(pool["id"], 0), {"pool_id": pool["id"], "input_values": {}}, task(pool["id"], 2)]
    r = http.post(
        "/v1/crowd/tasks",
        params={"skip_invalid_items": "true", "allow_defaults": "true"},
        json=items,
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"items", "validation_errors"}
    assert set(out["items"]) == {"0", "2"}
    assert out["items"]["2"]["input_values"]["image"].endswith("/2.png")
    assert out["validation_errors"] == {"1": {"input_values.image": REQUIRED}}
    assert {t["id"] for t in tasks_in(http, pool["id"])} == {
        out["items"]["0"]["id"],
        out["items"]["2"]["id"],
    }


def test_a_batch_with_an_invalid_item_creates_nothing_without_skip(http, pool):
    items = [task(pool["id"], 0), task(pool["id"], 1, input_values={"image": 5})]
    r = http.post("/v1/crowd/tasks", params={"allow_defaults": "true"}, json=items)
    err = error_of(r, 422, "invalid_items")
    assert err["details"]["field"] == "[1].input_values.image"
    assert err["details"]["validation_errors"]["1"]["input_values.image"]["code"] == (
        "STRING_EXPECTED"
    )
    assert tasks_in(http, pool["id"]) == []


def test_open_pool_opens_the_pool_with_the_tasks(http, pool):
    r = http.post(
        "/v1/crowd/tasks",
        params={"open_pool": "true", "allow_defaults": "true"},
        json=[task(pool["id"])],
    )
    assert r.status_code == 201, r.text
    assert http.get(f"/v1/crowd/pools/{pool['id']}").json()["status"] == "OPEN"


def test_an_async_batch_is_an_operation_with_counts_and_a_log(http, pool, services):
    items = [task(pool["id"], i) for i in range(3)] + [{"pool_id": pool["id"], "input_values": {}}]
    r = http.post(
        "/v1/crowd/tasks",
        params={"async_mode": "true", "allow_defaults": "true", "skip_invalid_items": "true"},
        json=items,
    )
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["kind"] == "crowd_batch_create" and op["status"] in ("pending", "registered")
    assert tasks_in(http, pool["id"]) == []
    run_jobs(services)
    done = http.get(f"/v1/crowd/operations/{op['id']}").json()
    assert done["status"] == "completed"
    assert done["details"] == {
        "total_count": 4,
        "valid_count": 3,
        "not_valid_count": 1,
        "success_count": 3,
        "failed_count": 1,
    }
    log = http.get(f"/v1/crowd/operations/{op['id']}/log").json()
    assert log["count"] == 4
    assert [e["success"] for e in log["data"]] == [True, True, True, False]
    assert [e["input"] for e in log["data"]] == items
    created = {e["output"]["task_id"] for e in log["data"][:3]}
    assert created == {t["id"] for t in tasks_in(http, pool["id"])}


def test_operation_id_makes_a_batch_idempotent(http, pool, services):
    op_id = str(uuid.uuid4())
    params = {"async_mode": "true", "allow_defaults": "true", "operation_id": op_id}
    first = http.post(
        "/v1/crowd/tasks", params=params, json=[task(pool["id"], i) for i in range(2)]
    )
    assert first.status_code == 202, first.text
    run_jobs(services)
    again = http.post(
        "/v1/crowd/tasks", params=params, json=[task(pool["id"], i) for i in range(5)]
    )
    assert again.status_code == 202, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "completed"
    run_jobs(services)
    assert len(tasks_in(http, pool["id"])) == 2
    by_op_id = http.get(f"/v1/crowd/operations/{op_id}").json()
    assert by_op_id["id"] == first.json()["id"]


VALID = "valid"  # the body is one valid task


@pytest.mark.parametrize(
    ("params", "body", "field"),
    [
        ({"operation_id": "not-a-uuid", "async_mode": "true"}, VALID, "operation_id"),
        ({"operation_id": str(uuid.uuid4())}, VALID, "operation_id"),
        ({"async_mode": "perhaps"}, VALID, "async_mode"),
        ({"skip_invalid_items": "2"}, VALID, "skip_invalid_items"),
        ({}, b'"x"', "body"),
        ({}, b"5", "body"),
        ({}, b"null", "body"),
        ({}, b"[]", "body"),
        ({}, b'[{"pool_id": "p"}, 1]', "[1]"),
    ],
)
def test_task_requests_that_are_refused_whole(http, pool, params, body, field):
    if body == VALID:
        r = http.post("/v1/crowd/tasks", params=params, json=task(pool["id"], overlap=1))
    else:
        r = http.post("/v1/crowd/tasks", params=params, content=body, headers=JSON)
    err = error_of(r, 422)
    assert err["details"]["field"] == field, err
    assert tasks_in(http, pool["id"]) == []


def test_malformed_json_and_missing_body(http):
    r = http.post("/v1/crowd/tasks", content=b"[{", headers=JSON)
    assert error_of(r, 400, "malformed_json")["details"]["field"] == "body"
    assert error_of(http.post("/v1/crowd/tasks"), 422, "missing_body")["details"]["field"] == "body"


def test_past_the_rate_limit_is_429_and_creates_nothing(http, pool, services, monkeypatch):
    monkeypatch.setattr(services.crowd.settings, "crowd_tasks_per_minute", 5)
    params = {"allow_defaults": "true"}
    r = http.post("/v1/crowd/tasks", params=params, json=[task(pool["id"], i) for i in range(4)])
    assert r.status_code == 201, r.text
    r = http.post("/v1/crowd/tasks", params=params, json=[task(pool["id"], i) for i in range(2)])
    err = error_of(r, 429, "tasks_rate_limited")
    assert (err["details"]["limit"], err["details"]["period"]) == (5, "minute")
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert len(tasks_in(http, pool["id"])) == 4
    assert http.post("/v1/crowd/tasks", params=params, json=task(pool["id"], 9)).status_code == 201
    error_of(http.post("/v1/crowd/tasks", params=params, json=task(pool["id"], 10)), 429)
    async_params = {**params, "async_mode": "true"}
    error_of(http.post("/v1/crowd/tasks", params=async_params, json=[task(pool["id"])]), 429)
    assert len(tasks_in(http, pool["id"])) == 5


def test_task_lists_page_with_cursors(http, pool, sdk):
    r = http.post(
        "/v1/crowd/tasks",
        params={"allow_defaults": "true"},
        json=[task(pool["id"], i) for i in range(7)],
    )
    ids = [r.json()["items"][str(i)]["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"pool_id": pool["id"], "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/crowd/tasks", params=params).json()
        assert set(page) == {"data", "count", "cursor"} and page["count"] == len(page["data"])
        seen += [t["id"] for t in page["data"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert [t.id for t in sdk.crowd.list_tasks(pool_id=pool["id"], page_size=2)] == ids
    newest = http.get("/v1/crowd/tasks", params={"pool_id": pool["id"], "sort": "-created"})
    assert [t["id"] for t in newest.json()["data"]] == ids[::-1]
    error_of(http.get("/v1/crowd/tasks", params={"cursor": "%%%"}), 422)
    error_of(http.get("/v1/crowd/tasks", params={"limit": 0}), 422)
    error_of(http.get("/v1/crowd/tasks", params={"sort": "random"}), 422)


def test_task_overlap_changes(http, pool):
    t = http.post("/v1/crowd/tasks", json=task(pool["id"], overlap=3)).json()
    r = http.patch(f"/v1/crowd/tasks/{t['id']}", json={"overlap": 5})
    assert r.status_code == 200 and r.json()["overlap"] == 5
    err = error_of(http.patch(f"/v1/crowd/tasks/{t['id']}", json={"input_values": {}}), 422)
    assert err["details"]["field"] == "input_values"
    r = http.patch(f"/v1/crowd/tasks/{t['id']}/set-overlap-or-min", json={"overlap": 0})
    assert r.status_code == 200, r.text
    assert r.json()["overlap"] == 0  # nothing issued yet: the minimum is 0


def test_task_suites(http, pool):
    suite = {
        "pool_id": pool["id"],
        "overlap": 1,
        "tasks": [
            {"input_values": {"image": "https://img.test/a.png"}},
            {"input_values": {"image": "https://img.test/b.png"}},
        ],
    }
    r = http.post("/v1/crowd/task-suites", json=suite)
    assert r.status_code == 201, r.text
    created = r.json()
    assert [t["input_values"]["image"][-5:] for t in created["tasks"]] == ["a.png", "b.png"]
    assert http.get(f"/v1/crowd/task-suites/{created['id']}").json() == created
    listed = http.get("/v1/crowd/task-suites", params={"pool_id": pool["id"]}).json()
    assert [s["id"] for s in listed["data"]] == [created["id"]]
    bad = {**suite, "tasks": [{"input_values": {}}]}
    err = error_of(http.post("/v1/crowd/task-suites", json=bad), 422)
    assert err["details"]["field"] == "tasks.0.input_values.image"
    r = http.post("/v1/crowd/task-suites", params={"skip_invalid_items": "true"}, json=[suite, bad])
    assert r.status_code == 201 and set(r.json()["items"]) == {"0"}
    assert set(r.json()["validation_errors"]) == {"1"}


def test_async_task_suites_patches_and_user_skill_deletes(http, bob, pool, services):
    suite = {"pool_id": pool["id"], "overlap": 1, "tasks": [task(pool["id"], 0)]}
    suite["tasks"][0].pop("pool_id", None)
    op_id = str(uuid.uuid4())
    q = {"async_mode": "true", "operation_id": op_id.upper(), "skip_invalid_items": "true"}
    r = http.post("/v1/crowd/task-suites", params=q, json=[suite, {"pool_id": pool["id"]}])
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["kind"] == "crowd_suite_batch_create" and op["idempotency_key"] == op_id
    run_jobs(services)
    done = http.get(f"/v1/crowd/operations/{op_id}").json()
    assert done["status"] == "completed" and done["details"]["success_count"] == 1
    log = http.get(f"/v1/crowd/operations/{op_id}/log").json()["data"]
    assert [e["type"] for e in log] == ["TASK_SUITE_CREATE"] * 2
    assert log[1]["output"]["tasks"]["code"] == "VALUE_REQUIRED"
    sid = log[0]["output"]["task_suite_id"]
    again = http.post("/v1/crowd/task-suites", params=q, json=[suite])
    assert again.status_code == 202 and again.json()["id"] == op["id"]
    no_async = http.post("/v1/crowd/task-suites", params={"operation_id": op_id}, json=[suite])
    assert error_of(no_async, 422)["details"]["field"] == "operation_id"

    r = http.patch(f"/v1/crowd/task-suites/{sid}", json={"overlap": 3})
    assert r.status_code == 200 and r.json()["overlap"] == 3, r.text
    r = http.patch(f"/v1/crowd/task-suites/{sid}/set-overlap-or-min", json={"overlap": 0})
    assert r.status_code == 200 and r.json()["overlap"] == 0, r.text
    err = error_of(http.patch(f"/v1/crowd/task-suites/{sid}", json={"tasks": []}), 422)
    assert err["details"]["field"] == "tasks"
    error_of(bob.patch(f"/v1/crowd/task-suites/{sid}", json={"overlap": 2}), 404)

    worker = register(http, "ann")
    skill = http.post("/v1/crowd/skills", json={"name": "speed"}).json()
    us = http.put(
        "/v1/crowd/user-skills", json={"skill_id": skill["id"], "user_id": worker["id"], "value": 5}
    ).json()
    error_of(bob.delete(f"/v1/crowd/user-skills/{us['id']}"), 404)
    assert http.delete(f"/v1/crowd/user-skills/{us['id']}").status_code == 204
    error_of(http.delete(f"/v1/crowd/user-skills/{us['id']}"), 404)
    error_of(http.delete("/v1/crowd/user-skills/no-separator"), 404)
    assert http.get("/v1/crowd/user-skills", params={"skill_id": skill["id"]}).json()["data"] == []


def test_the_sdk_creates_and_patches_task_suites(sdk, http, pool, services):
    crowd = sdk.crowd
    one = {
        "pool_id": pool["id"],
        "overlap": 1,
        "tasks": [{"input_values": {"image": "https://a.b/c"}}],
    }
    batch = crowd.create_task_suites([one, {"pool_id": pool["id"]}], skip_invalid_items=True)
    assert sorted(batch.items) == [0] and sorted(batch.validation_errors) == [1]
    op = crowd.create_task_suites_async([one, one])
    run_jobs(services)
    op = op.refresh()
    assert op.status == "completed" and [e["success"] for e in op.log()] == [True, True]
    suite = crowd.get_task_suite(op.log()[0]["output"]["task_suite_id"])
    assert suite.update(overlap=2, issuing_order_override=1.5).overlap == 2
    assert suite["issuing_order_override"] == 1.5
    assert suite.set_overlap_or_min(0).overlap == 0
    worker = register(http, "bea")
    skill = crowd.create_skill("care")
    crowd.set_user_skill(skill.id, worker["id"], 70)
    crowd.delete_user_skill(skill.id, worker["id"])
    assert list(crowd.list_user_skills(skill_id=skill.id)) == []


# -- tenancy --------------------------------------------------------------------------------------


def test_another_apps_crowd_objects_answer_404(http, bob, pool):
    t = http.post("/v1/crowd/tasks", json=task(pool["id"], overlap=1)).json()
    project_id, pool_id = pool["project_id"], pool["id"]
    for method, path, body in [
        ("GET", f"/v1/crowd/projects/{project_id}", None),
        ("PATCH", f"/v1/crowd/projects/{project_id}", {"public_name": "mine"}),
        ("POST", f"/v1/crowd/projects/{project_id}/archive", None),
        ("GET", f"/v1/crowd/pools/{pool_id}", None),
        ("PATCH", f"/v1/crowd/pools/{pool_id}", {"private_name": "mine"}),
        ("POST", f"/v1/crowd/pools/{pool_id}/open", None),
        ("GET", f"/v1/crowd/tasks/{t['id']}", None),
        ("PATCH", f"/v1/crowd/tasks/{t['id']}", {"overlap": 9}),
        ("POST", "/v1/crowd/tasks", task(pool_id, overlap=1)),
        ("POST", "/v1/crowd/pools", {"project_id": project_id, **POOL}),
    ]:
        r = bob.request(method, path, **({} if body is None else {"json": body}))
        error_of(r, 404)
    for path in ("projects", "pools", "tasks", "task-suites", "skills"):
        assert bob.get(f"/v1/crowd/{path}").json()["count"] == 0
    r = bob.post(
        "/v1/crowd/tasks", params={"skip_invalid_items": "true"}, json=[task(pool_id, overlap=1)]
    )
    assert r.status_code == 201 and r.json()["items"] == {}
    assert r.json()["validation_errors"]["0"]["pool_id"]["code"] == "OBJECT_NOT_FOUND"
    assert http.get(f"/v1/crowd/pools/{pool_id}").json()["status"] == "CLOSED"
    assert http.get(f"/v1/crowd/projects/{project_id}").json()["public_name"] == "Cats"
    assert [x["id"] for x in tasks_in(http, pool_id)] == [t["id"]]


# -- skills ---------------------------------------------------------------------------------------


def test_skills_and_user_skills(http):
    r = http.post("/v1/crowd/skills", json={"name": "accuracy", "hidden": True})
    assert r.status_code == 201, r.text
    skill = r.json()
    assert http.get(f"/v1/crowd/skills/{skill['id']}").json() == skill
    assert http.get("/v1/crowd/skills", params={"name": "accuracy"}).json()["count"] == 1
    error_of(http.post("/v1/crowd/skills", json={"name": "x", "level": 3}), 422)
    worker = http.post("/v1/crowd/workers", json={"name": "ann"}).json()
    body = {"skill_id": skill["id"], "user_id": worker["id"], "value": 80}
    r = http.put("/v1/crowd/user-skills", json=body)
    assert r.status_code == 200 and r.json()["value"] == 80
    r = http.put("/v1/crowd/user-skills", json={**body, "value": 60.5})
    assert r.json()["exact_value"] == 60.5
    listed = http.get("/v1/crowd/user-skills", params={"user_id": worker["id"]}).json()
    assert [(u["skill_id"], u["exact_value"]) for u in listed["data"]] == [(skill["id"], 60.5)]
    err = error_of(http.put("/v1/crowd/user-skills", json={**body, "value": 101}), 422)
    assert err["details"]["field"] == "value"
    error_of(http.put("/v1/crowd/user-skills", json={**body, "user_id": "nobody"}), 404)


def test_the_openapi_schema_lists_the_crowd_routes(http):
    r = http.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert {"post", "get"} <= set(paths["/v1/crowd/tasks"])
    assert "/v1/crowd/workers/{worker_id}/assignments" in paths
    assert "/v1/crowd/me/assignments/{assignment_id}/submit" in paths
    body = paths["/v1/crowd/tasks"]["post"]["requestBody"]["content"]["application/json"]
    assert {s["type"] for s in body["schema"]["oneOf"]} == {"object", "array"}


def test_no_crowd_request_makes_a_500(app, http, make_http):
    """Every crowd route, as requester and as worker, on real and made-up ids, with garbage."""
    pool = open_pool_with_tasks(http, 1, overlap=1)
    ann = register(http, "ann")
    as_ann = make_http(None)
    as_ann.headers["Authorization"] = f"Worker {ann['token']}"
    a = http.post(f"/v1/crowd/workers/{ann['id']}/assignments", json={"pool_id": pool["id"]})
    paths = app.openapi()["paths"]
    routes = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1/crowd") for m in ops]
    bodies = [
        None,
        b"{",
        b"[]",
        b"null",
        b'"x"',
        b"{}",
        b'{"pool_id": 5, "solutions": [{"output_values": 1}], "status": 1, "value": "x"}',
        b'[{"pool_id": "' + pool["id"].encode() + b'", "input_values": []}]',
        b'{"pool_id": "' + pool["id"].encode() + b'", "solutions": [{"output_values": {}}]}',
    ]
    values = [pool["id"], ann["id"], a.json()["id"], "%00", "x" * 300]
    checked = 0
    for client in (http, as_ann):
        for method, path in routes:
            for value in values:
                url = re.sub(r"\{[^}]+\}", value, path)
                for body in bodies:
                    kw = {} if body is None else {"content": body, "headers": JSON}
                    r = client.request(method, url, **kw)
                    assert r.status_code < 500, (method, url, body, r.text)
                    if r.status_code >= 400:
                        error_of(r, r.status_code)
                    checked += 1
    assert checked > 1000
