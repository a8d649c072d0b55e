"""Errors through HTTP: every error is a 4xx in the one envelope, never a 500."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from taskloom.api.app import create_app
from taskloom.errors import Invalid, InvalidTransition, NotFound, Unauthorized
from taskloom.runtime import Platform
from taskloom.sdk.transport import EmbeddedTransport

from .conftest import BASE_URL, error_of

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def ds(http) -> str:
    assert http.post("/v1/datasets", json={"name": "ds"}).status_code == 201
    r = http.post("/v1/datasets/ds/documents", json={"documents": [{"_id": "a", "x": 1}]})
    assert r.status_code == 200
    return "ds"


# -- malformed and mistyped bodies ----------------------------------------------------------------

JSON_ROUTES = [
    ("POST", "/v1/jobs"),
    ("POST", "/v1/datasets"),
    ("POST", "/v1/datasets/ds/documents"),
    ("PATCH", "/v1/datasets/ds/documents"),
    ("POST", "/v1/datasets/ds/documents/query"),
    ("POST", "/v1/datasets/ds/documents/get"),
    ("POST", "/v1/datasets/ds/documents/delete"),
    ("POST", "/v1/datasets/ds/documents/count"),
    ("POST", "/v1/apps"),
    ("POST", "/v1/keys"),
    ("POST", "/v1/users"),
]


def test_malformed_json_is_400(http, ds):
    for method, path in JSON_ROUTES:
        for body in (b"{", b'{"name": }', b"{'a': 1}", b'{"a": 1} x', b"\xff\xfe", b"[1,]"):
            r = http.request(method, path, content=body, headers=JSON)
            err = error_of(r, 400, "malformed_json")
            assert err["details"]["field"] == "body"
    assert http.get("/v1/datasets").json()["count"] == 1


WRONG_TYPES = [
    ("POST", "/v1/datasets", {"name": 5}, "name"),
    ("POST", "/v1/datasets", {}, "name"),
    ("POST", "/v1/datasets", {"name": "x", "extra": 1}, "extra"),
    ("POST", "/v1/datasets", {"name": "has space"}, "name"),
    ("POST", "/v1/datasets/ds/documents", {"documents": {"_id": "a"}}, "documents"),
    ("POST", "/v1/datasets/ds/documents", {}, "documents"),
    ("POST", "/v1/datasets/ds/documents", {"documents": [], "overwrite": "yes"}, "overwrite"),
    ("POST", "/v1/datasets/ds/documents", {"documents": [], "skip_invalid": 1}, "skip_invalid"),
    ("POST", "/v1/datasets/ds/documents", {"documents": [], "bogus": 1}, "bogus"),
    ("POST", "/v1/datasets/ds/documents", [{"_id": "a"}], "body"),
    ("POST", "/v1/datasets/ds/documents", {"documents": [[1]]}, "documents[0]"),
    ("POST", "/v1/datasets/ds/documents", {"documents": [{"_id": [1]}]}, "documents[0]._id"),
    ("PATCH", "/v1/datasets/ds/documents", {"documents": [{"x": 1}]}, "documents[0]._id"),
    ("PATCH", "/v1/datasets/ds/documents", {"documents": "x"}, "documents"),
    ("PATCH", "/v1/datasets/ds/documents", {}, "documents"),
    ("POST", "/v1/datasets/ds/documents/query", {"page_size": "x"}, "page_size"),
    ("POST", "/v1/datasets/ds/documents/query", {"page_size": 0}, "page_size"),
    ("POST", "/v1/datasets/ds/documents/query", {"include_vector": "maybe"}, "include_vector"),
    ("POST", "/v1/datasets/ds/documents/query", {"cursor": 5}, "cursor"),
    ("POST", "/v1/datasets/ds/documents/query", {"cursor": "%%%"}, "cursor"),
    ("POST", "/v1/datasets/ds/documents/query", {"select": "x"}, "select"),
    ("POST", "/v1/datasets/ds/documents/get", {"ids": "a"}, "ids"),
    ("POST", "/v1/datasets/ds/documents/get", {"ids": [None]}, "ids[0]"),
    ("POST", "/v1/datasets/ds/documents/get", {}, "ids"),
    ("POST", "/v1/datasets/ds/documents/delete", {}, "ids"),
    ("POST", "/v1/datasets/ds/documents/delete", {"ids": [{"a": 1}]}, "ids[0]"),
    ("POST", "/v1/jobs", {"kind": 5}, "kind"),
    ("POST", "/v1/jobs", {}, "kind"),
    ("POST", "/v1/jobs", {"kind": "noop", "params": "x"}, "params"),
    ("POST", "/v1/jobs", {"kind": "noop", "max_attempts": "x"}, "max_attempts"),
    ("POST", "/v1/jobs", {"kind": "noop", "queue": "later"}, "queue"),
    ("POST", "/v1/jobs", {"kind": "noop", "idempotency_key": ""}, "idempotency_key"),
    ("POST", "/v1/jobs", {"kind": "noop", "what": 1}, "what"),
    ("POST", "/v1/jobs", {"kind": "nope"}, "kind"),
    ("POST", "/v1/jobs", {"kind": "sleep", "params": {}}, "params.seconds"),
    ("POST", "/v1/jobs", {"kind": "sleep", "params": {"seconds": [1]}}, "params.seconds"),
    ("POST", "/v1/apps", {"name": ""}, "name"),
    ("POST", "/v1/keys", {"name": 5}, "name"),
    ("POST", "/v1/users", {"name": None}, "name"),
    ("GET", "/v1/jobs?limit=abc", None, "limit"),
    ("GET", "/v1/jobs?limit=0", None, "limit"),
    ("GET", "/v1/jobs?active_only=perhaps", None, "active_only"),
    ("GET", "/v1/jobs?status=done", None, "status"),
    ("GET", "/v1/jobs?cursor=xyz", None, "cursor"),
    ("GET", "/v1/jobs/x/events?after=-1", None, "after"),
    ("GET", "/v1/datasets/ds/documents?page_size=x", None, "page_size"),
    ("GET", "/v1/datasets/ds/documents?include_vector=maybe", None, "include_vector"),
    ("GET", "/v1/datasets/ds/documents?filter=%7B", None, "filter"),
    ("GET", '/v1/datasets/ds/documents?filter={"a":{"$x":1}}', None, "filter.a.$x"),
    ("GET", "/v1/datasets/ds/documents/a?include_vector=2x", None, "include_vector"),
]


def test_wrong_types_are_422_with_the_field(http, ds):
    wrong = []
    for method, path, body, field in WRONG_TYPES:
        r = http.request(method, path, **({} if body is None else {"json": body}))
        err = error_of(r, 422)
        got = err["details"]["field"]
        # a value that fits no member of a union also names the member types: ids[0].str
        if got != field and not got.startswith(f"{field}."):
            wrong.append(f"{method} {path} {body}: field {got!r}, expected {field!r}")
    assert not wrong, "\n".join(wrong)
    assert http.get("/v1/datasets").json()["count"] == 1
    assert http.get("/v1/jobs").json()["data"] == []


def test_not_json_at_all(http, ds):
    r = http.post("/v1/datasets", content=b"name=x", headers={"Content-Type": "text/plain"})
    assert error_of(r, 422)["details"]["field"] == "body"
    r = http.post("/v1/datasets/ds/documents", content=b"")
    assert error_of(r, 422, "missing_body")["details"]["field"] == "body"
    r = http.post("/v1/datasets", content=b"[]", headers=JSON)
    assert error_of(r, 422)["details"]["field"] == "body"


def test_bad_filters_unknown_kinds_and_params(http, ds):
    r = http.post("/v1/datasets/ds/documents/query", json={"filter": {"x": {"$regex": "(a"}}})
    assert error_of(r, 422, "invalid_filter")["details"]["field"] == "filter.x.$regex"
    r = http.post("/v1/jobs", json={"kind": "train-everything"})
    assert error_of(r, 422, "unknown_job_kind")["details"]["field"] == "kind"
    r = http.post("/v1/jobs", json={"kind": "sleep", "params": {"seconds": 1e9}})
    assert error_of(r, 422, "invalid_params")["details"]["field"] == "params.seconds"


def test_not_found_answers(http, ds):
    assert error_of(http.get("/v1/datasets/nope"), 404, "dataset_not_found")
    assert error_of(http.get("/v1/datasets/nope/documents"), 404, "dataset_not_found")
    assert error_of(http.get("/v1/datasets/ds/documents/zz"), 404, "document_not_found")
    assert error_of(http.get("/v1/jobs/zz"), 404, "job_not_found")
    assert error_of(http.get("/v1/jobs/zz/events"), 404, "job_not_found")
    assert error_of(http.get("/v1/jobs/zz/stream"), 404, "job_not_found")
    assert error_of(http.delete("/v1/keys/zz"), 404, "key_not_found")


def test_unknown_routes_and_methods_answer_json(http, make_http):
    for client in (http, make_http(None)):
        for path in ("/nope", "/v1/nope", "/v1/datasets/ds/nope/deeper", "/v2/jobs"):
            error_of(client.get(path), 404, "not_found")
    error_of(http.put("/v1/datasets"), 405, "method_not_allowed")
    error_of(http.delete("/v1/jobs"), 405, "method_not_allowed")


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer tlk_wrong",
        "Basic dXNlcjpwYXNz",
        "tlk_test_admin_key_0123456789abcdef",  # a key without the scheme
    ],
)
def test_missing_or_invalid_keys_are_401(transport, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=headers) as c:
        for method, path in [
            ("GET", "/v1/me"),
            ("GET", "/v1/datasets"),
            ("POST", "/v1/datasets"),
            ("GET", "/v1/datasets/ds/documents"),
            ("POST", "/v1/jobs"),
            ("GET", "/v1/jobs"),
            ("GET", "/v1/jobs/x"),
            ("GET", "/v1/keys"),
            ("POST", "/v1/users"),
        ]:
            err = error_of(c.request(method, path, json={}), 401)
            assert err["code"] in ("unauthorized", "invalid_api_key")
        assert c.get("/v1/health").status_code == 200  # the one open route


def test_the_sdk_raises_typed_errors(sdk):
    with pytest.raises(NotFound) as ei:
        sdk.dataset("nope").count()
    assert (ei.value.code, ei.value.field, ei.value.status_code) == (
        "dataset_not_found",
        "dataset",
        404,
    )
    sdk.create_dataset("s")
    with pytest.raises(Invalid) as ei:
        sdk.dataset("s").insert([{"v_vector_": []}])
    assert ei.value.code == "invalid_documents"
    assert ei.value.field == "documents[0].v_vector_"
    assert ei.value.details["failed"][0]["code"] == "empty_vector"
    job = sdk.jobs.submit("noop", queue=False).cancel()
    with pytest.raises(InvalidTransition):
        job.cancel()
    with pytest.raises(Invalid) as ei:
        sdk.jobs.submit("nope")
    assert ei.value.field == "kind"
    sdk._http.headers["Authorization"] = "Bearer wrong"
    with pytest.raises(Unauthorized):
        sdk.list_datasets()


# -- body size ------------------------------------------------------------------------------------


@pytest.fixture
def small_app(platform: Platform) -> Iterator[FastAPI]:
    """A second app on the same database whose bodies are limited to 4 KiB."""
    settings = platform.settings.model_copy(update={"max_body_bytes": 4096})
    other = Platform(settings, workers=0, lock=None).start()
    yield create_app(other)
    other.stop()


@pytest.fixture
def small(small_app: FastAPI, admin_key: str) -> Iterator[httpx.Client]:
    t = EmbeddedTransport(small_app)
    c = httpx.Client(
        base_url=BASE_URL, transport=t, headers={"Authorization": f"Bearer {admin_key}"}
    )
    yield c
    c.close()
    t.close()


def test_oversized_bodies_are_413(small, services, scope):
    assert small.post("/v1/datasets", json={"name": "big"}).status_code == 201
    docs = [{"text": "x" * 100} for _ in range(30)]  # about 3.6 KB of JSON
    r = small.post("/v1/datasets/big/documents", json={"documents": docs})
    assert r.status_code == 200, r.text

    docs = [{"text": "x" * 100} for _ in range(50)]
    err = error_of(small.post("/v1/datasets/big/documents", json={"documents": docs}), 413)
    assert err["code"] == "payload_too_large"
    assert err["details"] == {"field": "body", "max_bytes": 4096}
    error_of(small.post("/v1/jobs", content=b"{" + b" " * 5000 + b"}", headers=JSON), 413)
    assert services.documents.count(scope, "big") == 30


def test_oversized_bodies_without_a_length_are_413(small_app, admin_key):
    """A chunked body (no Content-Length) is cut off as it arrives."""

    async def chunks():
        for _ in range(10):
            yield b" " * 1000

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=small_app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {admin_key}", **JSON},
        ) as c:
            return await c.post("/v1/datasets", content=chunks())

    r = asyncio.run(go())
    assert "content-length" not in {k.lower() for k in r.request.headers}
    err = error_of(r, 413, "payload_too_large")
    assert err["details"]["max_bytes"] == 4096


# -- never a 500 ----------------------------------------------------------------------------------

GARBAGE = [None, b"{", b"[]", b"null", b'"x"', b"{}", b'{"x": []}', b'{"a":' * 50]


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def test_no_request_makes_a_500(app, http, make_http, ds):
    """Every route, with and without a key, with garbage bodies and odd path values."""
    routes = _routes(app)
    assert len(routes) >= 20
    anonymous = make_http(None)
    checked = 0

    def check(client, method, url, body):
        nonlocal checked
        kw = {} if body is None else {"content": body, "headers": JSON}
        r = client.request(method, url, **kw)
        checked += 1
        assert r.status_code < 500, (method, url, body, r.text)
        if r.status_code >= 400:
            error_of(r, r.status_code)

    for method, path in routes:
        fill = lambda value, path=path: re.sub(r"\{[^}]+\}", value, path)  # noqa: E731
        for value, body in itertools.product(["ds", "nope"], GARBAGE):
            check(http, method, fill(value), body)
        for value in ["a", "%00", "x" * 300, "..", "%2F"]:
            check(http, method, fill(value), b"{}")
        check(anonymous, method, fill("ds"), b"{}")
    assert checked > 300


def test_nul_characters_never_make_a_500(http, ds):
    """PostgreSQL cannot store NUL in text; SQLite can. Either way the answer is not a 500."""
    nul = "a\u0000b"
    r = http.post("/v1/datasets/ds/documents", json={"documents": [{"_id": "n", "t": nul}]})
    if r.status_code == 200:
        assert http.get("/v1/datasets/ds/documents/n").json() == {"_id": "n", "t": nul}
    else:
        error_of(r, 422, "invalid_value")
        error_of(http.get("/v1/datasets/ds/documents/n"), 404)
    requests = [
        ("POST", "/v1/datasets/ds/documents", {"documents": [{"_id": nul}]}),
        ("PATCH", "/v1/datasets/ds/documents", {"documents": [{"_id": "a", "x": nul}]}),
        ("POST", "/v1/datasets/ds/documents/count", {"filter": {"x": nul}}),
        ("POST", "/v1/datasets/ds/documents/count", {"filter": {"_id": {"$lt": nul}}}),
        ("POST", "/v1/datasets/ds/documents/get", {"ids": [nul]}),
        ("POST", "/v1/datasets/ds/documents/delete", {"ids": [nul]}),
        ("POST", "/v1/jobs", {"kind": "noop", "idempotency_key": nul}),
        ("POST", "/v1/jobs", {"kind": "noop", "dataset": nul}),
        ("POST", "/v1/jobs", {"kind": nul}),
        ("POST", "/v1/datasets", {"name": nul}),
        ("POST", "/v1/apps", {"name": nul}),
        ("POST", "/v1/keys", {"name": nul}),
        ("GET", "/v1/jobs?dataset=%00", None),
        ("GET", "/v1/jobs?kind=%00", None),
        ("GET", "/v1/jobs/%00", None),
        ("GET", "/v1/datasets/%00", None),
        ("GET", "/v1/datasets/ds/documents/%00", None),
        ("DELETE", "/v1/keys/%00", None),
    ]
    for method, path, body in requests:
        r = http.request(method, path, **({} if body is None else {"json": body}))
        assert r.status_code < 500, (method, path, r.text)
        if r.status_code >= 400:
            error_of(r, r.status_code)
    assert http.get("/v1/datasets/ds/documents/a").json()["x"] in (1, nul)


# -- nesting depth (wire.MAX_DEPTH for documents, wire.MAX_BODY_DEPTH for bodies) -----------------


def _nested(levels: int, leaf: object = 1) -> object:
    """``levels`` objects one inside the other: ``{"a": {"a": ... leaf}}``."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def _deep_body(levels: int) -> bytes:
    """``{"documents": [{"_id": "deep", "f": <levels objects>}]}`` as raw JSON (json.dumps
    itself recurses)."""
    inner = '{"a":' * levels + "1" + "}" * levels
    return ('{"documents": [{"_id": "deep", "f": ' + inner + "}]}").encode()


