"""The native crowd API, the workers' side: assignments through the requester's key and the
worker's own token, review, aggregation; and the SDK's ``c.crowd`` on the embedded app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from taskloom.errors import Invalid, NotFound, RateLimited

from .conftest import error_of
from .crowd_helpers import (
    POOL,
    SPEC,
    label_all,
    make_pool,
    open_pool_with_tasks,
    register,
    run_jobs,
    task,
)


@pytest.fixture
def bob(http: httpx.Client, make_http: Any) -> httpx.Client:
    """A second tenant's client."""
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    assert r.status_code == 201, r.text
    return make_http(r.json()["api_key"])


# -- workers and assignments ----------------------------------------------------------------------


def test_workers_label_and_the_requester_reviews(http):
    pool = open_pool_with_tasks(http, 2, overlap=2)
    ann, cid = register(http, "ann"), register(http, "cid")
    assert ann["token"].startswith("tlw_") and ann["name"] == "ann"

    r = http.post(f"/v1/crowd/workers/{ann['id']}/assignments", json={"pool_id": pool["id"]})
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["status"], a["pool_id"], a["user_id"]) == ("ACTIVE", pool["id"], ann["id"])
    assert len(a["tasks"]) == 1 and set(a["tasks"][0]) >= {"id", "input_values"}
    # wrong answers are refused and leave the assignment active
    submit = f"/v1/crowd/workers/{ann['id']}/assignments/{a['id']}/submit"
    err = error_of(
        http.post(submit, json={"solutions": [{"output_values": {"label": "owl"}}]}), 422
    )
    assert "label" in err["details"]["field"]
    err = error_of(http.post(submit, json={"solutions": []}), 422)
    assert err["details"]["field"] == "solutions"
    err = error_of(http.post(submit, json={"solutions": [{"label": "cat"}]}), 422)
    assert err["details"]["field"] == "solutions[0].output_values"
    assert http.get(f"/v1/crowd/assignments/{a['id']}").json()["status"] == "ACTIVE"
    r = http.post(submit, json={"solutions": [{"output_values": {"label": "cat"}}]})
    assert r.status_code == 200 and r.json()["status"] == "SUBMITTED"
    assert r.json()["solutions"] == [{"output_values": {"label": "cat"}}]

    done = label_all(http, ann["id"], pool["id"], lambda t: "cat")
    done += label_all(http, cid["id"], pool["id"], lambda t: "dog")
    assert len(done) == 3  # ann had one already: each worker gets each task once
    submitted = http.get(
        "/v1/crowd/assignments", params={"pool_id": pool["id"], "status": "SUBMITTED"}
    ).json()
    assert submitted["count"] == 4
    assert {x["user_id"] for x in submitted["data"]} == {ann["id"], cid["id"]}

    ok_ = http.patch(f"/v1/crowd/assignments/{a['id']}", json={"status": "ACCEPTED"})
    assert ok_.status_code == 200 and ok_.json()["status"] == "ACCEPTED"
    cids = [x["id"] for x in submitted["data"] if x["user_id"] == cid["id"]]
    r = http.patch(
        f"/v1/crowd/assignments/{cids[0]}",
        json={"status": "REJECTED", "public_comment": "look again"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["public_comment"]) == ("REJECTED", "look again")
    err = error_of(http.patch(f"/v1/crowd/assignments/{a['id']}", json={"status": "REJECTED"}), 422)
    assert err["details"]["field"] == "public_comment"  # a rejection says why
    again = {"status": "REJECTED", "public_comment": "no"}
    error_of(http.patch(f"/v1/crowd/assignments/{a['id']}", json=again), 409)
    err = error_of(
        http.patch(f"/v1/crowd/assignments/{a['id']}", json={"status": "SUBMITTED"}), 422
    )
    assert err["details"]["field"] == "status"
    listed = http.get("/v1/crowd/assignments", params={"status": "ACCEPTED"}).json()
    assert [x["id"] for x in listed["data"]] == [a["id"]]
    error_of(http.get("/v1/crowd/assignments", params={"status": "DONE"}), 422)


def test_a_skipped_assignment_is_not_issued_to_that_worker_again(http):
    pool = open_pool_with_tasks(http, 1, overlap=1)
    ann = register(http, "ann")
    base = f"/v1/crowd/workers/{ann['id']}/assignments"
    a = http.post(base, json={"pool_id": pool["id"]}).json()
    r = http.post(f"{base}/{a['id']}/skip")
    assert r.status_code == 200 and r.json()["status"] == "SKIPPED"
    assert http.post(base, json={"pool_id": pool["id"]}).status_code == 204
    error_of(
        http.post(
            f"{base}/{a['id']}/submit", json={"solutions": [{"output_values": {"label": "cat"}}]}
        ),
        409,
    )
    # the task went back to the pool: another worker gets it
    cid = register(http, "cid")
    r = http.post(f"/v1/crowd/workers/{cid['id']}/assignments", json={"pool_id": pool["id"]})
    assert r.status_code == 201 and r.json()["tasks"][0]["id"] == a["tasks"][0]["id"]


def test_a_closed_pool_issues_nothing(http):
    pool = make_pool(http)
    http.post("/v1/crowd/tasks", json=task(pool["id"], overlap=1))
    ann = register(http, "ann")
    r = http.post(f"/v1/crowd/workers/{ann['id']}/assignments", json={"pool_id": pool["id"]})
    assert error_of(r, 409)["code"] == "pool_not_open"
    error_of(http.post("/v1/crowd/workers/nobody/assignments", json={"pool_id": pool["id"]}), 404)
    err = error_of(http.post(f"/v1/crowd/workers/{ann['id']}/assignments", json={}), 422)
    assert err["details"]["field"] == "pool_id"


def test_a_worker_token_reaches_only_its_own_worker(http, bob, make_http):
    pool = open_pool_with_tasks(http, 2, overlap=2)
    ann, cid = register(http, "ann"), register(http, "cid")

    def as_worker(token: str | None, scheme: str = "Worker") -> httpx.Client:
        client = make_http(None)
        if token is not None:
            client.headers["Authorization"] = f"{scheme} {token}"
        return client

    w_ann, w_cid = as_worker(ann["token"]), as_worker(cid["token"])
    me = w_ann.get("/v1/crowd/me").json()
    assert me["worker"]["id"] == ann["id"] and "token" not in me["worker"]
    assert [p["id"] for p in me["pools"]] == [pool["id"]]
    shown = me["pools"][0]
    assert (shown["public_name"], shown["private_name"]) == ("Cats", "batch 1")
    assert "defaults" not in shown and "status" not in shown  # the requester's settings
    r = w_ann.post("/v1/crowd/me/assignments", json={"pool_id": pool["id"]})
    assert r.status_code == 201 and r.json()["user_id"] == ann["id"]
    a = r.json()
    assert a["task_spec"]["output_spec"]["label"]["allowed_values"] == ["cat", "dog"]  # the form
    # cid cannot touch ann's assignment, by token or through the requester's routes
    body = {"solutions": [{"output_values": {"label": "cat"}}]}
    error_of(w_cid.post(f"/v1/crowd/me/assignments/{a['id']}/submit", json=body), 404)
    error_of(w_cid.post(f"/v1/crowd/me/assignments/{a['id']}/skip"), 404)
    error_of(
        http.post(f"/v1/crowd/workers/{cid['id']}/assignments/{a['id']}/submit", json=body),
        404,
    )
    r = w_ann.post(f"/v1/crowd/me/assignments/{a['id']}/submit", json=body)
    assert r.status_code == 200 and r.json()["status"] == "SUBMITTED"
    # the token opens nothing else: no requester routes, no other /v1 route
    for path in ("/v1/crowd/projects", f"/v1/crowd/assignments/{a['id']}", "/v1/datasets"):
        error_of(w_ann.get(path), 401)
    error_of(as_worker(ann["token"], "Bearer").get("/v1/crowd/pools"), 401)
    for token in (None, "tlw_wrong", ""):
        anon = as_worker(token)
        error_of(anon.get("/v1/crowd/me"), 401)
        error_of(anon.post("/v1/crowd/me/assignments", json={"pool_id": pool["id"]}), 401)
    error_of(http.get("/v1/crowd/me"), 401)  # an API key is not a worker token

    # a worker of another app sees none of this app's pools
    dan = bob.post("/v1/crowd/workers", json={"name": "dan"}).json()
    w_dan = as_worker(dan["token"])
    assert w_dan.get("/v1/crowd/me").json()["pools"] == []
    error_of(w_dan.post("/v1/crowd/me/assignments", json={"pool_id": pool["id"]}), 404)
    error_of(
        bob.post(f"/v1/crowd/workers/{ann['id']}/assignments", json={"pool_id": pool["id"]}), 404
    )
    error_of(bob.get(f"/v1/crowd/assignments/{a['id']}"), 404)
    assert bob.get("/v1/crowd/assignments").json()["count"] == 0


# -- aggregation ----------------------------------------------------------------------------------


def test_aggregating_a_pool(http, services):
    pool = open_pool_with_tasks(http, 3, overlap=3)
    workers = [register(http, n) for n in ("ann", "cid", "eve")]
    truth = {}
    for w in workers:

        def answer(t: dict, name: str = w["name"]) -> str:
            truth.setdefault(
                t["id"], "cat" if t["input_values"]["image"].endswith("0.png") else "dog"
            )
            if name == "eve":
                return "dog" if truth[t["id"]] == "cat" else "cat"
            return truth[t["id"]]

        assert len(label_all(http, w["id"], pool["id"], answer)) == 3

    r = http.post(
        "/v1/crowd/aggregations",
        json={"pool_id": pool["id"], "method": "majority_vote", "fields": ["label"]},
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "crowd_aggregate"
    run_jobs(services)
    res = http.get(f"/v1/crowd/aggregations/{job['id']}/results")
    assert res.status_code == 200, res.text
    rows = res.json()["data"]
    assert {row["task_id"]: row["output_values"]["label"] for row in rows} == truth
    assert all(row["pool_id"] == pool["id"] for row in rows)
    assert all(row["confidence"] == pytest.approx(2 / 3) for row in rows)

    one = next(iter(truth))
    r = http.post("/v1/crowd/aggregations", json={"task_id": one, "method": "majority_vote"})
    assert r.status_code == 200, r.text
    assert r.json()["output_values"] == {"label": truth[one]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "pool_id"),
        ({"pool_id": "p", "task_id": "t"}, "task_id"),
        ({"pool_id": "p", "method": "vibes"}, "method"),
        ({"pool_id": "p", "fields": "label"}, "fields"),
        ({"pool_id": "p", "fields": []}, "fields"),
        ({"pool_id": "p", "weights": {}}, "weights"),
    ],
)
def test_aggregation_requests_name_the_bad_field(http, body, field):
    err = error_of(http.post("/v1/crowd/aggregations", json=body), 422)
    assert err["details"]["field"] == field, err


