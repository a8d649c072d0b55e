"""Crowd field specs (``taskloom.crowd.spec``): every type and every error code, spec
parsing errors, array element paths, partial mode and solution validation."""

from __future__ import annotations

from typing import Any

import pytest

from taskloom.crowd.spec import (
    BASE_TYPES,
    TYPES,
    FieldError,
    FieldSpec,
    Spec,
    SpecError,
    validate_solutions,
)
from taskloom.errors import Invalid

REQUIRED = "Value must be present and not equal to null"

# (field definition, value, expected code or None when valid)
CASES: list[tuple[dict[str, Any], Any, str | None]] = [
    # string
    ({"type": "string"}, "hello", None),
    ({"type": "string"}, "", None),
    ({"type": "string"}, 5, "STRING_EXPECTED"),
    ({"type": "string"}, True, "STRING_EXPECTED"),
    ({"type": "string"}, ["a"], "STRING_EXPECTED"),
    ({"type": "string", "min_length": 2}, "ab", None),
    ({"type": "string", "min_length": 2}, "a", "STRING_LENGTH_LESS_THAN_MIN"),
    ({"type": "string", "max_length": 3}, "abc", None),
    ({"type": "string", "max_length": 3}, "abcd", "STRING_LENGTH_GREATER_THAN_MAX"),
    ({"type": "string", "allowed_values": ["cat", "dog"]}, "dog", None),
    ({"type": "string", "allowed_values": ["cat", "dog"]}, "cow", "VALUE_NOT_ALLOWED"),
    ({"type": "string", "pattern": "[a-z]+"}, "abc", None),
    ({"type": "string", "pattern": "[a-z]+"}, "abc1", "VALUE_DOES_NOT_MATCH_PATTERN"),
    ({"type": "string", "pattern": "[a-z]+"}, "1abc", "VALUE_DOES_NOT_MATCH_PATTERN"),
    # integer
    ({"type": "integer"}, 7, None),
    ({"type": "integer"}, -7, None),
    ({"type": "integer"}, 7.0, None),
    ({"type": "integer"}, 7.5, "INTEGER_EXPECTED"),
    ({"type": "integer"}, True, "INTEGER_EXPECTED"),
    ({"type": "integer"}, "7", "INTEGER_EXPECTED"),
    ({"type": "integer"}, float("inf"), "INTEGER_EXPECTED"),
    ({"type": "integer", "min_value": 1}, 1, None),
    ({"type": "integer", "min_value": 1}, 0, "VALUE_LESS_THAN_MIN"),
    ({"type": "integer", "max_value": 10}, 10, None),
    ({"type": "integer", "max_value": 10}, 11, "VALUE_GREATER_THAN_MAX"),
    ({"type": "integer", "allowed_values": [1, 2, 3]}, 2, None),
    ({"type": "integer", "allowed_values": [1, 2, 3]}, 4, "VALUE_NOT_ALLOWED"),
    # float
    ({"type": "float"}, 0.5, None),
    ({"type": "float"}, 3, None),
    ({"type": "float"}, False, "FLOAT_EXPECTED"),
    ({"type": "float"}, "0.5", "FLOAT_EXPECTED"),
    ({"type": "float"}, float("nan"), "FLOAT_EXPECTED"),
    ({"type": "float", "min_value": 0.0}, -0.1, "VALUE_LESS_THAN_MIN"),
    ({"type": "float", "max_value": 1.0}, 1.0, None),
    ({"type": "float", "max_value": 1.0}, 1.01, "VALUE_GREATER_THAN_MAX"),
    ({"type": "float", "allowed_values": [0.5, 1]}, 1.0, None),
    ({"type": "float", "allowed_values": [0.5, 1]}, 0.25, "VALUE_NOT_ALLOWED"),
    # boolean
    ({"type": "boolean"}, True, None),
    ({"type": "boolean"}, False, None),
    ({"type": "boolean"}, 1, "BOOLEAN_EXPECTED"),
    ({"type": "boolean"}, "true", "BOOLEAN_EXPECTED"),
    ({"type": "boolean", "allowed_values": [True]}, True, None),
    ({"type": "boolean", "allowed_values": [True]}, False, "VALUE_NOT_ALLOWED"),
    # url
    ({"type": "url"}, "http://images.com/1.png", None),
    ({"type": "url"}, "https://user@example.com:8080/a?b=c#d", None),
    ({"type": "url"}, "HTTPS://[::1]/x", None),
    ({"type": "url"}, "ftp://example.com/a", "INVALID_URL_SYNTAX"),
    ({"type": "url"}, "http://", "INVALID_URL_SYNTAX"),
    ({"type": "url"}, "http:///path", "INVALID_URL_SYNTAX"),
    ({"type": "url"}, "images.com/1.png", "INVALID_URL_SYNTAX"),
    ({"type": "url"}, "http://exa mple.com/", "INVALID_URL_SYNTAX"),
    ({"type": "url"}, 42, "STRING_EXPECTED"),
    # file
    ({"type": "file"}, "f-8c1e2", None),
    ({"type": "file"}, "", "STRING_LENGTH_LESS_THAN_MIN"),
    ({"type": "file"}, 17, "STRING_EXPECTED"),
    # coordinates
    ({"type": "coordinates"}, "53.910236,27.531110", None),
    ({"type": "coordinates"}, "-90, 180", None),
    ({"type": "coordinates"}, "90.1,0", "INVALID_COORDINATES"),
    ({"type": "coordinates"}, "0,-180.5", "INVALID_COORDINATES"),
    ({"type": "coordinates"}, "53.9", "INVALID_COORDINATES"),
    ({"type": "coordinates"}, "north,east", "INVALID_COORDINATES"),
    ({"type": "coordinates"}, [53.9, 27.5], "STRING_EXPECTED"),
    # json
    ({"type": "json"}, {"a": [1, {"b": None}]}, None),
    ({"type": "json"}, {}, None),
    ({"type": "json"}, [1, 2], "OBJECT_EXPECTED"),
    ({"type": "json"}, "{}", "OBJECT_EXPECTED"),
    # arrays: the array itself
    ({"type": "array_string"}, ["a", "b"], None),
    ({"type": "array_string"}, [], None),
    ({"type": "array_string"}, "a", "ARRAY_EXPECTED"),
    ({"type": "array_integer", "min_size": 2}, [1], "ARRAY_SIZE_LESS_THAN_MIN"),
    ({"type": "array_integer", "max_size": 2}, [1, 2, 3], "ARRAY_SIZE_GREATER_THAN_MAX"),
    ({"type": "array_integer", "min_size": 1, "max_size": 2}, [1, 2], None),
    ({"type": "array_float"}, [0.5, 2], None),
    ({"type": "array_boolean"}, [True, False], None),
    ({"type": "array_url"}, ["https://a.io/x"], None),
    ({"type": "array_file"}, ["f1", "f2"], None),
    ({"type": "array_coordinates"}, ["1,2", "3,4"], None),
    ({"type": "array_json"}, [{"a": 1}, {}], None),
]

