"""``top_k`` beyond the vectors a field holds: the answer has what there is (issue 11), as a
filter that leaves fewer documents already did; native API, SDK and the Relevance door."""

from __future__ import annotations

import httpx
import pytest

from .conftest import BASE_URL, error_of


@pytest.fixture
def one_vector(http) -> None:
    assert http.post("/v1/datasets", json={"name": "tiny"}).status_code == 201
    docs = [{"_id": "only", "e_vector_": [1.0, 0.0]}, {"_id": "text", "t": "no vector"}]
    r = http.post("/v1/datasets/tiny/documents", json={"documents": docs})
    assert r.status_code == 200, r.text


def test_top_k_larger_than_the_field_answers_what_there_is(http, one_vector):
    body = {"vector": [1.0, 0.0], "vector_field": "e_vector_", "top_k": 10}
    r = http.post("/v1/datasets/tiny/search", json=body)
    assert r.status_code == 200, r.text
    assert [d["_id"] for d in r.json()["data"]] == ["only"]
    for extra in ({"page": 2}, {"metric": "l2"}, {"index": "hnsw"}, {"filter": {"t": "x"}}):
        r = http.post("/v1/datasets/tiny/search", json={**body, **extra})
        assert r.status_code == 200, (extra, r.text)
        assert len(r.json()["data"]) <= 1
    two = {"queries": [{"vector": [1.0, 0.0], "field": "e_vector_"}] * 2, "top_k": 5}
    r = http.post("/v1/datasets/tiny/search", json=two)
    assert r.status_code == 200 and [d["_id"] for d in r.json()["data"]] == ["only"], r.text
    # a field with no vector at all is still an error that names it
    none = {"vector": [1.0, 0.0], "vector_field": "none_vector_", "top_k": 10}
    error_of(http.post("/v1/datasets/tiny/search", json=none), 422)


def test_the_sdk_and_the_relevance_door_too(sdk, transport, admin_key, platform):
    sdk.create_dataset("points")
    sdk.dataset("points").insert([{"_id": f"p{i}", "a_vector_": [float(i), 1.0]} for i in range(3)])
    hits = sdk.dataset("points").search([1.0, 1.0], field="a_vector_", top_k=10)
    assert sorted(h["_id"] for h in hits) == ["p0", "p1", "p2"]
    app_id = platform.credentials["app_id"]
    with httpx.Client(
        base_url=f"{BASE_URL}/relevance",
        transport=transport,
        headers={"Authorization": f"{app_id}:{admin_key}"},
    ) as rel:
        body = {
            "dataset_id": "points",
            "multivector_query": [{"vector": [1.0, 1.0], "fields": ["a_vector_"]}],
            "page_size": 41,
        }
        r = rel.post("/services/search/vector", json=body)
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) == 3
