"""The NCLUE task creation request's rules (``taskloom.services.task_models_rules``): every
rule the seed states, with the failing field named."""

from __future__ import annotations

import pytest

from taskloom.errors import Invalid
from taskloom.services.task_models_rules import TaskRequest, validate_task_request

FEATURE = "79eb85b5-8ec5-4e1a-8617-64a1977c8062"
VALID = {
    "name": "Prediction model for pet food purchase",
    "train_feature_id": FEATURE,
    "train_bucket": "your.bucket.name",
    "train_file_path": "task_dataset/pet_food.tsv",
}
FORBIDDEN = "&$@=;:+,?*\\{}^%`[]<>~#|\"'"


def errors_of(body) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as err:
        validate_task_request(body)
    exc = err.value
    listed = [(e["field"], e["code"]) for e in exc.details["errors"]]
    assert (exc.field, exc.code) == listed[0]  # the error names its first problem
    assert exc.status_code == 422
    return listed


def test_the_seed_request_is_valid():
    req = validate_task_request(dict(VALID))
    assert req == TaskRequest(**VALID)
    assert req.as_dict()["test_bucket"] is None
    assert not req.has_test_set and req.test_features is None


def test_unknown_fields_are_ignored_and_optional_nulls_are_absent():
    body = {**VALID, "test_feature_id": None, "test_bucket": "", "colour": "blue"}
    assert validate_task_request(body) == TaskRequest(**VALID)


@pytest.mark.parametrize("field", ["name", "train_feature_id", "train_bucket", "train_file_path"])
@pytest.mark.parametrize("value", ["<absent>", None, "", "   "])
def test_required_fields(field, value):
    body = dict(VALID)
    if value == "<absent>":
        del body[field]
    else:
        body[field] = value
    assert errors_of(body) == [(field, "required")]


def test_every_missing_field_is_listed():
    assert errors_of({}) == [
        ("name", "required"),
        ("train_feature_id", "required"),
        ("train_bucket", "required"),
        ("train_file_path", "required"),
    ]


@pytest.mark.parametrize("body", [None, [], "name", 3])
def test_the_body_must_be_an_object(body):
    assert errors_of(body) == [("", "invalid_body")]


@pytest.mark.parametrize("field", ["name", "train_feature_id", "train_bucket", "train_file_path"])
def test_fields_are_strings(field):
    assert errors_of({**VALID, field: 12}) == [(field, "invalid_type")]


def test_name_is_at_most_40_characters():
    assert validate_task_request({**VALID, "name": "n" * 40}).name == "n" * 40
    assert validate_task_request({**VALID, "name": "반려동물" * 10}).name == "반려동물" * 10
    assert errors_of({**VALID, "name": "n" * 41}) == [("name", "name_too_long")]
    assert errors_of({**VALID, "name": "반려동물" * 10 + "!"}) == [("name", "name_too_long")]
    # surrounding spaces are not part of the name
    assert validate_task_request({**VALID, "name": "  pet food  "}).name == "pet food"


def test_name_has_no_control_characters():
    assert errors_of({**VALID, "name": "pet\nfood"}) == [("name", "invalid_name")]


@pytest.mark.parametrize("prefix", ["train", "test"])
@pytest.mark.parametrize("char", list(FORBIDDEN))
def test_each_forbidden_character_in_a_file_path(prefix, char):
    body = {**VALID, "test_bucket": "tests", "test_file_path": "ok/test.tsv"}
    body[f"{prefix}_file_path"] = f"task_dataset/pet{char}food.tsv"
    assert errors_of(body) == [(f"{prefix}_file_path", "invalid_file_path")]


@pytest.mark.parametrize("code", [*range(0, 32), *range(128, 256)])
def test_ascii_0_to_31_and_128_to_255_in_a_file_path(code):
    body = {**VALID, "train_file_path": f"task_dataset/pet{chr(code)}food.tsv"}
    assert errors_of(body) == [("train_file_path", "invalid_file_path")]


def test_allowed_path_characters():
    for path in ("a/b-c_d.e (1)!.tsv", "데이터/펫푸드.tsv", "x/y/z/w.csv"):
        assert validate_task_request({**VALID, "train_file_path": path}).train_file_path == path


@pytest.mark.parametrize("path", ["/abs/file.tsv", "../other/file.tsv", "a/../../b.tsv", "a//b"])
def test_paths_that_leave_their_bucket(path):
    assert errors_of({**VALID, "train_file_path": path}) == [
        ("train_file_path", "invalid_file_path")
    ]


@pytest.mark.parametrize("bucket", ["UPPER", "a", "under_score", "192.168.0.1", "a..b"])
def test_bucket_names(bucket):
    assert errors_of({**VALID, "train_bucket": bucket}) == [("train_bucket", "invalid_bucket_name")]


def test_a_full_test_set():
    body = {
        **VALID,
        "test_feature_id": "feat-2",
        "test_bucket": "tests",
        "test_file_path": "t/test.tsv",
    }
    req = validate_task_request(body)
    assert req.has_test_set and req.test_features == "feat-2"


def test_a_test_file_without_test_feature_id_uses_the_training_features():
    req = validate_task_request({**VALID, "test_bucket": "tests", "test_file_path": "t.tsv"})
    assert req.test_feature_id is None and req.test_features == FEATURE


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"test_bucket": "tests"}, [("test_file_path", "required_with")]),
        ({"test_file_path": "t.tsv"}, [("test_bucket", "required_with")]),
        ({"test_feature_id": "feat-2"}, [("test_file_path", "test_file_required")]),
        (
            {"test_feature_id": "feat-2", "test_file_path": "t.tsv"},
            [("test_bucket", "required_with")],
        ),
    ],
)
def test_test_set_fields_come_together(extra, expected):
    assert errors_of({**VALID, **extra}) == expected


def test_problems_in_several_fields_are_all_listed():
    body = {"name": "n" * 41, "train_feature_id": FEATURE, "train_bucket": "B", "test_bucket": "te"}
    assert errors_of(body) == [
        ("name", "name_too_long"),
        ("train_file_path", "required"),
        ("train_bucket", "invalid_bucket_name"),
        ("test_bucket", "invalid_bucket_name"),
        ("test_file_path", "required_with"),
    ]