# element errors of arrays: (definition, value, expected (index, code) pairs)
ELEMENT_CASES: list[tuple[dict[str, Any], list[Any], list[tuple[int, str]]]] = [
    ({"type": "array_string"}, ["a", 1, "c"], [(1, "STRING_EXPECTED")]),
    (
        {"type": "array_string", "max_length": 2},
        ["ab", "abc"],
        [(1, "STRING_LENGTH_GREATER_THAN_MAX")],
    ),
    (
        {"type": "array_string", "allowed_values": ["x"]},
        ["x", "y", "z"],
        [(1, "VALUE_NOT_ALLOWED"), (2, "VALUE_NOT_ALLOWED")],
    ),
    ({"type": "array_integer"}, [1, 2.5, True], [(1, "INTEGER_EXPECTED"), (2, "INTEGER_EXPECTED")]),
    ({"type": "array_integer", "min_value": 0}, [0, -1], [(1, "VALUE_LESS_THAN_MIN")]),
    ({"type": "array_float", "max_value": 1}, [1, 2], [(1, "VALUE_GREATER_THAN_MAX")]),
    ({"type": "array_boolean"}, [True, "no"], [(1, "BOOLEAN_EXPECTED")]),
    ({"type": "array_url"}, ["https://a.io", "a.io"], [(1, "INVALID_URL_SYNTAX")]),
    ({"type": "array_file"}, ["f1", ""], [(1, "STRING_LENGTH_LESS_THAN_MIN")]),
    ({"type": "array_coordinates"}, ["1,2", "1;2"], [(1, "INVALID_COORDINATES")]),
    ({"type": "array_json"}, [{}, []], [(1, "OBJECT_EXPECTED")]),
    (
        {"type": "array_string", "pattern": "\\d+"},
        ["12", "x"],
        [(1, "VALUE_DOES_NOT_MATCH_PATTERN")],
    ),
    ({"type": "array_string"}, ["a", None], [(1, "VALUE_REQUIRED")]),
]


