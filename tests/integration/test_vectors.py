"""Vector validation: every bad vector is a 4xx naming the document, the field and a code."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest

from taskloom.errors import Invalid

from .conftest import error_of

NAN = float("nan")
INF = float("inf")


def f32(values: list[float]) -> dict[str, str]:
    return {"$f32": base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()}


@pytest.fixture
def ds(services, scope) -> str:
    services.datasets.create(scope, "vecs")
    return "vecs"


BAD_VECTORS = [
    pytest.param(f32([1.0, NAN, 2.0]), "vector_not_finite", id="nan-f32"),
    pytest.param(f32([INF]), "vector_not_finite", id="inf-f32"),
    pytest.param(f32([-INF, 1.0]), "vector_not_finite", id="minus-inf-f32"),
    pytest.param([1.0, 1e39], "vector_not_finite", id="overflows-float32"),
    pytest.param([-3.5e38], "vector_not_finite", id="overflows-float32-negative"),
    pytest.param([1.0, 10**400], "vector_not_finite", id="huge-int"),
    pytest.param([NAN], "vector_not_finite", id="nan-list"),
    pytest.param([1.0, "2"], "vector_not_numeric", id="string"),
    pytest.param([True, False], "vector_not_numeric", id="bools"),
    pytest.param([1, None], "vector_not_numeric", id="null-inside"),
    pytest.param([[1.0, 2.0]], "vector_not_numeric", id="nested"),
    pytest.param([], "empty_vector", id="empty-list"),
    pytest.param({"$f32": ""}, "empty_vector", id="empty-f32"),
    pytest.param("1,2,3", "invalid_vector", id="a-string"),
    pytest.param(5, "invalid_vector", id="a-number"),
    pytest.param({"$f32": "not base64!"}, "invalid_vector", id="bad-base64"),
    pytest.param({"$f32": base64.b64encode(b"abcde").decode()}, "invalid_vector", id="odd-bytes"),
    pytest.param({"$f32": f32([1])["$f32"], "x": 1}, "invalid_vector", id="extra-key"),
]


@pytest.mark.parametrize(("vector", "code"), BAD_VECTORS)
def test_bad_vectors_are_rejected_by_the_service(services, scope, ds, vector, code):
    docs = [{"_id": "good", "v_vector_": [1.0]}, {"_id": "bad", "v_vector_": vector}]
    with pytest.raises(Invalid) as ei:
        services.documents.insert(scope, ds, docs)
    err = ei.value
    assert err.status_code == 422
    assert err.field == "documents[1].v_vector_"
    [failure] = err.details["failed"]
    assert (failure["index"], failure["_id"], failure["field"], failure["code"]) == (
        1,
        "bad",
        "v_vector_",
        code,
    )
    assert services.documents.count(scope, ds) == 0

    out = services.documents.insert(scope, ds, docs, skip_invalid=True)
    assert out["inserted"] == 1
    assert [f["code"] for f in out["failed"]] == [code]
    # the update path validates the same way
    with pytest.raises(Invalid) as ei:
        services.documents.update(scope, ds, [{"_id": "good", "v_vector_": vector}])
    assert ei.value.details["failed"][0]["code"] == code
    np.testing.assert_array_equal(
        services.documents.get(scope, ds, "good")["v_vector_"], np.float32([1])
    )


@pytest.mark.parametrize(
    ("vector", "code"), [p for p in BAD_VECTORS if p.id not in ("huge-int", "nan-list")]
)
def test_bad_vectors_over_http(http, ds, vector, code):
    r = http.post("/v1/datasets/vecs/documents", json={"documents": [{"v_vector_": vector}]})
    err = error_of(r, 422, "invalid_documents")
    assert err["details"]["field"] == "documents[0].v_vector_"
    assert err["details"]["failed"][0]["code"] == code
    assert err["details"]["failed"][0]["field"] == "v_vector_"


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_json_cannot_carry_nan_or_infinity(http, ds, token):
    body = b'{"documents": [{"v_vector_": [1.0, ' + token + b"]}]}"
    r = http.post(
        "/v1/datasets/vecs/documents", content=body, headers={"Content-Type": "application/json"}
    )
    err = error_of(r, 400, "malformed_json")
    assert err["details"]["field"] == "body"
    assert http.get("/v1/datasets/vecs").json()["document_count"] == 0


def test_float32_limits_are_accepted(services, scope, ds):
    biggest = float(np.finfo(np.float32).max)
    services.documents.insert(scope, ds, [{"_id": "a", "v_vector_": [biggest, -biggest, 1e-45]}])
    got = services.documents.get(scope, ds, "a")["v_vector_"]
    assert got.dtype == np.float32
    assert got[0] == np.float32(biggest) and got[1] == -np.float32(biggest)


def test_f32_and_list_forms_store_the_same_vector(services, scope, ds):
    values = [0.1, -2.5, 3e-8, 12345.678]
    services.documents.insert(
        scope, ds, [{"_id": "list", "v_vector_": values}, {"_id": "b64", "v_vector_": f32(values)}]
    )
    a, b = services.documents.bulk_get(scope, ds, ["list", "b64"])
    np.testing.assert_array_equal(a["v_vector_"], np.float32(values))
    np.testing.assert_array_equal(a["v_vector_"], b["v_vector_"])
    raw = base64.b64decode(f32(values)["$f32"])
    assert struct.unpack("<4f", raw) == tuple(float(x) for x in a["v_vector_"])


def test_mixed_dimensions_within_one_batch(services, scope, ds):
    docs = [
        {"_id": "a", "v_vector_": [1, 2, 3]},
        {"_id": "b", "v_vector_": [1, 2]},
        {"_id": "c", "v_vector_": [4, 5, 6], "w_vector_": [1]},
        {"_id": "d", "w_vector_": [1, 2]},
    ]
    with pytest.raises(Invalid) as ei:
        services.documents.insert(scope, ds, docs)
    assert ei.value.field == "documents[1].v_vector_"
    failed = ei.value.details["failed"]
    assert [(f["index"], f["field"], f["code"]) for f in failed] == [
        (1, "v_vector_", "dimension_mismatch"),
        (3, "w_vector_", "dimension_mismatch"),
    ]
    assert services.documents.count(scope, ds) == 0
    assert services.datasets.schema(scope, ds) == {}

    out = services.documents.insert(scope, ds, docs, skip_invalid=True)
    assert out["inserted"] == 2
    schema = services.datasets.schema(scope, ds)
    assert schema["v_vector_"] == {"type": "vector", "dim": 3}
    assert schema["w_vector_"] == {"type": "vector", "dim": 1}


def test_dimension_must_match_the_dataset(services, scope, ds, http):
    services.documents.insert(scope, ds, [{"_id": "a", "v_vector_": [1, 2, 3]}])
    r = http.post(
        "/v1/datasets/vecs/documents",
        json={"documents": [{"_id": "b", "v_vector_": [1, 2, 3]}, {"_id": "c", "v_vector_": [1]}]},
    )
    err = error_of(r, 422, "invalid_documents")
    assert err["details"]["field"] == "documents[1].v_vector_"
    [f] = err["details"]["failed"]
    assert (f["index"], f["_id"], f["field"]) == (1, "c", "v_vector_")
    assert f["code"] == "dimension_mismatch"
    assert services.documents.count(scope, ds) == 1
    # replacing the only document does not change the field's dimension either
    with pytest.raises(Invalid):
        services.documents.insert(scope, ds, [{"_id": "a", "v_vector_": [1, 2]}])
    assert services.datasets.schema(scope, ds)["v_vector_"]["dim"] == 3


def test_vector_fields_are_kept_out_of_the_json_and_only_support_exists(services, scope, ds):
    services.documents.insert(scope, ds, [{"_id": "a", "v_vector_": [1, 2]}, {"_id": "b"}])
    assert services.documents.count(scope, ds, {"v_vector_": {"$exists": True}}) == 1
    assert services.documents.count(scope, ds, {"v_vector_": {"$exists": False}}) == 1
    with pytest.raises(Invalid) as ei:
        services.documents.count(scope, ds, {"v_vector_": [1, 2]})
    assert ei.value.code == "invalid_filter"
    with pytest.raises(Invalid) as ei:
        services.documents.count(scope, ds, {"v_vector_": {"$eq": None}})
    assert (ei.value.code, ei.value.field) == ("invalid_filter", "filter.v_vector_.$eq")
