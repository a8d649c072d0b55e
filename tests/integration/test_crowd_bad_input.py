"""Bad crowd input answers a clear 4xx naming the field, native and Toloka (issue 11): wrong
JSON types in task and suite bodies, integers beyond 64 bits in queries and bodies, NUL
characters in display strings; and a Toloka pool with ``default_overlap_for_new_task_suites=0``
(as Toloka's tutorials write it) is accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import BASE_URL, error_of
from .crowd_helpers import (
    SPEC,
    label_all,
    make_pool,
    make_project,
    open_pool_with_tasks,
    register,
    task,
    tasks_in,
)

V1 = "/toloka/api/v1"
BIG = 2**63  # one past the databases' BIGINT


@pytest.fixture
def pool(http: httpx.Client) -> dict[str, Any]:
    return make_pool(http)


@pytest.fixture
def toloka(transport: Any, admin_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=BASE_URL, transport=transport, headers={"Authorization": f"OAuth {admin_key}"}
    )


def toloka_field_error(r: httpx.Response, field: str) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR", body
    payload = body["payload"]
    payload = payload.get("0", payload)  # a batch: by item index
    assert field in payload, body
    return payload[field]


# -- wrong JSON types in task and task suite bodies -----------------------------------------------

WRONG_POOL_IDS = [[], {}, 5, True]


@pytest.mark.parametrize("path", ["/v1/crowd/tasks", "/v1/crowd/task-suites"])
@pytest.mark.parametrize("pool_id", WRONG_POOL_IDS)
def test_a_pool_id_that_is_not_a_string_is_422_naming_it(http, pool, path, pool_id):
    for body in ({"pool_id": pool_id}, [{"pool_id": pool_id}]):
        err = error_of(http.post(path, json=body), 422)
        assert err["details"]["field"] in ("pool_id", "[0].pool_id"), err
        errors = err["details"]["validation_errors"]
        errors = errors.get("0", errors)
        assert errors["pool_id"]["code"] == "STRING_EXPECTED", err
    assert tasks_in(http, pool["id"]) == []


@pytest.mark.parametrize("path", ["/v1/crowd/tasks", "/v1/crowd/task-suites"])
def test_an_empty_object_names_the_missing_pool_id(http, path):
    err = error_of(http.post(path, json={}), 422, "VALUE_REQUIRED")
    assert err["details"]["field"] == "pool_id"


@pytest.mark.parametrize("path", ["/tasks", "/task-suites"])
@pytest.mark.parametrize("pool_id", WRONG_POOL_IDS)
def test_toloka_a_pool_id_that_is_not_a_string_is_a_validation_error(toloka, path, pool_id):
    for body in ({"pool_id": pool_id}, [{"pool_id": pool_id}]):
        err = toloka_field_error(toloka.post(f"{V1}{path}", json=body), "pool_id")
        assert err["code"] == "STRING_EXPECTED"


@pytest.mark.parametrize("path", ["/tasks", "/task-suites"])
def test_toloka_an_empty_object_names_the_missing_pool_id(toloka, path):
    err = toloka_field_error(toloka.post(f"{V1}{path}", json={}), "pool_id")
    assert err["code"] == "VALUE_REQUIRED"


# -- integers beyond 64 bits ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [BIG, -BIG - 1, 10**30])
def test_native_task_listing_refuses_an_overlap_beyond_64_bits(http, pool, value):
    r = http.get("/v1/crowd/tasks", params={"pool_id": pool["id"], "overlap": value})
    assert error_of(r, 422)["details"]["field"] == "overlap"


@pytest.mark.parametrize("path", ["/tasks", "/task-suites"])
@pytest.mark.parametrize("key", ["overlap", "overlap_gt", "overlap_lte"])
@pytest.mark.parametrize("value", [BIG, -BIG - 1])
def test_toloka_searches_refuse_an_integer_beyond_64_bits(toloka, pool, path, key, value):
    r = toloka.get(f"{V1}{path}", params={"pool_id": pool["id"], key: value})
    toloka_field_error(r, "overlap")


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ("-5", "VALUE_LESS_THAN_MIN"),
        ("0", "VALUE_LESS_THAN_MIN"),
        (str(BIG), "VALUE_GREATER_THAN_MAX"),
    ],
)
def test_toloka_a_limit_out_of_range_says_which_end(toloka, limit, code):
    for path in ("/tasks", "/task-suites", "/pools", "/projects", "/operations"):
        err = toloka_field_error(toloka.get(f"{V1}{path}", params={"limit": limit}), "limit")
        assert err["code"] == code, path


def test_a_patched_overlap_beyond_64_bits_is_refused_and_nothing_changes(http, pool):
    made = http.post("/v1/crowd/tasks", json=task(pool["id"], overlap=1)).json()
    suite = http.post(
        "/v1/crowd/task-suites",
        json={
            "pool_id": pool["id"],
            "overlap": 1,
            "tasks": [{"input_values": made["input_values"]}],
        },
    ).json()
    for url in (
        f"/v1/crowd/tasks/{made['id']}",
        f"/v1/crowd/tasks/{made['id']}/set-overlap-or-min",
        f"/v1/crowd/task-suites/{suite['id']}",
        f"/v1/crowd/task-suites/{suite['id']}/set-overlap-or-min",
    ):
        for value in (BIG, 10**30):
            err = error_of(http.patch(url, json={"overlap": value}), 422)
            assert err["details"]["field"] == "overlap", (url, err)
    assert http.get(f"/v1/crowd/tasks/{made['id']}").json()["overlap"] == 1
    assert http.get(f"/v1/crowd/task-suites/{suite['id']}").json()["overlap"] == 1


def test_toloka_a_patched_overlap_beyond_64_bits_is_a_validation_error(toloka, http, pool):
    made = http.post("/v1/crowd/tasks", json=task(pool["id"], overlap=1)).json()
    suite = http.post(
        "/v1/crowd/task-suites",
        json={
            "pool_id": pool["id"],
            "overlap": 1,
            "tasks": [{"input_values": made["input_values"]}],
        },
    ).json()
    for url in (
        f"{V1}/tasks/{made['id']}",
        f"{V1}/tasks/{made['id']}/set-overlap-or-min",
        f"{V1}/task-suites/{suite['id']}",
        f"{V1}/task-suites/{suite['id']}/set-overlap-or-min",
    ):
        toloka_field_error(toloka.patch(url, json={"overlap": BIG}), "overlap")
    assert http.get(f"/v1/crowd/tasks/{made['id']}").json()["overlap"] == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/skills", {"name": "s", "skill_ttl_hours": BIG}, "skill_ttl_hours"),
        ("/pools", {"assignment_max_duration_seconds": BIG}, "assignment_max_duration_seconds"),
        (
            "/pools",
            {"defaults": {"default_overlap_for_new_tasks": BIG}},
            "defaults.default_overlap_for_new_tasks",
        ),
        ("/pools", {"mixer_config": {"real_tasks_count": BIG}}, "mixer_config.real_tasks_count"),
    ],
)
def test_bodies_with_integers_beyond_64_bits_are_refused(http, toloka, pool, path, body, field):
    if path == "/pools":
        body = {
            **{
                k: pool[k]
                for k in (
                    "project_id",
                    "private_name",
                    "reward_per_assignment",
                    "assignment_max_duration_seconds",
                    "will_expire",
                )
            },
            **body,
        }
    err = error_of(http.post(f"/v1/crowd{path}", json=body), 422)
    assert err["details"]["field"] == field, err
    toloka_field_error(toloka.post(f"{V1}{path}", json=body), field)


@pytest.mark.parametrize(
    ("key", "value", "code"),
    [
        ("issuing_order_override", BIG, "VALUE_GREATER_THAN_MAX"),
        ("issuing_order_override", -1e6, "VALUE_LESS_THAN_MIN"),
        ("latitude", 91, "VALUE_GREATER_THAN_MAX"),
        ("longitude", "east", "FLOAT_EXPECTED"),
    ],
)
def test_a_suites_numbers_are_bounded_when_it_is_created(http, toloka, pool, key, value, code):
    suite = {"pool_id": pool["id"], "overlap": 1, "tasks": [task(pool["id"])], key: value}
    del suite["tasks"][0]["pool_id"]
    err = error_of(http.post("/v1/crowd/task-suites", json=suite), 422, code)
    assert err["details"]["field"] == key
    assert toloka_field_error(toloka.post(f"{V1}/task-suites", json=suite), key)["code"] == code
    assert http.get("/v1/crowd/task-suites", params={"pool_id": pool["id"]}).json()["data"] == []


# -- NUL characters in display strings ---------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/projects", {"public_name": "Ca\x00ts", "task_spec": SPEC}, "public_name"),
        (
            "/projects",
            {"public_name": "Cats", "public_description": "a\x00b", "task_spec": SPEC},
            "public_description",
        ),
        ("/skills", {"name": "sk\x00ill"}, "name"),
    ],
)
def test_nul_characters_in_crowd_display_strings_are_refused(http, toloka, path, body, field):
    err = error_of(http.post(f"/v1/crowd{path}", json=body), 422)
    assert err["details"]["field"] == field, err
    toloka_field_error(toloka.post(f"{V1}{path}", json=body), field)
    listed = http.get(f"/v1/crowd{path}").json()["data"]
    assert not any("\x00" in str(x) for x in listed)


def test_nul_characters_in_pool_names_and_project_patches_are_refused(http, toloka, pool):
    r = http.patch(f"/v1/crowd/pools/{pool['id']}", json={"private_name": "p\x00"})
    assert error_of(r, 422)["details"]["field"] == "private_name"
    project = make_project(http, "Dogs")
    r = http.patch(f"/v1/crowd/projects/{project['id']}", json={"public_name": "D\x00gs"})
    assert error_of(r, 422)["details"]["field"] == "public_name"
    r = toloka.patch(f"{V1}/pools/{pool['id']}", json={"private_name": "p\x00"})
    toloka_field_error(r, "private_name")
    assert http.get(f"/v1/crowd/pools/{pool['id']}").json()["private_name"] == pool["private_name"]
    assert http.get(f"/v1/crowd/projects/{project['id']}").json()["public_name"] == "Dogs"


def test_nul_characters_in_worker_names_and_review_comments_are_refused(http, toloka):
    err = error_of(http.post("/v1/crowd/workers", json={"name": "a\x00n"}), 422)
    assert err["details"]["field"] == "name"
    pool = open_pool_with_tasks(http, 1, overlap=1)
    ann = register(http, "ann")
    (done,) = label_all(http, ann["id"], pool["id"], lambda t: "cat")
    reject = {"status": "REJECTED", "public_comment": "look\x00again"}
    err = error_of(http.patch(f"/v1/crowd/assignments/{done['id']}", json=reject), 422)
    assert err["details"]["field"] == "public_comment"
    r = toloka.patch(f"{V1}/assignments/{done['id']}", json=reject)
    assert toloka_field_error(r, "public_comment")
    assert http.get(f"/v1/crowd/assignments/{done['id']}").json()["status"] == "SUBMITTED"
    r = toloka.patch(f"{V1}/assignments/{done['id']}", json={"status": "DONE"})
    assert toloka_field_error(r, "status")["code"] == "VALUE_NOT_ALLOWED"


# -- a Toloka pool whose task suite default overlap is 0 ------------------------------------------


def test_toloka_pool_with_a_task_suite_default_overlap_of_0_is_accepted(toloka, http):
    """toloka-kit's tutorials: ``Pool.Defaults(default_overlap_for_new_tasks=3,
    default_overlap_for_new_task_suites=0)`` with a mixer that builds the pages. 0 is no
    default for task suites: tasks take theirs, a suite needs an overlap of its own."""
    project = make_project(http)
    body = {
        "project_id": project["id"],
        "private_name": "tutorial",
        "may_contain_adult_content": False,
        "reward_per_assignment": 0.01,
        "assignment_max_duration_seconds": 300,
        "will_expire": "2035-01-01T00:00:00",
        "defaults": {"default_overlap_for_new_tasks": 3, "default_overlap_for_new_task_suites": 0},
        "mixer_config": {
            "real_tasks_count": 10,
            "golden_tasks_count": 0,
            "training_tasks_count": 0,
        },
    }
    r = toloka.post(f"{V1}/pools", json=body)
    assert r.status_code == 201, r.text
    pool = r.json()
    assert pool["defaults"] == body["defaults"]
    q = {"allow_defaults": "true"}
    r = toloka.post(f"{V1}/tasks", params=q, json=task(pool["id"]))
    assert r.status_code == 201 and r.json()["overlap"] == 3, r.text
    suite = {"pool_id": pool["id"], "tasks": [{"input_values": {"image": "https://x.org/s.png"}}]}
    err = toloka_field_error(toloka.post(f"{V1}/task-suites", params=q, json=suite), "overlap")
    assert err["code"] == "VALUE_REQUIRED"
    r = toloka.post(f"{V1}/task-suites", params=q, json={**suite, "overlap": 2})
    assert r.status_code == 201 and r.json()["overlap"] == 2, r.text
    # the native API reads the same pool, and a task default of 0 stays refused
    assert http.get(f"/v1/crowd/pools/{pool['id']}").json()["defaults"] == body["defaults"]
    r = toloka.post(f"{V1}/pools", json={**body, "defaults": {"default_overlap_for_new_tasks": 0}})
    toloka_field_error(r, "defaults.default_overlap_for_new_tasks")