def check_one(definition: dict[str, Any], value: Any) -> list[FieldError]:
    spec = Spec.parse({"f": definition}, where="input_spec")
    return spec.validate({"f": value}, prefix="input_values")


@pytest.mark.parametrize(("definition", "value", "code"), CASES)
def test_value_table(definition, value, code):
    errors = check_one(definition, value)
    if code is None:
        assert errors == []
    else:
        assert [(e.path, e.code) for e in errors] == [("input_values.f", code)]
        assert errors[0].message


@pytest.mark.parametrize(("definition", "value", "expected"), ELEMENT_CASES)
def test_array_element_errors_name_the_element(definition, value, expected):
    errors = check_one(definition, value)
    assert [(e.path, e.code) for e in errors] == [(f"input_values.f.{i}", c) for i, c in expected]


def test_the_tables_cover_every_type_and_every_code():
    codes = {c for _, _, c in CASES if c} | {c for *_, exp in ELEMENT_CASES for _, c in exp}
    codes |= {"VALUE_REQUIRED"}  # tested below on missing fields
    assert codes == {
        "VALUE_REQUIRED",
        "VALUE_NOT_ALLOWED",
        "STRING_EXPECTED",
        "INTEGER_EXPECTED",
        "FLOAT_EXPECTED",
        "BOOLEAN_EXPECTED",
        "ARRAY_EXPECTED",
        "OBJECT_EXPECTED",
        "INVALID_URL_SYNTAX",
        "INVALID_COORDINATES",
        "STRING_LENGTH_LESS_THAN_MIN",
        "STRING_LENGTH_GREATER_THAN_MAX",
        "VALUE_LESS_THAN_MIN",
        "VALUE_GREATER_THAN_MAX",
        "VALUE_DOES_NOT_MATCH_PATTERN",
        "ARRAY_SIZE_LESS_THAN_MIN",
        "ARRAY_SIZE_GREATER_THAN_MAX",
    }
    seen = {d["type"] for d, _, c in CASES if c is None}
    assert seen == set(TYPES)
    for t in BASE_TYPES:  # an invalid value for every base type, as a scalar and in an array
        assert any(d["type"] == t and c for d, _, c in CASES)
        assert any(d["type"] == f"array_{t}" for d, *_ in ELEMENT_CASES)


def test_missing_and_null_required_fields_and_unknown_keys():
    spec = Spec.parse(
        {
            "image": {"type": "url"},
            "note": {"type": "string", "required": False},
        },
        where="input_spec",
    )
    assert spec.validate({"image": "http://a.io/1.png"}, prefix="input_values") == []
    assert spec.validate({"image": "http://a.io", "note": None}, prefix="input_values") == []
    errors = spec.validate({"note": "x", "label": 1}, prefix="input_values")
    assert errors == [
        FieldError("input_values.label", "VALUE_NOT_ALLOWED", errors[0].message),
        FieldError("input_values.image", "VALUE_REQUIRED", REQUIRED),
    ]
    assert spec.validate({"image": None}, prefix="p")[0] == FieldError(
        "p.image", "VALUE_REQUIRED", REQUIRED
    )
    assert spec.validate(None, prefix="input_values") == [
        FieldError("input_values", "VALUE_REQUIRED", REQUIRED)
    ]
    assert [e.code for e in spec.validate(["x"], prefix="input_values")] == ["OBJECT_EXPECTED"]


def test_partial_mode_skips_absent_required_fields_only():
    spec = Spec.parse({"a": {"type": "string"}, "b": {"type": "integer"}}, where="input_spec")
    assert spec.validate({"b": 1}, prefix="v", partial=True) == []
    assert spec.validate({}, prefix="v", partial=True) == []
    assert [(e.path, e.code) for e in spec.validate({"b": "x"}, prefix="v", partial=True)] == [
        ("v.b", "INTEGER_EXPECTED")
    ]
    # clearing a required field is still an error, and unknown keys are still refused
    assert [e.code for e in spec.validate({"a": None}, prefix="v", partial=True)] == [
        "VALUE_REQUIRED"
    ]
    assert [e.code for e in spec.validate({"z": 1}, prefix="v", partial=True)] == [
        "VALUE_NOT_ALLOWED"
    ]


