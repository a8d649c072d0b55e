"""Tenancy: an app is a wall. Another tenant's objects answer 404 and never show in lists."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from taskloom.errors import Forbidden, NotFound, Unauthorized
from taskloom.scope import Scope
from taskloom.store.tables import api_keys

from .conftest import error_of


@pytest.fixture
def bob(http) -> dict:
    """A second user, made by the admin over HTTP: an app and a key limited to it."""
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["api_key"].startswith("tlk_")
    assert out["key"]["app_id"] == out["app"]["id"]
    return out


def seed(client, dataset: str, marker: str) -> dict:
    """A dataset with documents and two jobs (one queued, one registered) in the caller's app."""
    assert client.post("/v1/datasets", json={"name": dataset}).status_code == 201
    r = client.post(
        f"/v1/datasets/{dataset}/documents",
        json={"documents": [{"_id": "doc", "owner": marker, "v_vector_": [1.0, 2.0]}]},
    )
    assert r.json() == {"inserted": 1, "failed": []}
    queued = client.post(
        "/v1/jobs", json={"kind": "noop", "dataset": dataset, "idempotency_key": f"k-{dataset}"}
    )
    registered = client.post("/v1/jobs", json={"kind": "noop", "queue": False})
    assert queued.status_code == registered.status_code == 201
    return {"dataset": dataset, "job": queued.json()["id"], "registered": registered.json()["id"]}


def assert_walled_off(client, theirs: dict) -> None:
    """``client`` can neither see nor touch ``theirs``."""
    ds, job = theirs["dataset"], theirs["job"]
    assert ds not in {d["name"] for d in client.get("/v1/datasets").json()["data"]}
    for method, path, body in [
        ("GET", f"/v1/datasets/{ds}", None),
        ("GET", f"/v1/datasets/{ds}/schema", None),
        ("GET", f"/v1/datasets/{ds}/documents", None),
        ("GET", f"/v1/datasets/{ds}/documents/doc", None),
        ("POST", f"/v1/datasets/{ds}/documents/query", {}),
        ("POST", f"/v1/datasets/{ds}/documents/get", {"ids": ["doc"]}),
        ("POST", f"/v1/datasets/{ds}/documents/count", {}),
        ("POST", f"/v1/datasets/{ds}/documents/delete", {"ids": ["doc"]}),
        ("POST", f"/v1/datasets/{ds}/documents", {"documents": [{"_id": "doc", "owner": "x"}]}),
        ("PATCH", f"/v1/datasets/{ds}/documents", {"documents": [{"_id": "doc", "owner": "x"}]}),
        ("DELETE", f"/v1/datasets/{ds}/documents/doc", None),
        ("DELETE", f"/v1/datasets/{ds}", None),
    ]:
        r = client.request(method, path, **({} if body is None else {"json": body}))
        assert error_of(r, 404, "dataset_not_found")
    for method, path in [
        ("GET", f"/v1/jobs/{job}"),
        ("GET", f"/v1/jobs/{job}/events"),
        ("GET", f"/v1/jobs/{job}/stream"),
        ("POST", f"/v1/jobs/{job}/cancel"),
        ("POST", f"/v1/jobs/{theirs['registered']}/start"),
        ("DELETE", f"/v1/jobs/{theirs['registered']}"),
    ]:
        assert error_of(client.request(method, path), 404, "job_not_found")
    listed = {j["id"] for j in client.get("/v1/jobs", params={"limit": 1000}).json()["data"]}
    assert job not in listed and theirs["registered"] not in listed
    assert client.get("/v1/jobs", params={"dataset": ds}).json()["data"] == []
    # a job cannot be hung under theirs, nor run on their dataset
    r = client.post("/v1/jobs", json={"kind": "noop", "parent_id": job})
    assert error_of(r, 404, "job_not_found")
    r = client.post("/v1/jobs", json={"kind": "noop", "dataset": ds})
    assert error_of(r, 404, "dataset_not_found")


def assert_intact(client, mine: dict, marker: str) -> None:
    ds = mine["dataset"]
    doc = client.get(f"/v1/datasets/{ds}/documents/doc").json()
    assert doc == {"_id": "doc", "owner": marker, "v_vector_": [1.0, 2.0]}
    assert client.get(f"/v1/jobs/{mine['job']}").json()["status"] == "pending"
    assert client.get(f"/v1/jobs/{mine['registered']}").json()["status"] == "registered"


