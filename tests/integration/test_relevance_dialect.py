"""The Relevance AI front door (``/relevance``) in process: shapes, auth, tenancy, errors,
filters, and Relevance tasks as taskloom jobs.

Requests are made the way relevanceai 0.22-0.26 makes them: ``Authorization:
project:api_key``, GET parameters in the query string (``True``/``False`` as Python's
``str`` writes them, lists as repeated keys, an empty JSON body as ``requests`` sends it),
POST parameters in a JSON body.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from taskloom.api.dialects.relevance import tasks as relevance_tasks
from taskloom.errors import JobFailed
from taskloom.jobs.registry import JobKind
from taskloom.jobs.states import JobStatus
from taskloom.jobs.worker import Worker
from taskloom.sdk.compat.relevance import APIError, Centroids, TaskFailed, TasksClient

from .conftest import BASE_URL

PERSONS = [
    {"_id": "1", "person_characteristics": {"height": 180, "age": 40, "weight": 70}},
    {"_id": "2", "person_characteristics": {"age": 32, "purchases": 10, "visits": 24}},
]
MOVIES = [
    {"_id": "1", "movie_categories": ["sci-fi", "thriller", "comedy"]},
    {"_id": "2", "movie_categories": ["sci-fi", "romance", "drama"]},
]
SHOP = [
    {"_id": "a", "brand": "samsung", "price": 90, "sold": "2021-03-01", "tags": ["tv"]},
    {"_id": "b", "brand": "sony", "price": 120.5, "sold": "2020-12-24", "purchased": True},
    {"_id": "c", "brand": "lg", "price": 45, "sold": "2021-07-15", "purchased": False},
    {"_id": "d", "brand": "samsung", "price": 300, "meta": {"stock": 3}},
]


@pytest.fixture
def app_id(platform) -> str:
    return platform.credentials["app_id"]


RelFactory = Callable[..., httpx.Client]


@pytest.fixture
def make_rel(transport, admin_key: str, app_id: str) -> Iterator[RelFactory]:
    """``make_rel(project, key)``: a raw client of ``/relevance`` with that credential."""
    made: list[httpx.Client] = []

    def make(project: str | None = app_id, key: str | None = admin_key) -> httpx.Client:
        headers = {} if project is None else {"Authorization": f"{project}:{key}"}
        c = httpx.Client(base_url=f"{BASE_URL}/relevance", transport=transport, headers=headers)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def rel(make_rel: RelFactory) -> httpx.Client:
    return make_rel()


def rel_error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``resp`` is the dialect's error envelope with this status (and code)."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"message", "code", "details"}, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body


def get(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
    """A GET as ``requests`` sends it for the SDK: query string plus a ``{}`` JSON body."""
    query = {k: str(v) if isinstance(v, bool) else v for k, v in (params or {}).items()}
    return client.request(
        "GET", path, params=query, content=b"{}", headers={"Content-Type": "application/json"}
    )


def make_dataset(rel: httpx.Client, name: str, docs: list[dict[str, Any]]) -> None:
    r = rel.post("/datasets/create", json={"id": name, "schema": {}})
    assert r.status_code == 200, r.text
    r = rel.post(
        f"/datasets/{name}/documents/bulk_insert",
        json={"documents": docs, "insert_date": False, "overwrite": True, "update_schema": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == len(docs)


def run_jobs(services) -> None:
    """Run every queued job in this thread."""
    w = Worker(services.jobs, services=services)
    while w.run_one():
        pass


# -- auth and tenancy ---------------------------------------------------------------------------


def test_requests_without_valid_project_credentials_answer_401(make_rel, admin_key, app_id):
    rel_error(make_rel(project=None).get("/datasets/list"), 401, "missing_credentials")
    rel_error(make_rel(key="").get("/datasets/list"), 401, "missing_credentials")
    rel_error(make_rel(key="tlk_not_a_key").get("/datasets/list"), 401, "invalid_api_key")
    # a valid key, but a project it cannot act in
    rel_error(make_rel(project="no-such-app").get("/datasets/list"), 401, "invalid_credentials")
    # the native scheme is not this door's
    c = make_rel(project=None)
    r = c.get("/datasets/list", headers={"Authorization": f"Bearer {admin_key}"})
    rel_error(r, 401, "missing_credentials")
    assert make_rel().get("/datasets/list").json() == {"datasets": []}


@pytest.fixture
def bob(services, admin) -> dict[str, Any]:
    return services.auth.create_user(admin, "bob", "bobs-app")


def test_another_tenants_dataset_and_tasks_answer_404(rel, make_rel, bob, services, scope):
    make_dataset(rel, "mine", SHOP)
    job, _ = services.jobs.submit(scope, "noop", {}, dataset="mine")
    theirs = make_rel(project=bob["app"]["id"], key=bob["api_key"])
    assert theirs.get("/datasets/list").json() == {"datasets": []}
    for method, path, body in [
        ("GET", "/datasets/mine/schema", None),
        ("GET", "/datasets/mine/documents/get?id=a", None),
        ("GET", "/datasets/mine/documents/bulk_get?id=a", None),
        ("POST", "/datasets/mine/documents/get_where", {"filters": []}),
        ("POST", "/datasets/mine/documents/bulk_insert", {"documents": [{"_id": "x"}]}),
        ("POST", "/datasets/mine/documents/insert", {"document": {"_id": "x"}}),
        ("POST", "/datasets/mine/documents/bulk_update", {"updates": [{"_id": "a"}]}),
        ("GET", "/datasets/mine/tasks/list", None),
        ("GET", f"/datasets/mine/tasks/{job['id']}/status", None),
        ("POST", "/datasets/mine/tasks/create", {"task_name": "CategoriesEncoder", "fields": []}),
        ("POST", "/datasets/delete", {"dataset_id": "mine"}),
    ]:
        r = theirs.request(method, path, **({} if body is None else {"json": body}))
        rel_error(r, 404, "dataset_not_found")
    # and bob's key cannot be pointed at the admin's project
    r = make_rel(key=bob["api_key"]).get("/datasets/list")
    rel_error(r, 401, "invalid_credentials")
    assert rel.get("/datasets/mine/schema").status_code == 200


# -- datasets ------------------------------------------------------------------------------------


def test_datasets_create_list_schema_delete(rel):
    make_dataset(rel, "people", PERSONS)
    make_dataset(rel, "shop", SHOP)
    rel_error(rel.post("/datasets/create", json={"id": "shop"}), 409, "dataset_exists")
    rel_error(rel.post("/datasets/create", json={"id": "bad name!"}), 422)
    rel_error(rel.post("/datasets/create", json={}), 422, "invalid")
    assert get(rel, "/datasets/list").json() == {"datasets": ["people", "shop"]}
    detailed = rel.post("/datasets/list", json={"dataset_ids": ["shop"], "page_size": 5}).json()
    assert detailed["count"] == 1
    assert detailed["datasets"][0]["dataset_id"] == "shop"
    assert detailed["datasets"][0]["stats"] == {"number_of_documents": 4}

    assert get(rel, "/datasets/people/schema").json() == {
        "person_characteristics": "dict",
        "person_characteristics.age": "numeric",
        "person_characteristics.height": "numeric",
        "person_characteristics.purchases": "numeric",
        "person_characteristics.visits": "numeric",
        "person_characteristics.weight": "numeric",
    }
    rel.post(
        "/datasets/shop/documents/insert",
        json={"document": {"_id": "v", "name_vector_": [1.0, 0.0, 0.5]}, "insert_date": False},
    )
    schema = get(rel, "/datasets/shop/schema").json()
    assert schema["name_vector_"] == {"vector": 3}
    assert (schema["brand"], schema["price"], schema["meta.stock"]) == (
        "text",
        "numeric",
        "numeric",
    )

    assert rel.post("/datasets/delete", json={"dataset_id": "people"}).status_code == 200
    assert get(rel, "/datasets/list").json() == {"datasets": ["shop"]}
    rel_error(get(rel, "/datasets/people/schema"), 404, "dataset_not_found")


# -- documents -----------------------------------------------------------------------------------


def test_bulk_insert_reports_failed_documents_and_writes_the_others(rel):
    rel.post("/datasets/create", json={"id": "ds"})
    r = rel.post(
        "/datasets/ds/documents/bulk_insert",
        json={
            "documents": [
                {"_id": "1", "v_vector_": [1.0, 2.0]},
                {"_id": "2", "v_vector_": [1.0]},  # wrong dimension
                {"_id": "3", "v_vector_": "nope"},
            ],
            "insert_date": True,
            "overwrite": True,
            "update_schema": True,
            "field_transformers": [],
        },
    )
    assert r.status_code == 200
    out = r.json()
    assert out["inserted"] == 1
    assert [f["_id"] for f in out["failed_documents"]] == ["2", "3"]
    assert all(f["error"] for f in out["failed_documents"])
    assert [f["code"] for f in out["failed_documents_detailed"]] == [
        "dimension_mismatch",
        "invalid_vector",
    ]
    doc = get(rel, "/datasets/ds/documents/get", {"id": "1", "include_vector": True}).json()
    assert doc["v_vector_"] == [1.0, 2.0]
    assert isinstance(doc["insert_date_"], str) and doc["insert_date_"].startswith("20")

    # overwrite=False refuses an existing _id, per document
    r = rel.post(
        "/datasets/ds/documents/bulk_insert",
        json={"documents": [{"_id": "1", "x": 1}, {"_id": "9", "x": 2}], "overwrite": False},
    )
    assert r.json()["inserted"] == 1
    assert r.json()["failed_documents"][0]["_id"] == "1"
    rel_error(
        rel.post("/datasets/ds/documents/bulk_insert", json={"documents": {"_id": "x"}}),
        422,
        "invalid_documents",
    )
    r = rel.post(
        "/datasets/ds/documents/bulk_insert",
        json={"documents": [], "field_transformers": [{"field": "x", "remove_html": True}]},
    )
    rel_error(r, 422, "unsupported")


def test_get_bulk_get_and_bulk_update(rel):
    make_dataset(rel, "shop", SHOP)
    doc = get(rel, "/datasets/shop/documents/get", {"id": "d", "include_vector": False}).json()
    assert doc == SHOP[3]
    rel_error(get(rel, "/datasets/shop/documents/get", {"id": "zz"}), 404, "document_not_found")
    rel_error(get(rel, "/datasets/shop/documents/get"), 422, "invalid")

    # ids as repeated query keys, in the order asked; select_fields likewise
    r = get(
        rel, "/datasets/shop/documents/bulk_get", {"id": ["c", "a"], "select_fields": ["brand"]}
    )
    assert r.json() == {
        "documents": [{"_id": "c", "brand": "lg"}, {"_id": "a", "brand": "samsung"}]
    }
    r = get(rel, "/datasets/shop/documents/bulk_get", {"id": "b", "include_vector": False})
    assert r.json() == {"documents": [SHOP[1]]}

    r = rel.post(
        "/datasets/shop/documents/bulk_update",
        json={
            "updates": [{"_id": "a", "price": 95, "meta.stock": 7}, {"_id": "nope", "price": 1}],
            "insert_date": False,
        },
    )
    assert r.status_code == 200
    out = r.json()
    assert (out["inserted"], out["updated"]) == (1, 1)
    assert [f["_id"] for f in out["failed_documents"]] == ["nope"]
    doc = get(rel, "/datasets/shop/documents/get", {"id": "a"}).json()
    assert (doc["price"], doc["meta"]) == (95, {"stock": 7})


def test_get_where_pages_with_a_cursor_until_an_empty_page(rel):
    make_dataset(rel, "shop", SHOP)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body: dict[str, Any] = {"filters": [], "page_size": 3, "select_fields": []}
        if cursor is not None:
            body["cursor"] = cursor
        out = rel.post("/datasets/shop/documents/get_where", json=body).json()
        assert out["count"] == 4
        if not out["documents"]:
            break
        seen += [d["_id"] for d in out["documents"]]
        cursor = out["cursor"]
        assert isinstance(cursor, str)  # always one, as the SDK's loops expect
        pages += 1
    assert seen == ["a", "b", "c", "d"] and pages == 2
    out = get(rel, "/datasets/shop/documents/list", {"page_size": 2}).json()
    assert [d["_id"] for d in out["documents"]] == ["a", "b"]
    rel_error(
        rel.post("/datasets/shop/documents/get_where", json={"sort": [{"price": "asc"}]}),
        422,
        "unsupported",
    )
    rel_error(rel.post("/datasets/shop/documents/get_where", json={"cursor": "x!"}), 422)
    rel_error(rel.post("/datasets/shop/documents/get_where", json={"page_size": 0}), 422)


def _cond(field: str, ftype: str, cond: str, value: Any, **kw: Any) -> dict[str, Any]:
    return {
        "field": field,
        "filter_type": ftype,
        "condition": cond,
        "condition_value": value,
        **kw,
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([_cond("price", "numeric", ">=", 90)], ["a", "b", "d"]),
        ([_cond("price", "numeric", "<", 90)], ["c"]),
        ([_cond("price", "numeric", "==", 120.5)], ["b"]),
        ([_cond("price", "numeric", "!=", 90)], ["b", "c", "d"]),
        ([_cond("price", "numeric", ">", "100")], ["b", "d"]),  # numbers sent as text
        ([_cond("sold", "date", ">=", "2021-01-01")], ["a", "c"]),
        ([_cond("sold", "date", "<", "2021-01-01")], ["b"]),
        ([_cond("brand", "category", "==", "samsung")], ["a", "d"]),
        ([_cond("brand", "exact_match", "!=", "samsung")], ["b", "c"]),
        ([_cond("brand", "category", "==", ["sony", "lg"])], ["b", "c"]),
        ([_cond("brand", "category", "!=", ["sony", "lg"])], ["a", "d"]),
        ([_cond("purchased", "exists", "==", " ")], ["b", "c"]),
        ([_cond("purchased", "exists", "!=", " ")], ["a", "d"]),
        ([_cond("meta.stock", "numeric", ">", 1)], ["d"]),
        ([_cond("ids", "ids", "==", ["d", "a"])], ["a", "d"]),
        ([_cond("ids", "ids", "!=", ["d", "a"])], ["b", "c"]),
        ([_cond("ids", "ids", "==", "c")], ["c"]),
        # all conditions hold...
        (
            [_cond("brand", "category", "==", "samsung"), _cond("price", "numeric", "<", 100)],
            ["a"],
        ),
        # ...and the must_or ones are one OR group
        (
            [
                _cond("brand", "category", "==", "lg", strict="must_or"),
                _cond("brand", "category", "==", "sony", strict="must_or"),
                _cond("price", "numeric", ">", 50),
            ],
            ["b"],
        ),
        ([], ["a", "b", "c", "d"]),
        ({"price": {"$gt": 100}}, ["b", "d"]),  # taskloom's own language passes through
        # text and array conditions
        ([_cond("brand", "contains", "==", "sam")], ["a", "d"]),
        ([_cond("brand", "contains", "!=", "on")], ["a", "c", "d"]),
        ([_cond("tags", "categories", "==", ["tv", "radio"])], ["a"]),
        ([_cond("tags", "categories", "!=", "tv")], ["b", "c", "d"]),
        ([_cond("brand", "regexp", "==", "^s.n")], ["b"]),
        ([_cond("brand", "regexp", "!=", "g$")], ["b"]),
        ([_cond("brand", "wildcard", "==", "s*g")], ["a", "d"]),
        ([_cond("brand", "wildcard", "==", "?g")], ["c"]),
        ([_cond("sold", "wildcard", "==", "2021-0?-*")], ["a", "c"]),
        # must_not conditions must all fail (documents without the field pass)
        ([_cond("brand", "category", "==", "samsung", strict="must_not")], ["b", "c"]),
        (
            [
                _cond("price", "numeric", ">", 100, strict="must_not"),
                _cond("purchased", "exists", "==", "", strict="must_not"),
            ],
            ["a"],
        ),
    ],
)
def test_get_where_translates_relevance_filters(rel, filters, expected):
    make_dataset(rel, "shop", SHOP)
    r = rel.post("/datasets/shop/documents/get_where", json={"filters": filters, "page_size": 50})
    assert r.status_code == 200, r.text
    out = r.json()
    assert sorted(d["_id"] for d in out["documents"]) == expected
    assert out["count"] == len(expected)


@pytest.mark.parametrize(
    ("filters", "status", "code"),
    [
        ([_cond("brand", "text", "==", "sam")], 422, "unsupported_filter"),
        ([_cond("brand", "contains", ">", "sam")], 422, "invalid_filter"),
        ([_cond("brand", "contains", "==", 5)], 422, "invalid_filter"),
        ([_cond("brand", "regexp", "==", "(")], 422, "invalid_filter"),
        ([_cond("tags", "categories", "==", [])], 422, "invalid_filter"),
        ([_cond("brand", "category", "==", "x", strict="never")], 422, "invalid_filter"),
        ([_cond("brand", "category", "~", "x")], 422, "invalid_filter"),
        ([_cond("brand", "category", ">", "x")], 422, "invalid_filter"),
        ([_cond("price", "numeric", ">", "cheap")], 422, "invalid_filter"),
        ([_cond("sold", "date", ">", 2021)], 422, "invalid_filter"),
        ([{"field": "x", "condition": "=="}], 422, "invalid_filter"),
        ([_cond("", "numeric", ">", 1)], 422, "invalid_filter"),
        ([_cond("x", "nonsense", "==", 1)], 422, "invalid_filter"),
        (["price > 3"], 422, "invalid_filter"),
        ("price > 3", 422, "invalid_filter"),
    ],
)
def test_unsupported_or_bad_filters_answer_422_with_a_code(rel, filters, status, code):
    make_dataset(rel, "shop", SHOP)
    r = rel.post("/datasets/shop/documents/get_where", json={"filters": filters})
    err = rel_error(r, status, code)
    assert err["details"]["field"].startswith("filters")


# -- errors --------------------------------------------------------------------------------------


def test_errors_come_in_the_dialect_envelope(rel):
    rel_error(rel.get("/no/such/endpoint"), 404, "unknown_endpoint")
    rel_error(rel.delete("/datasets/list"), 404, "unknown_endpoint")
    r = rel.post("/datasets/create", content=b"{nope", headers={"Content-Type": "application/json"})
    rel_error(r, 400, "malformed_json")
    r = rel.post("/datasets/create", content=b"[1]", headers={"Content-Type": "application/json"})
    rel_error(r, 422, "invalid_body")
    rel_error(rel.post("/datasets/nope/documents/get_where", json={}), 404, "dataset_not_found")


# -- tasks ---------------------------------------------------------------------------------------


def test_every_job_status_has_a_relevance_word_and_finished_means_completed():
    assert set(relevance_tasks.STATUS_WORDS) == {s.value for s in JobStatus}
    assert relevance_tasks.STATUS_WORDS["completed"] == "Finished"
    assert relevance_tasks.STATUS_WORDS["failed"] == "Failed"


def test_task_status_follows_the_job_through_its_states(rel, services, scope):
    make_dataset(rel, "shop", SHOP)

    def status(job_id: str) -> dict[str, Any]:
        r = get(rel, f"/datasets/shop/tasks/{job_id}/status")
        assert r.status_code == 200, r.text
        return r.json()

    registered, _ = services.jobs.submit(scope, "noop", {}, dataset="shop", queue=False)
    assert status(registered["id"])["status"] == "Not Started"
    job, _ = services.jobs.submit(scope, "sleep", {"seconds": 0.0}, dataset="shop")
    first = status(job["id"])
    assert first["status"] == "Pending" and first["job_status"] == "pending"
    assert (first["task_id"], first["task_name"], first["dataset_id"]) == (
        job["id"],
        "sleep",
        "shop",
    )
    claimed = services.jobs.claim("w1", kinds=["sleep"])
    assert claimed["id"] == job["id"]
    assert status(job["id"])["status"] == "Running"
    services.jobs.complete(job["id"], "w1", {"slept": 0})
    done = status(job["id"])
    assert (done["status"], done["progress"], done["result"]) == ("Finished", 100.0, {"slept": 0})

    services.jobs.cancel(scope, registered["id"])
    assert status(registered["id"])["status"] == "Cancelled"
    failing, _ = services.jobs.submit(scope, "noop", {}, dataset="shop", max_attempts=1)
    services.jobs.claim("w2", kinds=["noop"])
    services.jobs.fail(
        failing["id"],
        "w2",
        {"code": "boom", "message": "it broke"},
        retry=False,
        attempts=1,
        max_attempts=1,
    )
    failed = status(failing["id"])
    assert (failed["status"], failed["error"], failed["error_code"]) == (
        "Failed",
        "it broke",
        "boom",
    )

    active = get(rel, "/datasets/shop/tasks/list").json()
    assert active == {"tasks": [], "count": 0}
    every = get(rel, "/datasets/shop/tasks/list", {"show_active_only": False}).json()
    assert every["count"] == 3
    assert {t["task_id"]: t["status"] for t in every["tasks"]} == {
        registered["id"]: "Cancelled",
        job["id"]: "Finished",
        failing["id"]: "Failed",
    }
    pending, _ = services.jobs.submit(scope, "noop", {}, dataset="shop")
    active = get(rel, "/datasets/shop/tasks/list", {"show_active_only": True}).json()
    assert [t["task_id"] for t in active["tasks"]] == [pending["id"]]


def test_task_status_of_an_unknown_task_or_another_datasets_task_is_404(rel, services, scope):
    make_dataset(rel, "shop", SHOP)
    make_dataset(rel, "other", SHOP)
    job, _ = services.jobs.submit(scope, "noop", {}, dataset="other")
    rel_error(get(rel, f"/datasets/shop/tasks/{job['id']}/status"), 404, "task_not_found")
    rel_error(get(rel, "/datasets/shop/tasks/nope/status"), 404, "task_not_found")
    rel_error(get(rel, f"/datasets/gone/tasks/{job['id']}/status"), 404, "dataset_not_found")


def test_create_task_refuses_unknown_names_and_bad_parameters(rel):
    make_dataset(rel, "shop", SHOP)
    url = "/datasets/shop/tasks/create"
    rel_error(rel.post(url, json={"fields": ["x"]}), 422, "missing_field")
    rel_error(rel.post(url, json={"task_name": "Summariser"}), 422, "unknown_task_name")
    r = rel.post(url, json={"task_name": "TextEncoder", "dataset_id": "other", "field": "brand"})
    rel_error(r, 422, "dataset_mismatch")
    r = rel.post(
        url,
        json={
            "task_name": "Clusterer",
            "vector_fields": ["a_vector_", "b_vector_"],
            "n_clusters": 2,
        },
    )
    rel_error(r, 422, "invalid_vector_fields")
    r = rel.post("/datasets/nope/tasks/create", json={"task_name": "Clusterer"})
    rel_error(r, 404, "dataset_not_found")


# -- the compat client, in process ---------------------------------------------------------------


class _Nothing(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _always_fails(ctx: Any, params: Any) -> None:
    raise JobFailed("the data made no sense", code="nonsense")


def test_compat_tasks_client_reports_status_and_stops_polling_on_failure(
    platform, services, scope, transport, admin_key, app_id, rel
):
    make_dataset(rel, "shop", SHOP)
    platform.registry.register(JobKind("always_fails", _Nothing, _always_fails, needs_dataset=True))
    tasks = TasksClient(app_id, admin_key, base_url=BASE_URL, transport=transport)
    job, _ = services.jobs.submit(scope, "always_fails", {}, dataset="shop")
    assert tasks.status("shop", job["id"])["status"] == "Pending"
    assert [t["task_id"] for t in tasks.list("shop")["tasks"]] == [job["id"]]
    run_jobs(services)
    with pytest.raises(TaskFailed) as failed:
        tasks._check_status_until_finish("shop", job["id"], verbose=False, time_between_ping=0)
    assert "the data made no sense" in str(failed.value)
    assert failed.value.task["status"] == "Failed"
    assert tasks.list("shop")["tasks"] == []
    assert tasks.list("shop", show_active_only=False)["count"] == 1

    done, _ = services.jobs.submit(scope, "noop", {}, dataset="shop")
    run_jobs(services)
    final = tasks._check_status_until_finish("shop", done["id"], verbose=True, time_between_ping=0)
    assert final["status"] == "Finished"
    assert tasks._check_status_until_finish("shop", "x", status_checker=False) == {"task_id": "x"}

    with pytest.raises(APIError) as err:
        tasks.create("shop", "Summariser", {})
    assert (err.value.status_code, err.value.code) == (422, "unknown_task_name")
    with pytest.raises(APIError) as err:
        TasksClient(app_id, "tlk_wrong", base_url=BASE_URL, transport=transport).list("shop")
    assert err.value.status_code == 401
    tasks.close()


def test_compat_wait_timeout_bounds_the_wait(services, scope, transport, admin_key, app_id, rel):
    make_dataset(rel, "shop", SHOP)
    job, _ = services.jobs.submit(scope, "noop", {}, dataset="shop")
    with (
        TasksClient(
            app_id, admin_key, base_url=BASE_URL, transport=transport, wait_timeout=0.2
        ) as tasks,
        pytest.raises(TimeoutError),
    ):
        tasks._loop_status_until_finish("shop", job["id"], verbose=False, time_between_ping=0.05)


def test_compat_centroids_carries_the_seed_signatures():
    import inspect

    sig = inspect.signature(Centroids.documents)
    assert list(sig.parameters) == [
        "self",
        "dataset_id",
        "cluster_ids",
        "vector_field",
        "alias",
        "page_size",
        "cursor",
        "page",
        "include_vector",
        "similarity_metric",
    ]
    assert sig.parameters["similarity_metric"].default == "cosine"
    assert sig.parameters["page_size"].default == 5
    sig = inspect.signature(TasksClient.create_cluster_task)
    assert [(p.name, p.default) for p in sig.parameters.values()][2:] == [
        ("vector_field", inspect.Parameter.empty),
        ("n_clusters", inspect.Parameter.empty),
        ("alias", "default"),
        ("refresh", False),
        ("n_iter", 10),
        ("n_init", 5),
        ("status_checker", True),
        ("verbose", True),
        ("time_between_ping", 10),
    ]


# -- encoder tasks -------------------------------------------------------------------------------


def test_a_numeric_encoder_task_encodes_each_key_in_its_recorded_column(rel, services):
    make_dataset(rel, "people", PERSONS)
    r = rel.post(
        "/datasets/people/tasks/create",
        json={
            "task_name": "NumericEncoder",
            "fields": ["person_characteristics"],
            "vector_name": "_vector_",
        },
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"task_id"}
    task = r.json()["task_id"]
    status = get(rel, f"/datasets/people/tasks/{task}/status").json()
    assert (status["status"], status["task_name"]) == ("Pending", "NumericEncoder")
    assert status["params"]["fields"] == ["person_characteristics"]
    run_jobs(services)
    status = get(rel, f"/datasets/people/tasks/{task}/status").json()
    assert status["status"] == "Finished"
    columns = status["result"]["outputs"][0]["columns"]
    assert sorted(columns) == ["age", "height", "purchases", "visits", "weight"]
    docs = get(rel, "/datasets/people/documents/bulk_get", {"id": ["1", "2"]}).json()["documents"]
    for doc, person in zip(docs, PERSONS, strict=True):
        values = person["person_characteristics"]
        assert doc["person_characteristics_vector_"] == [values.get(c, 0) for c in columns]
    assert get(rel, "/datasets/people/schema").json()["person_characteristics_vector_"] == {
        "vector": 5
    }


def test_a_numeric_encoder_task_makes_the_seed_example_exactly(rel, services):
    make_dataset(rel, "people", PERSONS)
    rel.post(
        "/datasets/people/tasks/create",
        json={"task_name": "NumericEncoder", "fields": ["person_characteristics"]},
    )
    run_jobs(services)
    docs = get(rel, "/datasets/people/documents/bulk_get", {"id": ["1", "2"]}).json()["documents"]
    assert [d["person_characteristics_vector_"] for d in docs] == [
        [180, 40, 70, 0, 0],
        [0, 32, 0, 10, 24],
    ]


def test_a_categories_encoder_task_makes_the_seed_example_exactly(rel, services):
    make_dataset(rel, "movies", MOVIES)
    r = rel.post(
        "/datasets/movies/tasks/create",
        json={"task_name": "CategoriesEncoder", "fields": ["movie_categories"]},
    )
    task = r.json()["task_id"]
    run_jobs(services)
    assert get(rel, f"/datasets/movies/tasks/{task}/status").json()["status"] == "Finished"
    docs = get(rel, "/datasets/movies/documents/bulk_get", {"id": ["1", "2"]}).json()["documents"]
    assert [d["movie_categories_vector_"] for d in docs] == [[1, 1, 1, 0, 0], [1, 0, 0, 1, 1]]
    assert get(rel, "/datasets/movies/schema").json()["movie_categories_vector_"] == {"vector": 5}


def test_encoder_task_parameters_are_checked_by_the_job_kind(rel, services):
    make_dataset(rel, "people", PERSONS)
    url = "/datasets/people/tasks/create"
    err = rel_error(rel.post(url, json={"task_name": "NumericEncoder", "fields": []}), 422)
    assert (err["code"], err["details"]["field"]) == ("invalid_params", "fields")
    r = rel.post(url, json={"task_name": "TextEncoder", "field": "x", "colour": "red"})
    err = rel_error(r, 422, "invalid_params")
    assert err["details"]["field"] == "colour"
    # a field the dataset does not have: refused at once, with the fields it has
    r = rel.post(url, json={"task_name": "NumericEncoder", "fields": ["no_such_field"]})
    err = rel_error(r, 422, "unknown_field")
    assert err["details"]["field"] == "fields.0"
    assert "person_characteristics.age" in err["details"]["fields"]
    # a task that fails while it runs reports Failed with the reason: `odd.a` is known (of
    # mixed type), but no document holds an object of numbers there
    make_dataset(rel, "odd", [{"_id": "1", "odd": {"a": "x"}}, {"_id": "2", "odd": {"a": [1]}}])
    r = rel.post(
        "/datasets/odd/tasks/create", json={"task_name": "NumericEncoder", "fields": ["odd"]}
    )
    task = r.json()["task_id"]
    run_jobs(services)
    status = get(rel, f"/datasets/odd/tasks/{task}/status").json()
    assert (status["status"], status["error_code"]) == ("Failed", "NOTHING_TO_ENCODE")
    assert "odd" in status["error"]


# -- vector search -------------------------------------------------------------------------------


def _numpy_scores(metric: str, q: np.ndarray, m: np.ndarray) -> np.ndarray:
    q64, m64 = q.astype(np.float64), m.astype(np.float64)
    if metric == "cosine":
        return (m64 @ q64) / (np.linalg.norm(m64, axis=1) * np.linalg.norm(q64))
    if metric == "dp":
        return m64 @ q64
    if metric == "l2":
        return -np.linalg.norm(m64 - q64, axis=1)
    return -np.abs(m64 - q64).sum(axis=1)


@pytest.fixture
def points(rel) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(40, 6)).astype(np.float32)
    b = rng.normal(size=(40, 3)).astype(np.float32)
    docs = [
        {
            "_id": f"p{i}",
            "group": "even" if i % 2 == 0 else "odd",
            "n": i,
            "a_vector_": a[i].tolist(),
            "b_vector_": b[i].tolist(),
        }
        for i in range(40)
    ]
    make_dataset(rel, "points", docs)
    return {"a": a, "b": b, "ids": np.array([d["_id"] for d in docs]), "docs": docs}


@pytest.mark.parametrize("metric", ["cosine", "dp", "l2", "l1"])
def test_vector_search_ranks_as_numpy_does_under_every_metric(rel, points, metric):
    q = np.random.default_rng(1).normal(size=6).astype(np.float32)
    body = {
        "dataset_id": "points",
        "multivector_query": [{"vector": q.tolist(), "fields": ["a_vector_"]}],
        "page_size": 5,
        "page": 1,
        "similarity_metric": metric,
        "filters": [],
        "min_score": 0,
        "select_fields": [],
        "include_vector": False,
        "include_count": True,
        "approximation_depth": 0,
        "sum_fields": True,
        "positive_document_ids": {},
        "negative_document_ids": {},
        "facets": [],
        "asc": False,
        "keep_search_history": False,
        "hundred_scale": False,
        "search_history_id": None,
        "query": None,
    }
    r = rel.post("/services/search/vector", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    expected = _numpy_scores(metric, q, points["a"])
    order = np.argsort(-expected, kind="stable")[:5]
    assert [h["_id"] for h in out["results"]] == list(points["ids"][order])
    assert np.allclose([h["_search_score"] for h in out["results"]], expected[order], atol=1e-4)
    assert out["count"] == 40
    assert "a_vector_" not in out["results"][0] and out["results"][0]["group"] in ("even", "odd")

    # page 2, with a Relevance filter, only some fields, scores on a hundred scale
    body.update(
        page=2,
        filters=[
            {
                "field": "group",
                "filter_type": "category",
                "condition": "==",
                "condition_value": "odd",
            }
        ],
        select_fields=["n"],
        hundred_scale=True,
    )
    out = rel.post("/services/search/vector", json=body).json()
    odd = np.array([i % 2 == 1 for i in range(40)])
    idx = np.flatnonzero(odd)[np.argsort(-expected[odd], kind="stable")][5:10]
    assert [h["_id"] for h in out["results"]] == list(points["ids"][idx])
    assert set(out["results"][0]) == {"_id", "_search_score", "n"}
    assert np.allclose([h["_search_score"] for h in out["results"]], 100 * expected[idx], atol=1e-2)
    assert out["count"] == 20


def test_vector_search_sums_weighted_fields(rel, points):
    qa = np.random.default_rng(2).normal(size=6).astype(np.float32)
    qb = np.random.default_rng(3).normal(size=3).astype(np.float32)
    r = rel.post(
        "/services/search/vector",
        json={
            "dataset_id": "points",
            "multivector_query": [
                {"vector": qa.tolist(), "fields": {"a_vector_": 0.6}},
                {"vector": qb.tolist(), "fields": {"b_vector_": 0.4}},
            ],
            "page_size": 7,
            "similarity_metric": "cosine",
            "include_vector": True,
        },
    )
    assert r.status_code == 200, r.text
    summed = 0.6 * _numpy_scores("cosine", qa, points["a"]) + 0.4 * _numpy_scores(
        "cosine", qb, points["b"]
    )
    order = np.argsort(-summed, kind="stable")[:7]
    hits = r.json()["results"]
    assert [h["_id"] for h in hits] == list(points["ids"][order])
    assert np.allclose([h["_search_score"] for h in hits], summed[order], atol=1e-4)
    assert np.allclose(hits[0]["a_vector_"], points["a"][order[0]])


def test_vector_search_min_score_zero_means_no_minimum_and_others_apply(rel, points):
    q = points["a"][3]
    body = {
        "dataset_id": "points",
        "multivector_query": [{"vector": q.tolist(), "fields": ["a_vector_"]}],
        "page_size": 40,
        "similarity_metric": "l2",
        "min_score": 0,
    }
    assert len(rel.post("/services/search/vector", json=body).json()["results"]) == 40
    body["min_score"] = -2.5
    hits = rel.post("/services/search/vector", json=body).json()["results"]
    expected = _numpy_scores("l2", q, points["a"])
    assert sorted(h["_id"] for h in hits) == sorted(points["ids"][expected >= -2.5])


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        (
            {"multivector_query": [{"vector": [1.0, 2.0], "fields": ["a_vector_"]}]},
            422,
            "wrong_dimension",
            "multivector_query[0].vector",
        ),
        (
            {"multivector_query": [{"vector": [1.0] * 6, "fields": ["zz_vector_"]}]},
            422,
            "unknown_field",
            "multivector_query[0].fields",
        ),
        (
            {"multivector_query": [{"vector": [1.0] * 6, "fields": ["group"]}]},
            422,
            "not_a_vector_field",
            "multivector_query[0].fields",
        ),
        (
            {"multivector_query": [{"vector": [1.0] * 6}]},
            422,
            "invalid_query",
            "multivector_query[0].fields",
        ),
        ({"multivector_query": []}, 422, "invalid", "multivector_query"),
        ({"similarity_metric": "hamming"}, 422, "unknown_metric", "similarity_metric"),
        ({"positive_document_ids": {"p1": 1}}, 422, "unsupported", "positive_document_ids"),
        ({"facets": ["group"]}, 422, "unsupported", "facets"),
        ({"asc": True}, 422, "unsupported", "asc"),
        ({"sum_fields": False}, 422, "unsupported", "sum_fields"),
        ({"dataset_id": "nope"}, 404, "dataset_not_found", "dataset"),
    ],
)
def test_vector_search_errors_name_the_request_field(rel, points, change, status, code, field):
    body = {
        "dataset_id": "points",
        "multivector_query": [{"vector": [0.5] * 6, "fields": ["a_vector_"]}],
        **change,
    }
    err = rel_error(rel.post("/services/search/vector", json=body), status, code)
    assert err["details"]["field"] == field


# -- clustering and centroids -------------------------------------------------------------------


def _blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    centers = np.array([[8, 0, 0], [0, 8, 0], [0, 0, 8]], dtype=np.float32)
    labels = np.repeat(np.arange(3), 8)
    return (centers[labels] + rng.normal(scale=0.2, size=(24, 3))).astype(np.float32), labels


@pytest.fixture
def clustered(rel, services) -> dict[str, Any]:
    """24 points in three blobs, clustered by a Clusterer task sent the 0.24+ way."""
    x, labels = _blobs()
    make_dataset(
        rel,
        "blobs",
        [
            {"_id": f"b{i:02d}", "blob": int(labels[i]), "p_vector_": x[i].tolist()}
            for i in range(24)
        ],
    )
    r = rel.post(
        "/datasets/blobs/tasks/create",
        json={
            "task_name": "Clusterer",
            "vector_fields": ["p_vector_"],
            "n_clusters": 3,
            "alias": "default",
            "refresh": False,
            "n_iter": 10,
            "n_init": 2,
        },
    )
    assert r.status_code == 200, r.text
    task = r.json()["task_id"]
    run_jobs(services)
    status = get(rel, f"/datasets/blobs/tasks/{task}/status").json()
    assert status["status"] == "Finished", status
    assert status["params"]["vector_field"] == "p_vector_"
    return {"x": x, "labels": labels, "ids": np.array([f"b{i:02d}" for i in range(24)])}


def test_a_clusterer_task_labels_the_blobs_and_stores_centroids(rel, clustered):
    docs = rel.post(
        "/datasets/blobs/documents/get_where", json={"page_size": 50, "include_vector": False}
    ).json()["documents"]
    label_of = {d["_id"]: d["_cluster_"]["p_vector_"]["default"] for d in docs}
    groups: dict[str, set[int]] = {}
    for d in docs:
        groups.setdefault(label_of[d["_id"]], set()).add(d["blob"])
    assert len(groups) == 3 and all(len(g) == 1 for g in groups.values())

    # 0.24+: POST with vector_fields; 0.22: GET with vector_field in the query string
    listed = rel.post(
        "/services/cluster/centroids/list",
        json={
            "dataset_id": "blobs",
            "vector_fields": ["p_vector_"],
            "alias": "default",
            "page_size": 2,
            "cursor": None,
            "include_vector": True,
        },
    ).json()
    assert listed["count"] == 3
    assert [c["_id"] for c in listed["documents"]] == ["cluster-0", "cluster-1"]
    page2 = get(
        rel,
        "/services/cluster/centroids/list",
        {"dataset_id": "blobs", "vector_field": "p_vector_", "cursor": listed["cursor"]},
    ).json()
    assert [c["_id"] for c in page2["documents"]] == ["cluster-2"]
    assert "p_vector_" not in page2["documents"][0]  # include_vector defaults to False
    end = get(
        rel,
        "/services/cluster/centroids/list",
        {"dataset_id": "blobs", "vector_field": "p_vector_", "cursor": page2["cursor"]},
    ).json()
    assert end["documents"] == []

    # each centroid is the mean of its cluster's points
    got = get(
        rel,
        "/services/cluster/centroids/get",
        {
            "dataset_id": "blobs",
            "cluster_ids": ["cluster-2", "cluster-0"],
            "vector_fields": ["p_vector_"],
        },
    ).json()["documents"]
    assert [c["_id"] for c in got] == ["cluster-2", "cluster-0"]
    for c in got:
        members = [i for i, d in enumerate(clustered["ids"]) if label_of[d] == c["_id"]]
        assert np.allclose(c["p_vector_"], clustered["x"][members].mean(axis=0), atol=1e-4)
        assert c["size"] == len(members)


@pytest.mark.parametrize("metric", ["cosine", "dp", "l2", "l1"])
def test_centroid_documents_come_most_similar_first(rel, clustered, metric):
    center = get(
        rel,
        "/services/cluster/centroids/get",
        {"dataset_id": "blobs", "cluster_ids": "cluster-1", "vector_field": "p_vector_"},
    ).json()["documents"][0]["p_vector_"]
    out = rel.post(
        "/services/cluster/centroids/documents",
        json={
            "dataset_id": "blobs",
            "cluster_ids": ["cluster-1"],
            "vector_fields": ["p_vector_"],
            "alias": "default",
            "page_size": 5,
            "cursor": None,
            "page": 1,
            "include_vector": False,
            "similarity_metric": metric,
        },
    ).json()
    docs = out["results"]["cluster-1"]
    assert out["counts"] == {"cluster-1": 8}
    members = [
        d
        for d in rel.post("/datasets/blobs/documents/get_where", json={"page_size": 50}).json()[
            "documents"
        ]
        if d["_cluster_"]["p_vector_"]["default"] == "cluster-1"
    ]
    m = np.array([d["p_vector_"] for d in members], dtype=np.float32)
    expected = _numpy_scores(metric, np.asarray(center, dtype=np.float32), m)
    order = np.argsort(-expected, kind="stable")
    assert [d["_id"] for d in docs] == [members[i]["_id"] for i in order[:5]]
    assert np.allclose([d["_search_score"] for d in docs], expected[order[:5]], atol=1e-4)
    # the next page by cursor, then the empty page
    nxt = rel.post(
        "/services/cluster/centroids/documents",
        json={
            "dataset_id": "blobs",
            "cluster_ids": ["cluster-1"],
            "vector_field": "p_vector_",
            "page_size": 5,
            "cursor": out["cursor"],
            "similarity_metric": metric,
        },
    ).json()
    assert [d["_id"] for d in nxt["results"]["cluster-1"]] == [members[i]["_id"] for i in order[5:]]
    last = rel.post(
        "/services/cluster/centroids/documents",
        json={
            "dataset_id": "blobs",
            "cluster_ids": ["cluster-1"],
            "vector_field": "p_vector_",
            "cursor": nxt["cursor"],
        },
    ).json()
    assert last["results"] == {"cluster-1": []}
    # closest / furthest, as the SDK's clustering helpers ask for them
    body = {
        "dataset_id": "blobs",
        "vector_fields": ["p_vector_"],
        "alias": "default",
        "cluster_ids": ["cluster-1"],
        "centroid_vector_fields": ["p_vector_"],
        "select_fields": [],
        "approx": 0,
        "sum_fields": True,
        "page_size": 2,
        "page": 1,
        "similarity_metric": metric,
        "filters": [],
        "facets": [],
        "min_score": 0,
        "include_vector": False,
        "include_count": True,
        "include_facets": False,
    }
    closest = rel.post("/services/cluster/centroids/list_closest_to_center", json=body).json()
    assert [d["_id"] for d in closest["results"]["cluster-1"]] == [
        members[i]["_id"] for i in order[:2]
    ]
    furthest = rel.post(
        "/services/cluster/centroids/list_furthest_from_center", json={**body, "page": 2}
    ).json()
    assert [d["_id"] for d in furthest["results"]["cluster-1"]] == [
        members[i]["_id"] for i in order[::-1][2:4]
    ]


def test_inserted_centroids_and_metadata(rel, clustered):
    r = rel.post(
        "/services/cluster/centroids/insert",
        json={
            "dataset_id": "blobs",
            "cluster_centers": [
                {"_id": "left", "p_vector_": [8.0, 0.0, 0.0]},
                {"_id": "right", "p_vector_": [0.0, 8.0, 0.0]},
            ],
            "vector_fields": ["p_vector_"],
            "alias": "mine",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["n_clusters"] == 2
    listed = rel.post(
        "/services/cluster/centroids/list",
        json={
            "dataset_id": "blobs",
            "vector_fields": ["p_vector_"],
            "alias": "mine",
            "include_vector": True,
        },
    ).json()
    assert [(c["_id"], c["p_vector_"]) for c in listed["documents"]] == [
        ("left", [8.0, 0.0, 0.0]),
        ("right", [0.0, 8.0, 0.0]),
    ]
    ref = {"dataset_id": "blobs", "vector_field": "p_vector_", "alias": "mine"}
    # 0.22 reads metadata with GET; 0.24+ with POST and no metadata; both write with POST
    assert get(rel, "/services/cluster/centroids/metadata", ref).json() == {"metadata": {}}
    written = rel.post(
        "/services/cluster/centroids/metadata", json={**ref, "metadata": {"note": "by hand"}}
    ).json()
    assert written == {"metadata": {"note": "by hand"}}
    assert rel.post("/services/cluster/centroids/metadata", json=ref).json() == written
    assert get(rel, "/services/cluster/centroids/metadata", ref).json() == written
    # the default clustering is untouched
    assert rel.post(
        "/services/cluster/centroids/metadata",
        json={"dataset_id": "blobs", "vector_fields": ["p_vector_"]},
    ).json() == {"metadata": {}}


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "field"),
    [
        ("list", {"alias": "nope"}, 404, "clustering_not_found", "alias"),
        ("get", {"cluster_ids": ["cluster-9"]}, 404, "cluster_not_found", "cluster_ids"),
        (
            "documents",
            {"cluster_ids": ["cluster-0"], "similarity_metric": "jaccard"},
            422,
            "unknown_metric",
            "similarity_metric",
        ),
        ("documents", {"cluster_ids": []}, 422, "invalid_cluster_ids", "cluster_ids"),
        (
            "list",
            {"vector_fields": ["p_vector_", "q_vector_"]},
            422,
            "invalid_vector_fields",
            "vector_fields",
        ),
        ("list", {"vector_fields": None}, 422, "missing_field", "vector_fields"),
        ("list", {"vector_fields": ["blob"]}, 422, "not_a_vector_field", "vector_fields"),
        (
            "insert",
            {"cluster_centers": [{"_id": "x", "p_vector_": [1.0]}]},
            422,
            "dimension_mismatch",
            "cluster_centers[0].p_vector_",
        ),
        (
            "insert",
            {"cluster_centers": [], "vector_fields": ["blob"]},
            422,
            "not_a_vector_field",
            "vector_fields",
        ),
        ("metadata", {"metadata": ["not", "an", "object"]}, 422, "invalid", "metadata"),
        ("list_closest_to_center", {"filters": [{"field": "blob"}]}, 422, "unsupported", "filters"),
        ("list", {"dataset_id": "nope"}, 404, "dataset_not_found", "dataset"),
    ],
)
def test_centroid_errors(rel, clustered, path, body, status, code, field):
    full = {"dataset_id": "blobs", "vector_fields": ["p_vector_"], **body}
    err = rel_error(rel.post(f"/services/cluster/centroids/{path}", json=full), status, code)
    assert err["details"]["field"] == field


# -- robustness ------------------------------------------------------------------------------------

GARBAGE = [None, b"{", b"[]", b"null", b'"x"', b"{}", b'{"x": []}', b'{"a":' * 50]
ODD_BODIES = [
    b'{"dataset_id": "shop", "vector_fields": [1], "cluster_ids": {"a": 1}}',
    b'{"dataset_id": "shop", "vector_field": "price", "multivector_query": [{"vector": "x"}]}',
    b'{"documents": [null, 1, "x"], "updates": [[]], "document": [], "filters": [{}]}',
    b'{"id": ["a", "b"], "page_size": "many", "cursor": 5, "task_name": ["x"]}',
    b'{"dataset_id": "shop", "vector_fields": ["p_vector_"], "cluster_centers": {"x": "y"}}',
]


def test_no_relevance_request_makes_a_500(make_rel, rel):
    """Every dialect route, with and without credentials, with garbage bodies and odd path
    values: always a 4xx in the dialect's envelope, or a 200."""
    from fastapi.routing import APIRoute

    from taskloom.api.dialects import relevance
    from taskloom.api.dialects.relevance import services as relevance_services

    make_dataset(rel, "shop", SHOP)
    routes = [
        (method, prefix + route.path)
        for prefix, router in (("", relevance.router), ("/relevance", relevance_services.router))
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]
    assert len(routes) >= 25
    anonymous = make_rel(project=None)
    checked = 0

    def check(client: httpx.Client, method: str, url: str, body: bytes | None) -> None:
        nonlocal checked
        kw: dict[str, Any] = {} if body is None else {"content": body}
        if body is not None:
            kw["headers"] = {"Content-Type": "application/json"}
        r = client.request(method, url.removeprefix("/relevance"), **kw)
        checked += 1
        assert r.status_code < 500, (method, url, body, r.text)
        if r.status_code >= 400:
            rel_error(r, r.status_code)
        else:
            assert r.status_code == 200

    for method, path in routes:

        def fill(value: str, path: str = path) -> str:
            return re.sub(r"\{[^}]+\}", value, path)

        for value, body in itertools.product(["shop", "nope"], GARBAGE + ODD_BODIES):
            check(rel, method, fill(value), body)
        for value in ["a", "%00", "x" * 300, "%2F"]:
            check(rel, method, fill(value), b"{}")
        check(anonymous, method, fill("shop"), b"{}")
        check(rel, method, fill("shop") + "?page_size=x&include_vector=maybe&id=", None)
    assert checked > 400
