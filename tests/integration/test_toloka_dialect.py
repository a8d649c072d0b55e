"""The Toloka front door (``/toloka/api/v1``) in the raw shapes toloka-kit 1.2.3 sends and reads:
``Authorization: OAuth <key>``, booleans as ``true``/``false`` in the query string, errors as
``{request_id, code, message, payload}``, zoneless UTC timestamps, ``{items, has_more}``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from taskloom.jobs.worker import Worker

from .conftest import BASE_URL

V1 = "/toloka/api/v1"
ZONELESS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")
SPEC = {
    "input_spec": {
        "image": {"type": "url"},
        "note": {"type": "string", "required": False, "max_length": 10},
    },
    "output_spec": {"label": {"type": "string", "allowed_values": ["cat", "dog"]}},
    "view_spec": {"type": "classic", "markup": "{{img src=image}}"},
}


@pytest.fixture
def toloka(transport: Any, admin_key: str) -> httpx.Client:
    """toloka-kit's session: ``OAuth <token>`` on every request."""
    return httpx.Client(
        base_url=BASE_URL, transport=transport, headers={"Authorization": f"OAuth {admin_key}"}
    )


def toloka_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"request_id", "code", "message", "payload"}, body
    assert body["code"] == code, body
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def pool(toloka: httpx.Client) -> dict[str, Any]:
    r = toloka.post(f"{V1}/projects", json={"public_name": "Cats", "task_spec": SPEC})
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["status"] == "ACTIVE" and ZONELESS.match(project["created"])
    r = toloka.post(
        f"{V1}/pools",
        json={
            "project_id": project["id"],
            "private_name": "p",
            "may_contain_adult_content": False,
            "reward_per_assignment": 0.01,
            "assignment_max_duration_seconds": 600,
            "will_expire": "2030-01-01T00:00:00",
            "defaults": {"default_overlap_for_new_tasks": 2},
            "mixer_config": {
                "real_tasks_count": 1,
                "golden_tasks_count": 0,
                "training_tasks_count": 0,
            },
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def item(pool_id: str, n: int, **kw: Any) -> dict[str, Any]:
    return {"pool_id": pool_id, "input_values": {"image": f"https://x.org/{n}.png"}, **kw}


def run_jobs(services: Any) -> None:
    worker = Worker(services.jobs, services=services)
    while worker.run_one():
        pass


# -- auth and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "OAuth", "OAuth tlk_wrong", "Basic abc"])
def test_credentials_are_required(transport: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=headers) as c:
        toloka_error(c.get(f"{V1}/projects"), 401, "AUTHENTICATION_ERROR")


def test_apikey_scheme_and_unknown_path(transport: Any, admin_key: str) -> None:
    headers = {"Authorization": f"ApiKey {admin_key}"}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=headers) as c:
        assert c.get(f"{V1}/projects").json() == {"items": [], "has_more": False}
        toloka_error(c.get(f"{V1}/no-such-thing"), 404, "DOES_NOT_EXIST")


def test_validation_error_payload_per_field(toloka: httpx.Client) -> None:
    r = toloka.post(f"{V1}/projects", json={"public_name": "x", "task_spec": {"input_spec": {}}})
    body = toloka_error(r, 400, "VALIDATION_ERROR")
    assert any(k.startswith("task_spec") for k in body["payload"]), body
    toloka_error(toloka.post(f"{V1}/projects", content=b"{nope"), 400, "VALIDATION_ERROR")


# -- pools -------------------------------------------------------------------------------------


def test_pool_transitions_202_then_204(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    assert pool["status"] == "CLOSED"
    r = toloka.post(f"{V1}/pools/{pool['id']}/open")
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["type"] == "POOL.OPEN" and op["status"] == "SUCCESS"
    assert op["parameters"] == {"pool_id": pool["id"]} and ZONELESS.match(op["finished"])
    assert toloka.get(f"{V1}/operations/{op['id']}").json()["status"] == "SUCCESS"
    assert toloka.post(f"{V1}/pools/{pool['id']}/open").status_code == 204
    assert toloka.get(f"{V1}/pools/{pool['id']}").json()["status"] == "OPEN"
    toloka_error(toloka.post(f"{V1}/pools/{pool['id']}/archive"), 409, "CONFLICT_STATE")
    assert toloka.post(f"{V1}/pools/{pool['id']}/close").status_code == 202
    assert toloka.post(f"{V1}/pools/{pool['id']}/close").status_code == 204


# -- tasks -------------------------------------------------------------------------------------


def test_sync_single_and_batch(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    pid = pool["id"]
    r = toloka.post(f"{V1}/tasks", params={"async_mode": "false"}, json=item(pid, 0, overlap=3))
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["overlap"] == 3 and ZONELESS.match(task["created"])

    bad = {"pool_id": pid, "input_values": {"image": "not a url"}}
    r = toloka.post(f"{V1}/tasks", params={"async_mode": "false"}, json=bad)
    body = toloka_error(r, 400, "VALIDATION_ERROR")
    assert body["payload"]["input_values.image"]["code"] == "INVALID_URL_SYNTAX"

    batch = [item(pid, 1), {"pool_id": pid, "input_values": {}}, item(pid, 2)]
    q = {"async_mode": "false", "allow_defaults": "true"}
    r = toloka.post(f"{V1}/tasks", params=q, json=batch)
    body = toloka_error(r, 400, "VALIDATION_ERROR")  # nothing made without skip_invalid_items
    assert body["payload"]["1"]["input_values.image"]["code"] == "VALUE_REQUIRED"
    assert len(toloka.get(f"{V1}/tasks", params={"pool_id": pid}).json()["items"]) == 1

    r = toloka.post(f"{V1}/tasks", params={**q, "skip_invalid_items": "true"}, json=batch)
    assert r.status_code == 201, r.text
    out = r.json()
    assert sorted(out["items"]) == ["0", "2"] and out["items"]["0"]["overlap"] == 2
    assert out["validation_errors"]["1"]["input_values.image"] == {
        "code": "VALUE_REQUIRED",
        "message": "Value must be present and not equal to null",
    }


def test_async_batch_operation_log_and_operation_id(
    toloka: httpx.Client, pool: dict[str, Any], services: Any
) -> None:
    pid = pool["id"]
    op_id = str(uuid.uuid4())
    q = {"async_mode": "true", "allow_defaults": "true", "skip_invalid_items": "true"}
    body = [
        {**item(pid, 1), "__item_idx": "0"},
        {"pool_id": pid, "input_values": {"note": 3}, "__item_idx": "1"},
    ]
    r = toloka.post(f"{V1}/tasks", params={**q, "operation_id": op_id}, json=body)
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["id"] == op_id and op["type"] == "TASK.BATCH_CREATE"
    assert op["status"] == "PENDING" and ZONELESS.match(op["submitted"])
    assert op["parameters"] == {
        "skip_invalid_items": True,
        "allow_defaults": True,
        "open_pool": False,
    }

    run_jobs(services)
    op = toloka.get(f"{V1}/operations/{op_id}").json()
    assert op["status"] == "SUCCESS" and op["progress"] == 100
    assert op["details"]["total_count"] == 2 and op["details"]["not_valid_count"] == 1
    log = toloka.get(f"{V1}/operations/{op_id}/log").json()
    assert [e["input"]["__item_idx"] for e in log] == ["0", "1"]
    assert log[0]["success"] and log[0]["input"]["pool_id"] == pid
    task_id = log[0]["output"]["task_id"]
    assert toloka.get(f"{V1}/tasks/{task_id}").json()["pool_id"] == pid
    assert not log[1]["success"]
    assert log[1]["output"]["input_values.note"]["code"] == "STRING_EXPECTED"

    again = toloka.post(f"{V1}/tasks", params={**q, "operation_id": op_id}, json=body)
    toloka_error(again, 409, "OPERATION_ALREADY_EXISTS")
    assert len(toloka.get(f"{V1}/tasks", params={"pool_id": pid}).json()["items"]) == 1


def test_search_filters_sort_and_has_more(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    pid = pool["id"]
    q = {"async_mode": "false", "allow_defaults": "true"}
    made = toloka.post(f"{V1}/tasks", params=q, json=[item(pid, n) for n in range(5)]).json()
    ids = sorted(t["id"] for t in made["items"].values())
    first = toloka.get(f"{V1}/tasks", params={"pool_id": pid, "sort": "id", "limit": 2}).json()
    assert [t["id"] for t in first["items"]] == ids[:2] and first["has_more"] is True
    rest = toloka.get(
        f"{V1}/tasks", params={"pool_id": pid, "sort": "id", "limit": 3, "id_gt": ids[1]}
    ).json()
    assert [t["id"] for t in rest["items"]] == ids[2:] and rest["has_more"] is False
    ranged = toloka.get(f"{V1}/tasks", params={"id_gte": ids[1], "id_lte": ids[3]}).json()
    assert [t["id"] for t in ranged["items"]] == ids[1:4]
    toloka_error(toloka.get(f"{V1}/tasks", params={"sort": "pool_id"}), 400, "VALIDATION_ERROR")
    toloka_error(toloka.get(f"{V1}/tasks", params={"limit": "0"}), 400, "VALIDATION_ERROR")
    toloka_error(
        toloka.get(f"{V1}/tasks", params={"created_gt": "yesterday"}), 400, "VALIDATION_ERROR"
    )


def test_patch_and_set_overlap_or_min(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    q = {"async_mode": "false"}
    task = toloka.post(f"{V1}/tasks", params=q, json=item(pool["id"], 0, overlap=5)).json()
    r = toloka.patch(f"{V1}/tasks/{task['id']}/set-overlap-or-min", json={"overlap": 1})
    assert r.status_code == 200 and r.json()["overlap"] == 1, r.text
    r = toloka.patch(f"{V1}/tasks/{task['id']}", json={"overlap": 4, "infinite_overlap": False})
    assert r.status_code == 200 and r.json()["overlap"] == 4, r.text


# -- tenancy -----------------------------------------------------------------------------------


def test_other_tenant_sees_404(
    toloka: httpx.Client,
    pool: dict[str, Any],
    transport: Any,
    services: Any,
    admin: Any,
    make_http: Callable[..., httpx.Client],
) -> None:
    made = toloka.post(f"{V1}/task-suites", json=suite_item(pool["id"], 0, overlap=1)).json()
    other = services.auth.create_user(admin, "stranger")
    headers = {"Authorization": f"OAuth {other['api_key']}"}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=headers) as c:
        r = c.patch(f"{V1}/task-suites/{made['id']}", json={"overlap": 2})
        toloka_error(r, 404, "DOES_NOT_EXIST")
        r = c.post(f"{V1}/task-suites", params={"async_mode": "true"}, json=[suite_item("x", 1)])
        assert r.status_code == 202, r.text  # accepted; the item's pool is not theirs
        toloka_error(c.get(f"{V1}/pools/{pool['id']}"), 404, "DOES_NOT_EXIST")
        toloka_error(c.post(f"{V1}/pools/{pool['id']}/open"), 404, "DOES_NOT_EXIST")
        assert c.get(f"{V1}/pools").json() == {"items": [], "has_more": False}


# -- task suites: asynchronous batches and patches ----------------------------------------------


def suite_item(pool_id: str, n: int, **kw: Any) -> dict[str, Any]:
    tasks = [{"input_values": {"image": f"https://x.org/{n}-{i}.png"}} for i in range(2)]
    return {"pool_id": pool_id, "tasks": tasks, **kw}


def test_async_task_suites_operation_and_log(
    toloka: httpx.Client, pool: dict[str, Any], services: Any
) -> None:
    pid = pool["id"]
    op_id = str(uuid.uuid4())
    q = {"async_mode": "true", "allow_defaults": "true", "skip_invalid_items": "true"}
    body = [
        {**suite_item(pid, 0, overlap=2), "__item_idx": "0"},
        {"pool_id": pid, "tasks": [{"input_values": {"note": 3}}], "__item_idx": "1"},
        {**suite_item(pid, 2, overlap=1), "__item_idx": "2"},
    ]
    r = toloka.post(f"{V1}/task-suites", params={**q, "operation_id": op_id}, json=body)
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["id"] == op_id and op["type"] == "TASK_SUITE.BATCH_CREATE"
    assert op["status"] == "PENDING"
    run_jobs(services)
    op = toloka.get(f"{V1}/operations/{op_id}").json()
    assert op["status"] == "SUCCESS" and op["type"] == "TASK_SUITE.BATCH_CREATE"
    assert op["details"]["success_count"] == 2 and op["details"]["not_valid_count"] == 1
    log = toloka.get(f"{V1}/operations/{op_id}/log").json()
    assert [e["input"]["__item_idx"] for e in log] == ["0", "1", "2"]
    assert [e["success"] for e in log] == [True, False, True]
    assert log[1]["output"]["tasks.0.input_values.note"]["code"] == "STRING_EXPECTED"
    made = [toloka.get(f"{V1}/task-suites/{e['output']['task_suite_id']}") for e in log[::2]]
    assert [s.json()["overlap"] for s in made] == [2, 1]  # as sent
    assert all(len(s.json()["tasks"]) == 2 and s.json()["pool_id"] == pid for s in made)
    again = toloka.post(f"{V1}/task-suites", params={**q, "operation_id": op_id}, json=body)
    toloka_error(again, 409, "OPERATION_ALREADY_EXISTS")
    assert len(toloka.get(f"{V1}/task-suites", params={"pool_id": pid}).json()["items"]) == 2

    # an invalid item without skip_invalid_items: the operation fails, nothing is made
    r = toloka.post(f"{V1}/task-suites", params={"async_mode": "true"}, json=body[1:2])
    assert r.status_code == 202, r.text
    run_jobs(services)
    failed = toloka.get(f"{V1}/operations/{r.json()['id']}").json()
    assert failed["status"] == "FAIL"
    assert failed["details"]["error"]["code"] == "VALIDATION_FAILED"
    bad = toloka.post(f"{V1}/task-suites", params={"async_mode": "true"}, json=[])
    toloka_error(bad, 400, "VALIDATION_ERROR")
    bad = toloka.post(
        f"{V1}/task-suites", params={"async_mode": "true", "operation_id": "x"}, json=body
    )
    toloka_error(bad, 400, "VALIDATION_ERROR")


def test_patch_task_suite(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    q = {"async_mode": "false"}
    made = toloka.post(f"{V1}/task-suites", params=q, json=suite_item(pool["id"], 0, overlap=3))
    assert made.status_code == 201, made.text
    sid = made.json()["id"]
    r = toloka.patch(
        f"{V1}/task-suites/{sid}",
        params={"open_pool": "true"},
        json={"overlap": 5, "infinite_overlap": False, "issuing_order_override": 12.5},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["overlap"] == 5 and out["remaining_overlap"] == 5
    assert out["issuing_order_override"] == 12.5 and ZONELESS.match(out["created"])
    assert toloka.get(f"{V1}/pools/{pool['id']}").json()["status"] == "OPEN"
    task = toloka.get(f"{V1}/tasks/{out['tasks'][0]['id']}").json()
    assert task["overlap"] == 5  # the suite's tasks follow it
    r = toloka.patch(f"{V1}/task-suites/{sid}", json={"infinite_overlap": True})
    assert r.status_code == 200 and r.json()["infinite_overlap"] is True, r.text
    r = toloka.patch(f"{V1}/task-suites/{sid}/set-overlap-or-min", json={"overlap": 1})
    assert r.status_code == 200 and r.json()["overlap"] == 1, r.text
    assert r.json()["infinite_overlap"] is False
    for body in ({"overlap": "two"}, {"pool_id": "x"}, {"issuing_order_override": 1e6}, []):
        toloka_error(toloka.patch(f"{V1}/task-suites/{sid}", json=body), 400, "VALIDATION_ERROR")
    toloka_error(
        toloka.patch(f"{V1}/task-suites/{sid}", params={"open_pool": "maybe"}, json={}),
        400,
        "VALIDATION_ERROR",
    )
    toloka_error(toloka.patch(f"{V1}/task-suites/nope", json={"overlap": 2}), 404, "DOES_NOT_EXIST")


# -- operations search, user skills ------------------------------------------------------------


def test_find_operations(toloka: httpx.Client, pool: dict[str, Any], services: Any) -> None:
    pid = pool["id"]
    q = {"async_mode": "true", "allow_defaults": "true"}
    named = str(uuid.uuid4())
    ops = [
        toloka.post(f"{V1}/tasks", params={**q, "operation_id": named}, json=[item(pid, 1)]),
        toloka.post(f"{V1}/task-suites", params=q, json=[suite_item(pid, 2, overlap=1)]),
    ]
    run_jobs(services)
    ops.append(toloka.post(f"{V1}/tasks", params=q, json=[item(pid, 3)]))  # stays PENDING
    ids = [r.json()["id"] for r in ops]
    assert ids[0] == named

    every = toloka.get(f"{V1}/operations").json()
    assert [o["id"] for o in every["items"]] == sorted(ids) and every["has_more"] is False
    assert all(ZONELESS.match(o["submitted"]) for o in every["items"])
    by_type = toloka.get(f"{V1}/operations", params={"type": "TASK_SUITE.BATCH_CREATE"}).json()
    assert [o["id"] for o in by_type["items"]] == [ids[1]]
    assert by_type["items"][0]["details"]["success_count"] == 1
    done = toloka.get(
        f"{V1}/operations", params={"type": "TASK.BATCH_CREATE", "status": "SUCCESS"}
    ).json()
    assert [o["id"] for o in done["items"]] == [ids[0]]
    pending = toloka.get(f"{V1}/operations", params={"status": "PENDING"}).json()
    assert [o["id"] for o in pending["items"]] == [ids[2]]
    assert toloka.get(f"{V1}/operations", params={"type": "POOL.OPEN"}).json()["items"] == []

    first = toloka.get(f"{V1}/operations", params={"sort": "id", "limit": 2}).json()
    assert first["has_more"] is True
    rest = toloka.get(
        f"{V1}/operations", params={"sort": "id", "id_gt": first["items"][-1]["id"]}
    ).json()
    assert [o["id"] for o in first["items"] + rest["items"]] == sorted(ids)
    finished = toloka.get(
        f"{V1}/operations",
        params={"finished_gte": "2000-01-01T00:00:00", "sort": "-finished"},
    ).json()
    assert sorted(o["id"] for o in finished["items"]) == sorted(ids[:2])
    submitted = toloka.get(f"{V1}/operations", params={"submitted_lt": "2000-01-01T00:00:00"})
    assert submitted.json()["items"] == []

    for params in (
        {"type": "NOPE"},
        {"status": "DONE"},
        {"sort": "type"},
        {"submitted_gt": "soon"},
        {"limit": "-1"},
    ):
        toloka_error(toloka.get(f"{V1}/operations", params=params), 400, "VALIDATION_ERROR")


def test_user_skills_delete_and_id_paging(
    toloka: httpx.Client, services: Any, admin: Any, transport: Any
) -> None:
    scope = services.auth.scope(admin)
    users = [services.crowd.workers.register(scope, {"name": f"w{i}"})["id"] for i in range(3)]
    skill = toloka.post(f"{V1}/skills", json={"name": "accuracy"}).json()
    for n, user in enumerate(users):
        r = toloka.put(
            f"{V1}/user-skills", json={"skill_id": skill["id"], "user_id": user, "value": 10 * n}
        )
        assert r.status_code == 200, r.text
        assert r.json()["id"] == f"{skill['id']}.{user}"
    ids = sorted(f"{skill['id']}.{u}" for u in users)
    first = toloka.get(f"{V1}/user-skills", params={"sort": "id", "limit": 2}).json()
    assert [s["id"] for s in first["items"]] == ids[:2] and first["has_more"] is True
    rest = toloka.get(f"{V1}/user-skills", params={"sort": "id", "id_gt": ids[1]}).json()
    assert [s["id"] for s in rest["items"]] == ids[2:] and rest["has_more"] is False
    ranged = toloka.get(f"{V1}/user-skills", params={"id_gte": ids[1], "id_lte": ids[1]}).json()
    assert [s["id"] for s in ranged["items"]] == [ids[1]]

    other = services.auth.create_user(admin, "stranger")
    headers = {"Authorization": f"OAuth {other['api_key']}"}
    # not closed here: closing a client closes the shared in-process transport
    c = httpx.Client(base_url=BASE_URL, transport=transport, headers=headers)
    toloka_error(c.delete(f"{V1}/user-skills/{ids[0]}"), 404, "DOES_NOT_EXIST")
    assert c.get(f"{V1}/operations").json() == {"items": [], "has_more": False}
    r = toloka.delete(f"{V1}/user-skills/{ids[0]}")
    assert r.status_code == 204 and r.content == b"", r.text
    left = toloka.get(f"{V1}/user-skills", params={"skill_id": skill["id"]}).json()["items"]
    assert sorted(s["id"] for s in left) == ids[1:]
    toloka_error(toloka.delete(f"{V1}/user-skills/{ids[0]}"), 404, "DOES_NOT_EXIST")
    toloka_error(toloka.delete(f"{V1}/user-skills/garbage"), 404, "DOES_NOT_EXIST")


def test_time_ranges_filter_searches(toloka: httpx.Client, pool: dict[str, Any]) -> None:
    q = {"async_mode": "false", "allow_defaults": "true"}
    made = toloka.post(f"{V1}/tasks", params=q, json=[item(pool["id"], n) for n in range(2)])
    created = sorted(t["created"] for t in made.json()["items"].values())
    after = toloka.get(f"{V1}/tasks", params={"created_gte": created[0]}).json()["items"]
    assert len(after) == 2
    assert toloka.get(f"{V1}/tasks", params={"created_gt": "2999-01-01T00:00:00"}).json() == {
        "items": [],
        "has_more": False,
    }
