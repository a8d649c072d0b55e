"""Cursors and limits of the native listings: what the database cannot hold is a 4xx
(issue 11). A cursor whose key is an integer beyond 64 bits went to SQLite as a parameter
and came back as a 500 (``OverflowError``)."""

from __future__ import annotations

import base64
import json

import pytest

from taskloom.errors import Invalid
from taskloom.store.paging import CursorFormat, check_limit

from .conftest import error_of


def cursor(*values: object) -> str:
    # json, not orjson: orjson refuses to write integers past 64 bits, a client need not
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


@pytest.mark.parametrize("key", [2**63, 2**64 - 1, -(2**63) - 1, 10**30])
def test_a_cursor_key_beyond_64_bits_is_not_a_cursor(key):
    with pytest.raises(Invalid) as ei:
        CursorFormat("d", int).decode(cursor("d", key))
    assert (ei.value.code, ei.value.field, ei.value.status_code) == (
        "invalid_cursor",
        "cursor",
        422,
    )
    assert CursorFormat("d", int).decode(cursor("d", 2**63 - 1)) == (2**63 - 1,)


@pytest.mark.parametrize("limit", [-5, 0, 1001, 2**64, True, 1.5, "5", None])
def test_check_limit_refuses_what_is_not_a_page_size(limit):
    with pytest.raises(Invalid) as ei:
        check_limit(limit)
    assert (ei.value.code, ei.value.field) == ("invalid_limit", "limit")
    assert check_limit(5) == 5


def test_a_documents_cursor_beyond_64_bits_over_http(http):
    http.post("/v1/datasets", json={"name": "pg"}).raise_for_status()
    r = http.post("/v1/datasets/pg/documents", json={"documents": [{"_id": "a"}, {"_id": "b"}]})
    assert r.status_code == 200, r.text
    for key in (2**63, 2**64 - 1):
        r = http.get("/v1/datasets/pg/documents", params={"cursor": cursor("d", key)})
        assert error_of(r, 422, "invalid_cursor")["details"]["field"] == "cursor"
        r = http.post("/v1/datasets/pg/documents/query", json={"cursor": cursor("d", key)})
        assert error_of(r, 422, "invalid_cursor")["details"]["field"] == "cursor"
    r = http.get("/v1/datasets/pg/documents", params={"page_size": 1})
    nxt = r.json()["cursor"]
    r = http.get("/v1/datasets/pg/documents", params={"cursor": nxt, "page_size": 1})
    assert [d["_id"] for d in r.json()["data"]] == ["b"]


@pytest.mark.parametrize("size", [-5, 0, 10_001, 2**63, 2**64])
def test_page_size_out_of_range_is_4xx(http, size):
    http.post("/v1/datasets", json={"name": "pg"}).raise_for_status()
    r = http.get("/v1/datasets/pg/documents", params={"page_size": size})
    assert error_of(r, 422)["details"]["field"] == "page_size"
    r = http.post("/v1/datasets/pg/documents/query", json={"page_size": size})
    assert error_of(r, 422)["details"]["field"] == "page_size"


def test_an_integer_past_64_bits_in_a_query_parameter_is_not_a_500(http):
    """``after`` of a job's events was handed to SQLite as is: OverflowError, a 500. The
    store now answers what PostgreSQL's "bigint out of range" answers: 422 invalid_value."""
    http.post("/v1/datasets", json={"name": "pg"}).raise_for_status()
    docs = [{"_id": str(i), "v_vector_": [1.0, float(i)]} for i in range(4)]
    http.post("/v1/datasets/pg/documents", json={"documents": docs}).raise_for_status()
    r = http.post(
        "/v1/jobs",
        json={
            "kind": "cluster",
            "dataset": "pg",
            "params": {"vector_field": "v_vector_", "n_clusters": 2},
        },
    )
    assert r.status_code in (200, 201, 202), r.text
    job = r.json()["id"]
    for after in (2**63, 2**64):
        r = http.get(f"/v1/jobs/{job}/events", params={"after": after})
        if r.status_code != 200:  # PostgreSQL compares a bigint with a numeric and finds none
            error_of(r, 422, "invalid_value")
        else:
            assert r.json()["data"] == []