def test_documents_nest_at_most_64_levels(http, ds):
    # the document is level 1, so "f" may hold 63 levels of objects
    ok = {"_id": "ok", "f": _nested(63)}
    r = http.post("/v1/datasets/ds/documents", json={"documents": [ok]})
    assert r.status_code == 200, r.text
    assert http.get("/v1/datasets/ds/documents/ok").json() == ok
    for levels in (64, 100, 254, 300, 1000, 1021):
        r = http.post("/v1/datasets/ds/documents", content=_deep_body(levels), headers=JSON)
        err = error_of(r, 400)
        assert err["code"] in ("too_deep", "malformed_json"), err
        if levels < 1000:  # orjson itself refuses past 1024 levels: "not valid JSON"
            assert err["code"] == "too_deep"
            field = err["details"]["field"]
            assert field.startswith("documents[0].f.a.a."), field
            assert field.count(".") >= 64 - 1
        error_of(http.get("/v1/datasets/ds/documents/deep"), 404)
    # skip_invalid does not make a too-deep batch half-written: the whole request is refused
    body = {"documents": [{"_id": "fine"}, {"_id": "deep", "f": _nested(70)}], "skip_invalid": True}
    assert error_of(http.post("/v1/datasets/ds/documents", json=body), 400, "too_deep")
    error_of(http.get("/v1/datasets/ds/documents/fine"), 404)
    # arrays count like objects, and a partial update is checked the same way
    deep_list: object = 1
    for _ in range(80):
        deep_list = [deep_list]
    r = http.patch("/v1/datasets/ds/documents", json={"documents": [{"_id": "ok", "l": deep_list}]})
    err = error_of(r, 400, "too_deep")
    assert err["details"]["field"].startswith("documents[0].l[0][0]")
    dotted = {"_id": "ok", ".".join(["d"] * 70): 1}
    r = http.patch("/v1/datasets/ds/documents", json={"documents": [dotted]})
    assert error_of(r, 400, "too_deep")["details"]["max_depth"] == 64
    assert http.get("/v1/datasets/ds/documents/ok").json() == ok


