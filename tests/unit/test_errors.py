"""The error hierarchy, its HTTP envelope and the SDK's way back to typed errors."""

from __future__ import annotations

import pytest

from taskloom import errors as E
from taskloom.api.deps import bearer
from taskloom.api.errors import _loc_to_field, error_body


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (E.Invalid, 422, "invalid"),
        (E.MalformedJSON, 400, "malformed_json"),
        (E.PayloadTooLarge, 413, "payload_too_large"),
        (E.Unauthorized, 401, "unauthorized"),
        (E.Forbidden, 403, "forbidden"),
        (E.NotFound, 404, "not_found"),
        (E.Conflict, 409, "conflict"),
        (E.InvalidTransition, 409, "invalid_transition"),
        (E.RateLimited, 429, "rate_limited"),
        (E.Unavailable, 503, "unavailable"),
        (E.ServerError, 500, "internal_error"),
    ],
)
def test_each_error_has_a_status_and_a_code(cls, status, code):
    exc = cls()
    assert isinstance(exc, E.TaskloomError)
    assert (exc.status_code, exc.code) == (status, code)
    assert exc.message == cls.__doc__.strip()  # the message defaults to the docstring
    assert exc.to_dict() == {"code": code, "message": exc.message, "details": {}}


def test_field_goes_into_details():
    exc = E.Invalid("bad", code="bad_thing", field="a.b", details={"x": 1})
    assert exc.to_dict() == {
        "code": "bad_thing",
        "message": "bad",
        "details": {"x": 1, "field": "a.b"},
    }
    assert str(exc) == "bad"
    assert E.Invalid.code == "invalid"  # a per-instance code leaves the class alone


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "malformed_json", E.Invalid),
        (401, "invalid_api_key", E.Unauthorized),
        (404, "job_not_found", E.NotFound),
        (409, "invalid_transition", E.InvalidTransition),
        (409, "dataset_exists", E.Conflict),
        (413, "payload_too_large", E.PayloadTooLarge),
        (422, "invalid_filter", E.Invalid),
        (429, "rate_limited", E.RateLimited),
        (500, "internal_error", E.ServerError),
        (502, None, E.ServerError),
    ],
)
def test_error_for_status_rebuilds_the_typed_error(status, code, cls):
    body = error_body(code or "x", "msg", {"field": "f.g", "more": 1}) if code else None
    exc = E.error_for_status(status, body)
    assert type(exc) is cls
    assert exc.status_code == status
    if code:
        assert (exc.code, exc.message, exc.field) == (code, "msg", "f.g")
        assert exc.details == {"field": "f.g", "more": 1}
    else:
        assert exc.message == f"HTTP {status}"


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "name"), "name"),
        (("body", "documents", 0, "_id"), "documents[0]._id"),
        (("query", "limit"), "limit"),
        (("body",), ""),
        (("body", "params", "a", 2, 3), "params.a[2][3]"),
    ],
)
def test_pydantic_locations_become_field_paths(loc, field):
    assert _loc_to_field(loc) == field


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (None, None),
        ("", None),
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
    ],
)
def test_bearer(header, key):
    assert bearer(header) == key
