"""Vector parsing and batch validation, without a database."""

from __future__ import annotations

import base64
import math
import warnings

import numpy as np
import pytest

from taskloom.errors import Invalid
from taskloom.services.batches import (
    MAX_DIM,
    _Bad,
    check_dims,
    check_magnitude,
    merge_fields,
    normalise_id,
    parse_vector,
    prepare,
    public_fields,
    query_vector,
)
from taskloom.services.documents import _deep_merge, _expand_dotted, _project


def b64(values, dtype="<f4") -> dict[str, str]:
    return {"$f32": base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode()}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([1, 2, 3], [1, 2, 3]),
        ([0.5, -1.25], [0.5, -1.25]),
        ([1, 2.5], [1, 2.5]),
        ([3.4028234663852886e38], [np.finfo(np.float32).max]),
        (b64([0.1, 0.2]), [np.float32(0.1), np.float32(0.2)]),
        (b64([7.0]), [7.0]),
    ],
)
def test_good_vectors(value, expected):
    arr = parse_vector(value, "v_vector_")
    assert arr.dtype == np.float32 and arr.ndim == 1
    np.testing.assert_array_equal(arr, np.asarray(expected, dtype=np.float32))


def test_big_endian_bytes_are_read_as_little_endian():
    """``$f32`` is little-endian by definition; the same bytes mean the same vector anywhere."""
    arr = parse_vector(b64([1.0], dtype=">f4"), "v_vector_")
    assert arr[0] != 1.0


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ([], "empty_vector"),
        ({"$f32": ""}, "empty_vector"),
        ([math.nan], "vector_not_finite"),
        ([math.inf, 1], "vector_not_finite"),
        ([1e39], "vector_not_finite"),
        ([-1e300], "vector_not_finite"),
        ([10**40], "vector_not_finite"),
        ([10**400], "vector_not_finite"),
        (b64([np.nan]), "vector_not_finite"),
        (b64([1.0, np.inf]), "vector_not_finite"),
        ([True], "vector_not_numeric"),
        ([1, "2"], "vector_not_numeric"),
        ([None], "vector_not_numeric"),
        ([[1]], "vector_not_numeric"),
        ([{"a": 1}], "vector_not_numeric"),
        ("1 2 3", "invalid_vector"),
        (None, "invalid_vector"),
        (1.0, "invalid_vector"),
        ({"$f64": "AAAA"}, "invalid_vector"),
        ({"$f32": 5}, "invalid_vector"),
        ({"$f32": "@@@@"}, "invalid_vector"),
        ({"$f32": "AAAAAA="}, "invalid_vector"),  # bad padding
        ({"$f32": base64.b64encode(b"\0" * 6).decode()}, "invalid_vector"),
        ({"$f32": b64([1])["$f32"], "dim": 1}, "invalid_vector"),
    ],
)
def test_bad_vectors(value, code):
    with pytest.raises(_Bad) as ei:
        parse_vector(value, "v_vector_")
    assert (ei.value.code, ei.value.field) == (code, "v_vector_")
    assert ei.value.message


def test_too_many_dimensions():
    with pytest.raises(_Bad) as ei:
        parse_vector([0.0] * (MAX_DIM + 1), "v_vector_")
    assert ei.value.code == "vector_too_long"
    assert parse_vector([0.0] * MAX_DIM, "v_vector_").size == MAX_DIM


def test_normalise_id():
    assert normalise_id("a") == "a"
    assert normalise_id(12) == "12"
    for bad in (True, None, 1.5, [], "", "x" * 256):
        with pytest.raises(_Bad):
            normalise_id(bad)
    assert normalise_id("x" * 255) == "x" * 255


def test_prepare_splits_vectors_and_infers_types():
    good, failures, types = prepare(
        [
            {"_id": "a", "t": "x", "n": 1, "m": {"k": True}, "v_vector_": [1, 2]},
            {"n": 2.5, "l": [1], "z": None},
        ]
    )
    assert failures == []
    a, b = good
    assert (a.index, a.id, a.data) == (0, "a", {"t": "x", "n": 1, "m": {"k": True}})
    assert list(a.vectors) == ["v_vector_"]
    assert b.id and len(b.id) == 32 and b.data == {"n": 2.5, "l": [1], "z": None}
    assert types == {"t": "text", "n": "number", "m.k": "bool", "l": "array"}


def test_prepare_reports_each_bad_document():
    good, failures, _ = prepare(
        [{"_id": "a"}, 5, {"_id": "a"}, {"a.b": 1}, {"x": {"$y": 1}}, {"_id": ""}, {"_id": "b"}]
    )
    assert [p.id for p in good] == ["a", "b"]
    assert [(f.index, f.id, f.field, f.code) for f in failures] == [
        (1, None, None, "not_an_object"),
        (2, "a", "_id", "duplicate_id"),
        (3, failures[2].id, "a.b", "invalid_field_name"),
        (4, failures[3].id, "x.$y", "invalid_field_name"),
        (5, None, "_id", "invalid_id"),
    ]


def test_prepare_for_updates_needs_ids_and_allows_null_vectors():
    good, failures, _ = prepare([{"_id": "a", "v_vector_": None}, {"x": 1}], require_id=True)
    assert good[0].vectors == {"v_vector_": None}
    assert [(f.index, f.code) for f in failures] == [(1, "missing_id")]
    _, failures, _ = prepare([{"_id": "a", "v_vector_": None}])
    assert failures[0].code == "invalid_vector"


def test_prepare_needs_a_list():
    with pytest.raises(Invalid) as ei:
        prepare({"_id": "a"})
    assert (ei.value.code, ei.value.field) == ("invalid_documents", "documents")