def test_the_sdk_binary_batch_is_checked_too(sdk, http):
    from taskloom import wire

    http.post("/v1/datasets", json={"name": "bin"})
    frame = wire.encode({"documents": [{"_id": "x", "f": _nested(200), "v_vector_": [1.0]}]})
    r = http.post(
        "/v1/datasets/bin/documents", content=frame, headers={"Content-Type": wire.MEDIA_TYPE}
    )
    assert error_of(r, 400, "too_deep")["details"]["field"].startswith("documents[0].f.a")


@pytest.mark.parametrize("levels", [200, 5_000, 100_000])
def test_deep_bodies_anywhere_are_400(http, ds, levels):
    """Bodies parsed by FastAPI (stdlib json recurses) and by the routes (orjson, then the
    depth check) both answer 400 in the envelope, with the field."""
    deep = ("[" * levels + "]" * levels).encode()
    for method, path, body in [
        ("POST", "/v1/datasets", b'{"name": ' + deep + b"}"),
        ("POST", "/v1/jobs", b'{"kind": "noop", "params": ' + deep + b"}"),
        ("POST", "/v1/datasets/ds/documents/count", b'{"filter": ' + deep + b"}"),
        ("POST", "/v1/datasets/ds/documents", b'{"documents": ' + deep + b"}"),
        ("POST", "/v1/keys", b'{"name": ' + deep + b"}"),
    ]:
        r = http.request(method, path, content=body, headers=JSON)
        assert r.status_code in (400, 422), (path, r.text)
        err = error_of(r, r.status_code)
        assert err["details"].get("field"), (path, err)
        if levels > 200:
            assert r.status_code == 400 and err["code"] in ("malformed_json", "too_deep"), err


