"""Binary batches over HTTP: the same answers as JSON, the same errors with their fields."""

from __future__ import annotations

import struct

import numpy as np
import orjson

from taskloom import wire

from .conftest import error_of


def _post(http, name: str, raw: bytes):
    return http.post(
        f"/v1/datasets/{name}/documents", content=raw, headers={"Content-Type": wire.MEDIA_TYPE}
    )


def test_binary_insert_stores_the_same_vectors_as_json(http) -> None:
    http.post("/v1/datasets", json={"name": "w"})
    vecs = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    docs = [{"_id": str(i), "n": i, "e_vector_": v} for i, v in enumerate(vecs)]
    resp = _post(http, "w", wire.encode({"documents": docs}))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"inserted": 3, "failed": []}
    got = http.get("/v1/datasets/w/documents/1").json()
    assert got["n"] == 1
    assert np.array_equal(np.asarray(got["e_vector_"], np.float32), vecs[1])
    schema = http.get("/v1/datasets/w/schema").json()
    assert schema["e_vector_"] == {"type": "vector", "dim": 8}


def test_binary_batch_errors_name_the_document_and_field(http) -> None:
    http.post("/v1/datasets", json={"name": "w"})
    docs = [
        {"_id": "ok", "e_vector_": np.ones(4, np.float32)},
        {"_id": "nan", "e_vector_": np.array([1, np.nan, 0, 0], np.float32)},
    ]
    err = error_of(_post(http, "w", wire.encode({"documents": docs})), 422, "invalid_documents")
    assert err["details"]["field"] == "documents[1].e_vector_"
    assert err["details"]["failed"][0]["code"] == "vector_not_finite"
    assert http.get("/v1/datasets/w").json()["document_count"] == 0  # nothing written
    resp = _post(http, "w", wire.encode({"documents": docs, "skip_invalid": True}))
    assert resp.json()["inserted"] == 1


def test_a_broken_frame_is_a_400(http) -> None:
    http.post("/v1/datasets", json={"name": "w"})
    error_of(_post(http, "w", b"nonsense"), 400, "malformed_json")
    head = orjson.dumps({"documents": [{"_id": "a", "e_vector_": {"$f32at": [0, 9]}}]})
    raw = b"TLV1" + struct.pack("<I", len(head)) + head + b"\x00" * 8
    err = error_of(_post(http, "w", raw), 422, "invalid_documents")
    assert err["details"]["failed"][0]["code"] == "invalid_vector"