def test_check_dims():
    good, _, _ = prepare(
        [
            {"_id": "a", "v_vector_": [1, 2]},
            {"_id": "b", "v_vector_": [1, 2, 3]},
            {"_id": "c", "w_vector_": [1]},
            {"_id": "d", "w_vector_": [1], "v_vector_": [5, 6]},
        ]
    )
    failures = []
    kept, new = check_dims(good, {"w_vector_": {"type": "vector", "dim": 1}}, failures)
    assert [p.id for p in kept] == ["a", "c", "d"]
    assert new == {"v_vector_": 2}
    assert [(f.id, f.field, f.code) for f in failures] == [("b", "v_vector_", "dimension_mismatch")]
    failures = []
    kept, _ = check_dims(good, {"v_vector_": {"type": "vector", "dim": 3}}, failures)
    assert [p.id for p in kept] == ["b", "c"]


def test_merge_fields():
    fields = {"a": {"type": "text"}, "v_vector_": {"type": "vector", "dim": 2}}
    merged = merge_fields(fields, {"a": "number", "b": "bool"}, {"w_vector_": 3})
    # new fields get the next first-seen rank (``seq``); known ones keep theirs
    assert merged == {
        "a": {"type": "mixed"},
        "b": {"type": "bool", "seq": 0},
        "v_vector_": {"type": "vector", "dim": 2},
        "w_vector_": {"type": "vector", "dim": 3, "seq": 1},
    }
    assert fields == {"a": {"type": "text"}, "v_vector_": {"type": "vector", "dim": 2}}
    again = merge_fields(merged, {"c": "text", "b": "bool"}, {})
    assert again["c"] == {"type": "text", "seq": 2} and again["b"]["seq"] == 0


def test_public_fields_are_in_first_seen_order_without_seq():
    fields = {"z": {"type": "text", "seq": 2}, "y": {"type": "number", "seq": 0}}
    fields["x_vector_"] = {"type": "vector", "dim": 3, "seq": 1}
    out = public_fields(fields)
    assert list(out) == ["y", "x_vector_", "z"]
    assert out["x_vector_"] == {"type": "vector", "dim": 3}


def test_dotted_keys_and_merging():
    assert _expand_dotted({"_id": "x", "a.b": 1, "a.c.d": 2, "e": 3}) == {
        "_id": "x",
        "a": {"b": 1, "c": {"d": 2}},
        "e": 3,
    }
    base = {"a": {"b": 0, "keep": 1}, "l": [1], "s": "x"}
    merged = _deep_merge(base, {"a": {"b": 1, "new": 2}, "l": [2], "s": {"now": "obj"}})
    assert merged == {"a": {"b": 1, "keep": 1, "new": 2}, "l": [2], "s": {"now": "obj"}}
    assert base == {"a": {"b": 0, "keep": 1}, "l": [1], "s": "x"}  # not changed in place


def test_project():
    doc = {"_id": "x", "a": {"b": 1, "c": 2}, "d": 3, "v_vector_": [1]}
    assert _project(doc, ["a.b", "d", "missing", "a.zz"]) == {"_id": "x", "a": {"b": 1}, "d": 3}
    assert _project(doc, []) == {"_id": "x"}


def test_overflow_is_refused_without_a_warning():
    """A bad vector is the client's mistake, not a numpy warning in the server's log."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in ([1e39], [-1e300, 1.0]):
            with pytest.raises(_Bad) as ei:
                parse_vector(value, "v_vector_")
            assert ei.value.code == "vector_not_finite"


# -- query vectors ----------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "dp", "l2", "l1"])
@pytest.mark.parametrize(
    "value", [[1e39, 0.0], [-1e39, 1.0], [3.5e38], [math.inf], [math.nan], b64([0.0, math.inf])]
)
def test_a_query_past_float32_is_refused_as_a_stored_vector(metric, value):
    with pytest.raises(_Bad) as ei:
        query_vector(value, "queries[2].vector", metric)
    assert ei.value.code == "vector_not_finite"
    assert ei.value.field == "queries[2].vector"


def test_a_cosine_query_is_unit_length_in_float64():
    np.testing.assert_allclose(query_vector([2**64, 0, 0], "vector", "cosine"), [1, 0, 0])
    np.testing.assert_allclose(
        query_vector([3e38, -3e38], "vector", "cosine"), [0.5**0.5, -(0.5**0.5)]
    )
    np.testing.assert_allclose(query_vector([1e-30, 0], "vector", "cosine"), [1, 0])
    np.testing.assert_array_equal(query_vector([0, 0], "vector", "cosine"), [0, 0])
    out = query_vector(np.array([2.0**70, 0.0]), "text", "cosine")  # an encoder's array
    assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0]


def test_other_metrics_keep_the_query_and_refuse_its_own_overflow():
    out = query_vector([2**64, 0], "vector", "dp")
    assert out.dtype == np.float32 and out[0] == np.float32(2**64)
    assert query_vector([1e19, 0], "vector", "l2")[0] == np.float32(1e19)
    for metric, value in (("l2", [2**64, 0]), ("l1", [2e38, 2e38])):
        with pytest.raises(_Bad) as ei:
            query_vector(value, "vector", metric)
        assert ei.value.code == "vector_not_finite" and ei.value.field == "vector"
        assert "magnitude is too large" in ei.value.message


def test_check_magnitude_weighs_the_vectors_searched():
    q = np.array([2e19, 0], np.float32)
    check_magnitude(q, "vector", "dp", 1.0)
    check_magnitude(q, "vector", "cosine", 1e30)
    with pytest.raises(_Bad) as ei:
        check_magnitude(q, "vector", "dp", 1e19)
    assert "magnitude is too large" in ei.value.message
    with pytest.raises(_Bad):
        check_magnitude(np.array([1.0], np.float32), "vector", "l2", 2e19)