def test_relevance_and_nclue_doors_refuse_deep_documents_and_bodies(transport, admin_key, platform):
    app_id = platform.credentials["app_id"]
    rel = httpx.Client(
        base_url=f"{BASE_URL}/relevance",
        transport=transport,
        headers={"Authorization": f"{app_id}:{admin_key}"},
    )
    assert rel.post("/datasets/create", json={"id": "deep", "schema": {}}).status_code == 200
    for levels in (70, 300, 1000):
        body = _deep_body(levels).replace(b'{"documents"', b'{"overwrite": true, "documents"')
        r = rel.post("/datasets/deep/documents/bulk_insert", content=body, headers=JSON)
        assert r.status_code == 400, r.text
        err = r.json()
        assert set(err) == {"message", "code", "details"}, err
        assert err["code"] in ("too_deep", "malformed_json")
        if levels < 1000:
            assert err["code"] == "too_deep"
            assert err["details"]["field"].startswith("documents[0].f.a")
    r = rel.get("/datasets/deep/documents/get", params={"id": "deep"})
    assert r.status_code == 404, r.text

    from taskloom.sdk.ncp import NcpSigner

    creds = platform.credentials
    nclue = httpx.Client(
        base_url=BASE_URL,
        transport=transport,
        auth=NcpSigner(creds["ncp_access_key"], creds["ncp_secret_key"]),
    )
    deep = b"[" * 500 + b"]" * 500
    r = nclue.post("/nclue/api/v1/tasks", content=b'{"task_name": ' + deep + b"}", headers=JSON)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["errorCode"] == "100" and err["code"] == "too_deep", err
    assert err["field"].startswith("task_name[0][0]")
    rel.close()
    nclue.close()


