"""Crowd bodies are parsed once (``services.crowd.bodies``), and every pydantic refusal, a
service's or a request's, becomes ``Invalid`` through ``taskloom.validation.invalid_from``."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from taskloom.errors import Invalid
from taskloom.services.crowd.bodies import (
    OverlapSet,
    PoolCreate,
    PoolUpdate,
    SkillCreate,
    TaskSuiteUpdate,
    TaskUpdate,
    UserSkillSet,
    parse_body,
)
from taskloom.validation import invalid_from

POOL = {
    "project_id": "p",
    "private_name": "batch",
    "reward_per_assignment": 0.05,
    "assignment_max_duration_seconds": 600,
    "will_expire": "2035-01-01T00:00:00",
}


@pytest.mark.parametrize(
    ("model", "body", "field", "type_"),
    [
        (TaskUpdate, {"overlap": "2"}, "overlap", "int_type"),
        (TaskUpdate, {"overlap": True}, "overlap", "int_type"),
        (TaskUpdate, {"overlap": 2**63}, "overlap", "less_than_equal"),
        (TaskUpdate, {"infinite_overlap": 1}, "infinite_overlap", "bool_type"),
        (TaskUpdate, {"known_solutions": []}, "known_solutions", "extra_forbidden"),
        (TaskSuiteUpdate, {"issuing_order_override": True}, "issuing_order_override", "float_type"),
        (OverlapSet, {}, "overlap", "missing"),
        (UserSkillSet, {"skill_id": "s", "user_id": "u", "value": True}, "value", "float_type"),
        (
            UserSkillSet,
            {"skill_id": "s", "user_id": "u", "value": 100.5},
            "value",
            "less_than_equal",
        ),
        (SkillCreate, {"name": "a\x00b"}, "name", "value_error"),
        (SkillCreate, {"name": "   "}, "name", "value_error"),
        (
            SkillCreate,
            {"name": "s", "skill_ttl_hours": 2**63},
            "skill_ttl_hours",
            "less_than_equal",
        ),
        (PoolCreate, {**POOL, "reward_per_assignment": "1"}, "reward_per_assignment", "float_type"),
        (
            PoolUpdate,
            {"mixer_config": {"real_tasks_count": 1001}},
            "mixer_config.real_tasks_count",
            "less_than_equal",
        ),
        (PoolUpdate, {"private_comment": "x\x00"}, "private_comment", "value_error"),
    ],
)
def test_a_bad_body_is_invalid_naming_the_field(model, body, field, type_):
    with pytest.raises(Invalid) as exc:
        parse_body(model, body)
    assert exc.value.field == field
    assert exc.value.details["errors"][0]["type"] == type_


def test_strict_types_take_what_toloka_clients_send():
    assert parse_body(TaskSuiteUpdate, {"issuing_order_override": 5}).issuing_order_override == 5.0
    assert parse_body(OverlapSet, {"overlap": 0}).overlap == 0  # set-overlap-or-min: stop issuing
    defaults = {"default_overlap_for_new_tasks": 3, "default_overlap_for_new_task_suites": 0}
    assert parse_body(PoolUpdate, {"defaults": defaults}).sent() == {"defaults": defaults}


def test_a_parsed_body_is_taken_as_it_is():
    body = TaskUpdate(overlap=2)
    assert parse_body(TaskUpdate, body) is body


def test_keep_unknown_keeps_fields_at_every_level_and_still_checks_the_known_ones():
    body = {
        **POOL,
        "may_contain_adult_content": False,
        "mixer_config": {"real_tasks_count": 2, "force_last_assignment": True},
    }
    pool = parse_body(PoolCreate, body, keep_unknown=True)
    assert isinstance(pool, PoolCreate)
    assert pool.sent()["may_contain_adult_content"] is False
    assert pool.sent()["mixer_config"] == {"real_tasks_count": 2, "force_last_assignment": True}
    with pytest.raises(Invalid) as exc:  # without keep_unknown, the nested one is refused too
        parse_body(PoolCreate, body)
    assert exc.value.field in ("may_contain_adult_content", "mixer_config.force_last_assignment")
    with pytest.raises(Invalid) as exc:
        parse_body(PoolCreate, {**body, "assignment_max_duration_seconds": 0}, keep_unknown=True)
    assert exc.value.field == "assignment_max_duration_seconds"
    with pytest.raises(ValidationError):
        PoolCreate.model_validate({**POOL, "x": 1})  # the native model is untouched


def test_a_request_validation_error_loses_its_source_word():
    try:
        TaskUpdate.model_validate({"overlap": "x"})
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
    inv = invalid_from(RequestValidationError(errors), request=True)
    assert inv.field == "overlap" and inv.message.startswith("overlap: ")
    assert inv.details["errors"] == [
        {"field": "overlap", "message": "Input should be a valid integer", "type": "int_type"}
    ]
    query = RequestValidationError(
        [{"loc": ("query", "limit"), "msg": "bad", "type": "int_parsing"}]
    )
    assert invalid_from(query, request=True).field == "limit"
    assert invalid_from(query).field == "query.limit"  # a service's own errors keep their path