def test_two_users_do_not_see_each_other(http, make_http, bob):
    bob_http = make_http(bob["api_key"])
    # the same dataset name in both apps is two datasets
    admins = seed(http, "shared-name", "admin")
    bobs = seed(bob_http, "shared-name", "bob")
    a_only = seed(http, "admin-only", "admin")
    b_only = seed(bob_http, "bob-only", "bob")

    assert_walled_off(bob_http, a_only)
    assert_walled_off(http, b_only)
    # same name: each sees its own
    assert_intact(http, admins, "admin")
    assert_intact(bob_http, bobs, "bob")
    assert admins["job"] != bobs["job"]  # the same idempotency key: it is per app
    for theirs, client in ((admins, bob_http), (bobs, http)):
        for path in (f"/v1/jobs/{theirs['job']}", f"/v1/jobs/{theirs['job']}/events"):
            error_of(client.get(path), 404, "job_not_found")
        error_of(client.post(f"/v1/jobs/{theirs['job']}/cancel"), 404, "job_not_found")
    # a filter over one app's dataset counts only that app's documents
    r = bob_http.post("/v1/datasets/shared-name/documents/count", json={"filter": {}})
    assert r.json() == {"count": 1}
    r = http.post("/v1/datasets/shared-name/documents/count", json={"filter": {"owner": "bob"}})
    assert r.json() == {"count": 0}
    # nothing that was refused changed anything
    assert_intact(http, a_only, "admin")
    assert_intact(bob_http, b_only, "bob")
    assert {d["name"] for d in bob_http.get("/v1/datasets").json()["data"]} == {
        "shared-name",
        "bob-only",
    }
    bob_jobs = {j["id"] for j in bob_http.get("/v1/jobs").json()["data"]}
    assert bob_jobs == {bobs["job"], bobs["registered"], b_only["job"], b_only["registered"]}
    # and bob is not an admin
    error_of(bob_http.post("/v1/users", json={"name": "eve"}), 403, "forbidden")
    assert bob_http.get("/v1/me").json()["is_admin"] is False
    assert bob_http.get("/v1/me").json()["app_id"] == bob["app"]["id"]


def test_a_key_limited_to_one_app(http, make_http, services, admin):
    default_app = http.get("/v1/me").json()["app_id"]
    r = http.post("/v1/apps", json={"name": "second"})
    assert r.status_code == 201
    second = r.json()["id"]
    r = http.post("/v1/keys", json={"name": "second-only", "app_id": second})
    assert r.status_code == 201 and r.json()["app_id"] == second
    limited = make_http(r.json()["api_key"])

    # the admin's own key reaches both apps, through X-Taskloom-App
    in_second = make_http(app_id=second)
    mine = seed(http, "main", "default")
    theirs = seed(in_second, "other", "second")
    assert in_second.get("/v1/me").json()["app_id"] == second
    assert_walled_off(in_second, mine)
    assert_walled_off(http, theirs)

    # the limited key acts in its app
    assert limited.get("/v1/me").json()["app_id"] == second
    assert_intact(limited, theirs, "second")
    assert {a["id"] for a in limited.get("/v1/apps").json()["data"]} == {second}
    # ... and cannot reach the other one, whatever it asks for
    assert_walled_off(limited, mine)
    pointed = make_http(limited.headers["Authorization"].split()[1], app_id=default_app)
    err = error_of(pointed.get("/v1/datasets"), 404, "app_not_found")
    assert err["details"]["field"] == "app_id"
    error_of(pointed.get(f"/v1/jobs/{mine['job']}"), 404)
    error_of(pointed.post("/v1/datasets", json={"name": "sneaky"}), 404, "app_not_found")
    error_of(limited.post("/v1/keys", json={"app_id": default_app}), 404, "app_not_found")
    error_of(limited.post("/v1/apps", json={"name": "more"}), 403, "forbidden")
    assert "sneaky" not in {d["name"] for d in http.get("/v1/datasets").json()["data"]}
    # keys it makes are limited to its app too
    r = limited.post("/v1/keys", json={"name": "child"})
    assert r.status_code == 201 and r.json()["app_id"] == second
    # an app id that does not exist, or belongs to someone else
    error_of(make_http(app_id="0" * 32).get("/v1/datasets"), 404, "app_not_found")
    bob = services.auth.create_user(admin, "bob")
    error_of(make_http(app_id=bob["app"]["id"]).get("/v1/datasets"), 404, "app_not_found")
    error_of(make_http(bob["api_key"], app_id=second).get("/v1/datasets"), 404)