def test_aggregating_what_is_not_there(http, bob):
    pool = make_pool(http)
    error_of(http.post("/v1/crowd/aggregations", json={"pool_id": "nope"}), 404)
    error_of(bob.post("/v1/crowd/aggregations", json={"pool_id": pool["id"]}), 404)
    error_of(http.get("/v1/crowd/aggregations/nope/results"), 404)


# -- the SDK --------------------------------------------------------------------------------------


def test_the_sdk_for_requesters_and_workers(sdk, services):
    crowd = sdk.crowd
    project = crowd.create_project("Cats", **SPEC)
    assert project.status == "ACTIVE" and crowd.get_project(project.id).id == project.id
    pool = crowd.create_pool(project.id, **POOL)
    assert [p.id for p in crowd.list_pools(project_id=project.id)] == [pool.id]

    with pytest.raises(Invalid) as ei:
        crowd.create_task({"pool_id": pool.id, "input_values": {}}, allow_defaults=True)
    assert (ei.value.code, ei.value.field) == ("VALUE_REQUIRED", "input_values.image")
    with pytest.raises(NotFound):
        crowd.create_task(task("nope", overlap=1))
    one = crowd.create_task(task(pool.id, 0, overlap=2))
    assert one.pool_id == pool.id and one["overlap"] == 2

    items = [task(pool.id, 1), {"pool_id": pool.id, "input_values": {"image": 1}}]
    with pytest.raises(Invalid) as ei:
        crowd.create_tasks(items, allow_defaults=True)
    assert ei.value.code == "invalid_items"
    assert set(ei.value.details["validation_errors"]) == {"1"}
    batch = crowd.create_tasks(items, allow_defaults=True, skip_invalid_items=True)
    assert list(batch.items) == [0] and not batch.ok
    assert batch.validation_errors[1]["input_values.image"]["code"] == "STRING_EXPECTED"

    op = crowd.create_tasks_async([task(pool.id, 2), task(pool.id, 3)], allow_defaults=True)
    run_jobs(services)
    op = op.wait(timeout=20)
    assert op.status == "completed" and op.details["success_count"] == 2
    assert [e["success"] for e in op.log()] == [True, True]
    assert crowd.get_operation(op.id).id == op.id
    assert len(list(pool.tasks())) == 4

    assert pool.open().status == "OPEN" and pool.changed is True
    assert crowd.open_pool(pool.id).changed is False

    ann = crowd.register_worker(name="ann")
    assert ann.token and ann.token.startswith("tlw_")
    w = crowd.worker(ann.id)
    seen = []
    while (a := w.request_assignment(pool.id)) is not None:
        seen.append(a.tasks[0]["id"])
        if len(seen) == 1:
            assert w.skip(a.id).status == "SKIPPED"
        else:
            assert w.submit(a.id, [{"label": "cat"}]).status == "SUBMITTED"
    assert len(seen) == 4 and len(set(seen)) == 4

    by_token = crowd.worker(token=ann.token)
    assert by_token.me()["worker"]["id"] == ann.id
    assert by_token.request_assignment(pool.id) is None

    cid = crowd.register_worker(name="cid")
    wc = crowd.worker(cid.id)
    while (a := wc.request_assignment(pool.id)) is not None:
        wc.submit(a.id, [{"output_values": {"label": "cat"}}])

    submitted = list(crowd.list_assignments(pool_id=pool.id, status="SUBMITTED"))
    assert len(submitted) == 3 + 4
    submitted[0].accept()
    assert submitted[0].status == "ACCEPTED"
    assert crowd.reject_assignment(submitted[1].id, "no").status == "REJECTED"
    assert crowd.get_assignment(submitted[1].id).public_comment == "no"

    agg = crowd.aggregate_pool(pool.id, method="majority_vote", fields=["label"])
    run_jobs(services)
    results = agg.wait(timeout=20).results()
    assert len(results) == 4
    assert {r["output_values"]["label"] for r in results} == {"cat"}
    assert crowd.aggregate_task(seen[1], method="majority_vote")["output_values"] == {
        "label": "cat"
    }

    skill = crowd.create_skill("care")
    assert crowd.set_user_skill(skill.id, ann.id, 70)["value"] == 70
    assert [s["user_id"] for s in crowd.list_user_skills(skill_id=skill.id)] == [ann.id]
    assert [s.id for s in crowd.list_skills()] == [skill.id]
    assert pool.close().status == "CLOSED" and pool.archive().status == "ARCHIVED"
    assert project.archive().status == "ARCHIVED"


def test_the_sdk_raises_rate_limited(sdk, services, monkeypatch):
    monkeypatch.setattr(services.crowd.settings, "crowd_tasks_per_minute", 1)
    crowd = sdk.crowd
    pool = crowd.create_pool(crowd.create_project("p", **SPEC).id, **POOL)
    crowd.create_task(task(pool.id, overlap=1))
    with pytest.raises(RateLimited):
        crowd.create_task(task(pool.id, overlap=1))