# -- strict account bodies ---------------------------------------------------------------------


def test_account_bodies_take_their_json_types_only(http):
    for body, field in [
        ({"name": "k", "hmac": 0}, "hmac"),
        ({"name": "k", "hmac": 1}, "hmac"),
        ({"name": "k", "hmac": "true"}, "hmac"),
        ({"name": "k", "hmac": None}, "hmac"),
        ({"name": 5}, "name"),
        ({"name": "k", "app_id": 7}, "app_id"),
    ]:
        err = error_of(http.post("/v1/keys", json=body), 422, "invalid")
        assert err["details"]["field"] == field, (body, err)
    error_of(http.post("/v1/apps", json={"name": 1}), 422, "invalid")
    error_of(http.post("/v1/users", json={"name": "u", "app_name": True}), 422, "invalid")
    assert [k["name"] for k in http.get("/v1/keys").json()["data"]].count("k") == 0
    made = http.post("/v1/keys", json={"name": "k", "hmac": True})
    assert made.status_code == 201 and made.json()["ncp_access_key"]
    plain = http.post("/v1/keys", json={"name": "k2", "hmac": False})
    assert plain.status_code == 201 and "ncp_access_key" not in plain.json()


# -- NUL characters in ids and names ---------------------------------------------------------------


def test_nul_in_ids_and_field_names_is_refused_with_the_field(http, ds):
    nul = "a\u0000b"
    for doc, field in [
        ({"_id": nul}, "documents[0]._id"),
        ({"_id": "n1", nul: 1}, "documents[0].a\\u0000b"),
        ({"_id": "n2", "meta": {nul: 1}}, "documents[0].meta.a\\u0000b"),
        ({"_id": "n3", f"{nul}_vector_": [1.0]}, "documents[0].a\\u0000b_vector_"),
    ]:
        r = http.post("/v1/datasets/ds/documents", json={"documents": [doc]})
        err = error_of(r, 422, "invalid_documents")
        assert err["details"]["field"] == field, err
        assert err["details"]["failed"][0]["code"] in ("invalid_id", "invalid_field_name")
    # with skip_invalid the others are written and the NUL one is listed
    body = {"documents": [{"_id": "good"}, {"_id": nul}], "skip_invalid": True}
    r = http.post("/v1/datasets/ds/documents", json=body)
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    assert r.json()["failed"][0]["code"] == "invalid_id"
    r = http.patch("/v1/datasets/ds/documents", json={"documents": [{"_id": "a", nul: 2}]})
    error_of(r, 422, "invalid_documents")
    assert sorted(http.get("/v1/datasets/ds/schema").json()) == ["x"]
    # names: apps, keys, users (display names, but no control characters)
    for path, body, field in [
        ("/v1/apps", {"name": nul}, "name"),
        ("/v1/keys", {"name": nul}, "name"),
        ("/v1/users", {"name": nul}, "name"),
        ("/v1/users", {"name": "u", "app_name": nul}, "app_name"),
    ]:
        err = error_of(http.post(path, json=body), 422, "invalid_name")
        assert err["details"]["field"] == field
    assert all("\u0000" not in a["name"] for a in http.get("/v1/apps").json()["data"])
    # display names keep their spaces and punctuation
    assert http.post("/v1/apps", json={"name": "Team A's app (2024)"}).status_code == 201