def test_each_invalid_field_is_reported_once_with_all_fields_checked():
    spec = Spec.parse(
        {
            "s": {"type": "string", "max_length": 2, "allowed_values": ["ab", "abcd"]},
            "i": {"type": "integer"},
            "tags": {"type": "array_string"},
        },
        where="output_spec",
    )
    errors = spec.validate({"s": "abcd", "i": "1", "tags": [1, "ok", 2]}, prefix="output_values")
    assert [(e.path, e.code) for e in errors] == [
        ("output_values.s", "STRING_LENGTH_GREATER_THAN_MAX"),
        ("output_values.i", "INTEGER_EXPECTED"),
        ("output_values.tags.0", "STRING_EXPECTED"),
        ("output_values.tags.2", "STRING_EXPECTED"),
    ]


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ([{"type": "string"}], "task_spec.input_spec"),
        ({"image": "url"}, "task_spec.input_spec.image"),
        ({"image": {}}, "task_spec.input_spec.image.type"),
        ({"image": {"type": "picture"}}, "task_spec.input_spec.image.type"),
        ({"image": {"type": 3}}, "task_spec.input_spec.image.type"),
        ({"a.b": {"type": "string"}}, "task_spec.input_spec.a.b"),
        ({"": {"type": "string"}}, "task_spec.input_spec."),
        ({"x": {"type": "string", "required": "yes"}}, "task_spec.input_spec.x.required"),
        ({"x": {"type": "string", "hidden": 1}}, "task_spec.input_spec.x.hidden"),
        ({"x": {"type": "string", "min_length": -1}}, "task_spec.input_spec.x.min_length"),
        ({"x": {"type": "string", "max_length": 2.5}}, "task_spec.input_spec.x.max_length"),
        (
            {"x": {"type": "string", "min_length": 3, "max_length": 2}},
            "task_spec.input_spec.x.min_length",
        ),
        ({"x": {"type": "string", "pattern": "("}}, "task_spec.input_spec.x.pattern"),
        ({"x": {"type": "string", "pattern": 5}}, "task_spec.input_spec.x.pattern"),
        ({"x": {"type": "string", "pattern": "a" * 1001}}, "task_spec.input_spec.x.pattern"),
        ({"x": {"type": "string", "allowed_values": []}}, "task_spec.input_spec.x.allowed_values"),
        (
            {"x": {"type": "string", "allowed_values": "ab"}},
            "task_spec.input_spec.x.allowed_values",
        ),
        (
            {"x": {"type": "string", "allowed_values": ["a", 2]}},
            "task_spec.input_spec.x.allowed_values.1",
        ),
        (
            {"x": {"type": "integer", "allowed_values": [1, 1.5]}},
            "task_spec.input_spec.x.allowed_values.1",
        ),
        ({"x": {"type": "integer", "min_value": 0.5}}, "task_spec.input_spec.x.min_value"),
        ({"x": {"type": "float", "max_value": "1"}}, "task_spec.input_spec.x.max_value"),
        (
            {"x": {"type": "float", "min_value": 2, "max_value": 1}},
            "task_spec.input_spec.x.min_value",
        ),
        ({"x": {"type": "string", "min_value": 1}}, "task_spec.input_spec.x.min_value"),
        ({"x": {"type": "url", "max_length": 10}}, "task_spec.input_spec.x.max_length"),
        ({"x": {"type": "string", "min_size": 1}}, "task_spec.input_spec.x.min_size"),
        ({"x": {"type": "array_url", "max_size": -2}}, "task_spec.input_spec.x.max_size"),
        (
            {"x": {"type": "array_json", "min_size": 3, "max_size": 1}},
            "task_spec.input_spec.x.min_size",
        ),
        (
            {"x": {"type": "coordinates", "current_location": "yes"}},
            "task_spec.input_spec.x.current_location",
        ),
        (
            {"x": {"type": "boolean", "allowed_values": [1]}},
            "task_spec.input_spec.x.allowed_values.0",
        ),
    ],
)
def test_malformed_specs_raise_spec_error_naming_the_path(raw, path):
    with pytest.raises(SpecError) as info:
        Spec.parse(raw, where="task_spec.input_spec")
    assert isinstance(info.value, Invalid) and info.value.status_code == 422
    assert info.value.field == path
    assert info.value.to_dict()["details"]["field"] == path