def test_services_scope_objects_by_app(services, scope, admin):
    other_app = services.auth.create_app(admin, "other")
    other = services.auth.scope(admin, other_app["id"])
    assert other == Scope(app_id=other_app["id"], user_id=admin.user_id)
    services.datasets.create(scope, "d")
    services.documents.insert(scope, "d", [{"_id": "x"}])
    job, _ = services.jobs.submit(scope, "noop", dataset="d", idempotency_key="k")
    with pytest.raises(NotFound):
        services.documents.get(other, "d", "x")
    with pytest.raises(NotFound):
        services.jobs.get(other, job["id"])
    with pytest.raises(NotFound):
        services.jobs.cancel(other, job["id"])
    with pytest.raises(NotFound):
        services.jobs.delete(other, job["id"])
    with pytest.raises(NotFound):
        services.jobs.events(other, job["id"])
    other_job, created = services.jobs.submit(other, "noop", idempotency_key="k")
    assert created and other_job["id"] != job["id"]
    assert services.jobs.list(other)["data"] == [other_job]
    assert services.datasets.list(other) == []
    assert services.jobs.get(scope, job["id"])["status"] == "pending"


def test_revoked_keys_are_401(http, make_http):
    r = http.post("/v1/keys", json={"name": "temp"})
    key, key_id = r.json()["api_key"], r.json()["id"]
    temp = make_http(key)
    assert temp.get("/v1/datasets").status_code == 200
    revoked = http.delete(f"/v1/keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    for _ in range(2):  # and it stays revoked (no cached answer lets it in)
        error_of(temp.get("/v1/datasets"), 401, "invalid_api_key")
        error_of(temp.post("/v1/jobs", json={"kind": "noop"}), 401)
    listed = {k["id"]: k for k in http.get("/v1/keys").json()["data"]}
    assert listed[key_id]["revoked"] is True
    assert http.get("/v1/datasets").status_code == 200  # the admin's key still works


def test_a_user_can_revoke_only_their_own_keys(services, admin, make_http, http):
    bob = services.auth.create_user(admin, "bob")
    bob_http = make_http(bob["api_key"])
    admin_key_id = http.get("/v1/me").json()["key_id"]
    error_of(bob_http.delete(f"/v1/keys/{admin_key_id}"), 404, "key_not_found")
    assert http.get("/v1/me").status_code == 200
    assert {k["id"] for k in bob_http.get("/v1/keys").json()["data"]} == {bob["key"]["id"]}
    with pytest.raises(Forbidden):
        services.auth.create_user(services.auth.authenticate(bob["api_key"]), "eve")
    # bob revokes his own key: he is locked out
    assert bob_http.delete(f"/v1/keys/{bob['key']['id']}").status_code == 200
    with pytest.raises(Unauthorized):
        services.auth.authenticate(bob["api_key"])
    error_of(bob_http.get("/v1/keys"), 401)


def test_api_keys_are_stored_hashed(services, admin, admin_key, http):
    made = [http.post("/v1/keys", json={"name": f"k{i}"}).json()["api_key"] for i in range(3)]
    made.append(services.auth.create_user(admin, "bob")["api_key"])
    secrets = [admin_key, *made]
    with services.auth.store.read() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(api_keys))]
    assert len(rows) == len(secrets)
    stored = " ".join(str(v) for row in rows for v in row.values())
    for secret in secrets:
        assert secret not in stored
        assert secret[12:] not in stored  # not even the part after the shown prefix
        assert hashlib.sha256(secret.encode()).hexdigest() in {r["key_hash"] for r in rows}
    # what the API shows of a key never includes it either
    listed = http.get("/v1/keys").json()["data"]
    assert all("api_key" not in k and "key_hash" not in k for k in listed)
    assert all(len(k["prefix"]) <= 12 for k in listed)
