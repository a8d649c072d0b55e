"""The SDK's binary batch frame: vectors leave the JSON and travel as raw float32."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest

from taskloom import wire
from taskloom.errors import MalformedJSON
from taskloom.services.batches import prepare


def test_round_trip_moves_numeric_vectors_to_the_float_block() -> None:
    a = np.arange(4, dtype=np.float32)
    body = {
        "documents": [
            {"_id": "1", "x_vector_": a, "title": "t", "meta": {"n": 1}},
            {"_id": "2", "x_vector_": [1.5, 2.5, 3.5, 4.5], "y_vector_": (7, 8)},
            {"_id": "3", "x_vector_": ["no", "numbers"]},
        ],
        "overwrite": True,
    }
    raw = wire.encode(body)
    assert raw[:4] == b"TLV1"
    decoded, blob = wire.decode(raw)
    assert decoded["overwrite"] is True
    docs = decoded["documents"]
    assert docs[0]["x_vector_"] == {"$f32at": [0, 4]}
    assert docs[0]["title"] == "t" and docs[0]["meta"] == {"n": 1}
    assert docs[1]["x_vector_"] == {"$f32at": [4, 4]}
    assert docs[1]["y_vector_"] == {"$f32at": [8, 2]}
    # not a numeric vector: left in the JSON for the server to refuse with a reason
    assert docs[2]["x_vector_"] == ["no", "numbers"]
    floats = np.frombuffer(blob, dtype="<f4")
    assert floats.tolist() == [0, 1, 2, 3, 1.5, 2.5, 3.5, 4.5, 7, 8]
    # the caller's documents are not modified
    assert body["documents"][0]["x_vector_"] is a


def test_prepared_vectors_equal_the_originals() -> None:
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((5, 16)).astype(np.float32)
    raw = wire.encode({"documents": [{"_id": str(i), "v_vector_": v} for i, v in enumerate(vecs)]})
    body, blob = wire.decode(raw)
    good, failures, _ = prepare(body["documents"], blob=blob)
    assert not failures
    for p, v in zip(good, vecs, strict=True):
        assert np.array_equal(p.vectors["v_vector_"], v)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"TLV",
        b"XXXX" + struct.pack("<I", 2) + b"{}",
        b"TLV1" + struct.pack("<I", 100) + b"{}",
        b"TLV1" + struct.pack("<I", 2) + b"{x",
        b"TLV1" + struct.pack("<I", 2) + b"{}" + b"\x00\x00\x00",  # 3 bytes: not a float
    ],
)
def test_bad_frames_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedJSON):
        wire.decode(raw)


def _frame(docs: list, floats: list[float]) -> tuple[list, memoryview]:
    head = orjson.dumps({"documents": docs})
    raw = b"TLV1" + struct.pack("<I", len(head)) + head + np.asarray(floats, "<f4").tobytes()
    body, blob = wire.decode(raw)
    return body["documents"], blob


@pytest.mark.parametrize(
    ("ref", "code"),
    [
        ([0, 5], "invalid_vector"),  # past the end of the block
        ([3, 2], "invalid_vector"),
        ([-1, 2], "invalid_vector"),
        ([0], "invalid_vector"),
        ([0, 1.5], "invalid_vector"),
        ([0, 0], "empty_vector"),
    ],
)
def test_bad_references_are_refused_with_the_field(ref: list, code: str) -> None:
    docs, blob = _frame([{"_id": "a", "v_vector_": {"$f32at": ref}}], [1, 2, 3, 4])
    good, failures, _ = prepare(docs, blob=blob)
    assert not good
    assert (failures[0].field, failures[0].code) == ("v_vector_", code)


def test_nan_in_the_float_block_is_refused_for_that_document_only() -> None:
    docs, blob = _frame(
        [
            {"_id": "a", "v_vector_": {"$f32at": [0, 2]}},
            {"_id": "b", "v_vector_": {"$f32at": [2, 2]}},
        ],
        [1, 2, float("nan"), 4],
    )
    good, failures, _ = prepare(docs, blob=blob)
    assert [p.id for p in good] == ["a"]
    assert (failures[0].id, failures[0].code) == ("b", "vector_not_finite")


def test_a_reference_without_a_binary_batch_is_refused() -> None:
    good, failures, _ = prepare([{"_id": "a", "v_vector_": {"$f32at": [0, 2]}}])
    assert not good and failures[0].code == "invalid_vector"