def test_parse_normalises_and_round_trips():
    raw = {
        "image": {"type": "URL", "hidden": None, "max_length": None},
        "tags": {
            "type": "array_string",
            "required": False,
            "min_size": 1,
            "allowed_values": ("a", "b"),
        },
        "where": {"type": "coordinates", "current_location": True},
    }
    spec = Spec.parse(raw, where="output_spec")
    assert spec.to_json() == {
        "image": {"type": "url", "required": True, "hidden": False},
        "tags": {
            "type": "array_string",
            "required": False,
            "hidden": False,
            "allowed_values": ["a", "b"],
            "min_size": 1,
        },
        "where": {
            "type": "coordinates",
            "required": True,
            "hidden": False,
            "current_location": True,
        },
    }
    assert Spec.parse(spec.to_json(), where="output_spec").to_json() == spec.to_json()
    tags = spec.fields["tags"]
    assert isinstance(tags, FieldSpec) and tags.is_array and tags.base_type == "string"
    assert spec.validate({"image": "https://a.io/x", "where": "1,2"}, prefix="o") == []


def test_visible_drops_hidden_fields():
    spec = Spec.parse(
        {"image": {"type": "url"}, "answer_key": {"type": "string", "hidden": True}},
        where="input_spec",
    )
    assert spec.visible({"image": "http://a.io", "answer_key": "cat"}) == {"image": "http://a.io"}


def test_solutions_are_checked_against_the_output_spec():
    out = Spec.parse(
        {
            "result": {"type": "string", "allowed_values": ["OK", "BAD"]},
            "note": {"type": "string", "required": False},
        },
        where="output_spec",
    )
    good = [
        {"output_values": {"result": "OK"}, "correctness_weight": 1},
        {"output_values": {"result": "BAD", "note": "x"}},
    ]
    assert (
        validate_solutions(out, good, prefix="known_solutions", weight_key="correctness_weight")
        == []
    )
    bad = [
        {"output_values": {"result": "MAYBE"}, "correctness_weight": 1.5},
        {"output_values": {}},
        {"output_values": {"result": "OK"}, "confidence_weight": 0.5},
        "OK",
        {"output_values": {"result": "OK"}, "correctness_weight": -0.1},
        {"correctness_weight": "high"},
    ]
    errors = validate_solutions(out, bad, prefix="known_solutions", weight_key="correctness_weight")
    assert [(e.path, e.code) for e in errors] == [
        ("known_solutions.0.correctness_weight", "VALUE_GREATER_THAN_MAX"),
        ("known_solutions.0.output_values.result", "VALUE_NOT_ALLOWED"),
        ("known_solutions.1.output_values.result", "VALUE_REQUIRED"),
        ("known_solutions.2.confidence_weight", "VALUE_NOT_ALLOWED"),
        ("known_solutions.3", "OBJECT_EXPECTED"),
        ("known_solutions.4.correctness_weight", "VALUE_LESS_THAN_MIN"),
        ("known_solutions.5.correctness_weight", "FLOAT_EXPECTED"),
        ("known_solutions.5.output_values", "VALUE_REQUIRED"),
    ]
    baseline = [{"output_values": {"result": "OK"}, "confidence_weight": 0.8}]
    assert (
        validate_solutions(
            out, baseline, prefix="baseline_solutions", weight_key="confidence_weight"
        )
        == []
    )
    assert [
        e.code
        for e in validate_solutions(
            out, {"a": 1}, prefix="known_solutions", weight_key="correctness_weight"
        )
    ] == ["ARRAY_EXPECTED"]


def test_validation_does_not_touch_the_values():
    spec = Spec.parse({"tags": {"type": "array_integer"}, "n": {"type": "integer"}}, where="s")
    values = {"tags": (1, 2.0), "n": 3.0}
    assert spec.validate(values, prefix="v") == []
    assert values == {"tags": (1, 2.0), "n": 3.0}
