"""Query vectors at the edges of float32, through both doors that search (issue 11).

A query value that is not finite as float32 (``1e39``, ``-1e39``, ``3.5e38``) is refused as
in a stored vector: 422 ``vector_not_finite`` naming the request field. A finite vector too
long for float32 squares still ranks right under cosine (normalised in float64: ``[2**64,
0, 0]`` ranks as ``[1, 0, 0]``); under ``dp``, ``l2`` and ``l1`` a query whose float32
scores would overflow against the field's vectors is refused with the same 422, saying its
magnitude is too large, instead of answering scores of 0, inf (JSON null) or no results.
Expectations come from ``vectors.metrics.scores`` (float64 numpy).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from taskloom.vectors import metrics

from .conftest import BASE_URL, error_of

METRICS = ["cosine", "dp", "l2", "l1"]
BIG = 2**64  # finite in float32 (1.8e19); its square is not
DIM = 4

NOT_FINITE = [
    pytest.param(1e39, id="1e39"),
    pytest.param(-1e39, id="-1e39"),
    pytest.param(3.5e38, id="3.5e38"),
]


def _points() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    pts = {f"p{i:02d}": rng.standard_normal(DIM).astype(np.float32) for i in range(30)}
    pts["axis"] = np.array([1, 0, 0, 0], np.float32)
    pts["anti"] = np.array([-1, 0, 0, 0], np.float32)
    return pts


POINTS = _points()
IDS = list(POINTS)
MATRIX = np.stack([POINTS[i] for i in IDS])


def expected(metric: str, query: Any, k: int) -> tuple[list[str], np.ndarray]:
    s = metrics.scores(metric, np.asarray(query, np.float64), MATRIX)
    order = metrics.top_k(s, k)
    return [IDS[i] for i in order], s[order]


def f32(values: list[float]) -> dict[str, str]:
    return {"$f32": base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()}


# -- the native door --------------------------------------------------------------------------


@pytest.fixture
def native(http: httpx.Client) -> httpx.Client:
    assert http.post("/v1/datasets", json={"name": "pts"}).status_code == 201
    docs = [
        {"_id": i, "v_vector_": v.tolist(), "w_vector_": v[:2].tolist()} for i, v in POINTS.items()
    ]
    r = http.post("/v1/datasets/pts/documents", json={"documents": docs})
    assert r.status_code in (200, 201), r.text
    return http


def search(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/datasets/pts/search", json={"vector_field": "v_vector_", **body})


def hits(resp: httpx.Response) -> tuple[list[str], list[float]]:
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    return [h["_id"] for h in data], [h["_score"] for h in data]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("value", NOT_FINITE)
def test_a_value_past_float32_is_refused_naming_the_field(native, metric, value):
    err = error_of(search(native, vector=[0.5, value, 0, 0], metric=metric), 422)
    assert err["code"] == "vector_not_finite"
    assert err["details"]["field"] == "vector"
    assert "finite" in err["message"]


@pytest.mark.parametrize("value", NOT_FINITE)
def test_a_value_past_float32_in_one_of_several_queries_names_that_query(native, value):
    queries = [
        {"field": "v_vector_", "vector": [1, 0, 0, 0]},
        {"field": "w_vector_", "vector": [value, 1]},
    ]
    err = error_of(native.post("/v1/datasets/pts/search", json={"queries": queries}), 422)
    assert err["code"] == "vector_not_finite"
    assert err["details"]["field"] == "queries[1].vector"


@pytest.mark.parametrize("token", [b"1.8e308", b"-1e400", b"NaN", b"Infinity", b"-Infinity"])
def test_json_numbers_past_float64_are_refused_naming_the_field(native, token):
    """A JSON number past float64 (or Python's NaN / Infinity) is inf or NaN: refused."""
    body = b'{"vector_field": "v_vector_", "vector": [0.5, ' + token + b", 0, 0]}"
    r = native.post(
        "/v1/datasets/pts/search", content=body, headers={"Content-Type": "application/json"}
    )
    assert error_of(r, 422, "vector_not_finite")["details"]["field"] == "vector"


@pytest.mark.parametrize("metric", METRICS)
def test_inf_and_nan_in_an_f32_query_are_refused(native, metric):
    for bad in ([np.inf, 0, 0, 0], [0, -np.inf, 0, 0], [0, 0, np.nan, 0]):
        err = error_of(search(native, vector=f32(bad), metric=metric), 422, "vector_not_finite")
        assert err["details"]["field"] == "vector"


@pytest.mark.parametrize(
    ("huge", "plain"),
    [
        ([BIG, 0, 0, 0], [1, 0, 0, 0]),
        ([BIG, BIG, 0, -BIG], [1, 1, 0, -1]),
        ([3e38, -3e38, 3e38, 0], [1, -1, 1, 0]),  # the largest float32 values
        ([1e-30, 2e-30, 0, 0], [1, 2, 0, 0]),  # squares that underflow float32
        (f32([float(BIG), 0, 0, float(BIG)]), [1, 0, 0, 1]),
    ],
)
def test_cosine_ranks_a_huge_query_as_its_direction(native, huge, plain):
    ids, scores = hits(search(native, vector=huge, top_k=10))
    want_ids, want_scores = expected("cosine", plain, 10)
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert (ids, scores) == hits(search(native, vector=plain, top_k=10))
    assert 0 not in scores[:1]


def test_cosine_with_several_huge_queries_sums_their_directions(native):
    def body(a: list[Any], b: list[Any]) -> dict[str, Any]:
        return {
            "queries": [
                {"field": "v_vector_", "vector": a, "weight": 0.7},
                {"field": "w_vector_", "vector": b, "weight": 0.3},
            ],
            "top_k": 8,
        }

    huge = native.post("/v1/datasets/pts/search", json=body([BIG, 0, 0, 0], [0, BIG]))
    plain = native.post("/v1/datasets/pts/search", json=body([1, 0, 0, 0], [0, 1]))
    assert hits(huge) == hits(plain)
    total = 0.7 * metrics.scores("cosine", np.array([1.0, 0, 0, 0]), MATRIX)
    total += 0.3 * metrics.scores("cosine", np.array([0.0, 1]), MATRIX[:, :2])
    order = metrics.top_k(total, 8)
    assert hits(huge)[0] == [IDS[i] for i in order]
    np.testing.assert_allclose(hits(huge)[1], total[order], atol=1e-5)


def test_dp_with_a_huge_query_scores_exactly_while_it_fits(native):
    ids, scores = hits(search(native, vector=[BIG, 0, 0, 0], metric="dp", top_k=5))
    want_ids, want_scores = expected("dp", [BIG, 0, 0, 0], 5)
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


@pytest.mark.parametrize(
    ("metric", "query"),
    [
        ("l2", [BIG, 0, 0, 0]),  # its squared distance to anything overflows
        ("l2", [1e20, 0, 0, 1]),
        ("dp", [3e38, 3e38, 0, 0]),  # its dot product with [0.7, 0.7] would
        ("l1", [3e38, 3e38, 0, 0]),  # |q|_1 is past float32 already
        ("dp", f32([3e38, 3e38, 3e38, 3e38])),
    ],
)
def test_a_query_whose_float32_scores_overflow_is_refused(native, metric, query):
    err = error_of(search(native, vector=query, metric=metric), 422, "vector_not_finite")
    assert err["details"]["field"] == "vector"
    assert "magnitude is too large" in err["message"]
    queries = [
        {"field": "w_vector_", "vector": [0.1, 0.2]},
        {"field": "v_vector_", "vector": query},
    ]
    r = native.post("/v1/datasets/pts/search", json={"queries": queries, "metric": metric})
    err = error_of(r, 422, "vector_not_finite")
    assert err["details"]["field"] == "queries[1].vector"
    assert "magnitude is too large" in err["message"]


def test_the_bound_follows_the_vectors_the_field_holds(native):
    """dp of a 2e19 query with unit vectors fits; next to a stored 1e19 vector it would
    overflow (2e38), so it is refused; once that document is gone it fits again."""
    query = {"vector": [2e19, 0, 0, 0], "metric": "dp", "top_k": 3}
    want_ids, want_scores = expected("dp", [2e19, 0, 0, 0], 3)
    assert hits(search(native, **query))[0] == want_ids
    r = native.post(
        "/v1/datasets/pts/documents",
        json={"documents": [{"_id": "far", "v_vector_": [1e19, 0, 0, 0], "w_vector_": [0, 0]}]},
    )
    assert r.status_code in (200, 201), r.text
    err = error_of(search(native, **query), 422, "vector_not_finite")
    assert "magnitude is too large" in err["message"]
    # a small query against the large vector is fine: 1e19 * 1 and (1e19 + 1)^2 fit
    for metric in ("dp", "l2", "l1"):
        ids, scores = hits(search(native, vector=[1, 0, 0, 0], metric=metric, top_k=40))
        assert "far" in ids and all(np.isfinite(scores))
        assert len(ids) == len(POINTS) + 1
    assert native.delete("/v1/datasets/pts/documents/far").status_code in (200, 204)
    ids, scores = hits(search(native, **query))
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_a_normal_vector_still_searches(native, metric, index):
    q = [0.3, -1.2, 0.5, 2.0]
    ids, scores = hits(search(native, vector=q, metric=metric, top_k=7, index=index))
    want_ids, want_scores = expected(metric, q, 7)
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


# -- the Relevance door -----------------------------------------------------------------------


@pytest.fixture
def rel(transport: Any, admin_key: str, platform: Any) -> Iterator[httpx.Client]:
    """``/relevance`` with the admin's ``project:api_key`` credential, and the points."""
    app_id = platform.credentials["app_id"]
    c = httpx.Client(
        base_url=f"{BASE_URL}/relevance",
        transport=transport,
        headers={"Authorization": f"{app_id}:{admin_key}"},
    )
    assert c.post("/datasets/create", json={"id": "pts", "schema": {}}).status_code == 200
    docs = [{"_id": i, "v_vector_": v.tolist()} for i, v in POINTS.items()]
    r = c.post(
        "/datasets/pts/documents/bulk_insert",
        json={"documents": docs, "insert_date": False, "overwrite": True, "update_schema": True},
    )
    assert r.status_code == 200 and r.json()["inserted"] == len(docs), r.text
    yield c
    c.close()


def rel_search(rel: httpx.Client, vector: Any, **body: Any) -> httpx.Response:
    return rel.post(
        "/services/search/vector",
        json={
            "dataset_id": "pts",
            "multivector_query": [{"vector": vector, "fields": ["v_vector_"]}],
            "page_size": 10,
            **body,
        },
    )


def rel_error(resp: httpx.Response, code: str) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert set(body) == {"message", "code", "details"}, body
    assert body["code"] == code
    return body


def rel_hits(resp: httpx.Response) -> tuple[list[str], list[float]]:
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    return [h["_id"] for h in results], [h["_search_score"] for h in results]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("value", NOT_FINITE)
def test_relevance_refuses_a_value_past_float32(rel, metric, value):
    body = rel_error(
        rel_search(rel, [value, 0, 0, 0], similarity_metric=metric), "vector_not_finite"
    )
    assert body["details"]["field"] == "multivector_query[0].vector"


@pytest.mark.parametrize("value", NOT_FINITE)
def test_relevance_names_the_entry_of_several(rel, value):
    r = rel.post(
        "/services/search/vector",
        json={
            "dataset_id": "pts",
            "multivector_query": [
                {"vector": [1, 0, 0, 0], "fields": ["v_vector_"]},
                {"vector": [0, 0, value, 0], "fields": {"v_vector_": 0.5}},
            ],
        },
    )
    body = rel_error(r, "vector_not_finite")
    assert body["details"]["field"] == "multivector_query[1].vector"


def test_relevance_cosine_ranks_a_huge_query_as_its_direction(rel):
    huge = rel_hits(rel_search(rel, [BIG, 0, 0, 0], min_score=-1))
    plain = rel_hits(rel_search(rel, [1, 0, 0, 0], min_score=-1))
    assert huge == plain
    want_ids, want_scores = expected("cosine", [1, 0, 0, 0], 10)
    assert huge[0] == want_ids and huge[0][0] == "axis"
    np.testing.assert_allclose(huge[1], want_scores, atol=1e-5)


def test_relevance_refuses_a_query_whose_l2_scores_overflow(rel):
    body = rel_error(rel_search(rel, [BIG, 0, 0, 0], similarity_metric="l2"), "vector_not_finite")
    assert body["details"]["field"] == "multivector_query[0].vector"
    assert "magnitude is too large" in body["message"]


@pytest.mark.parametrize("metric", METRICS)
def test_relevance_still_searches_a_normal_vector(rel, metric):
    q = [0.3, -1.2, 0.5, 2.0]
    ids, scores = rel_hits(rel_search(rel, q, similarity_metric=metric, min_score=None))
    want_ids, want_scores = expected(metric, q, 10)
    assert ids == want_ids
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
