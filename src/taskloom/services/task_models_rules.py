"""The rules of a task-model creation request (NCLUE ``POST /api/v1/tasks``), as one pure
function: :func:`validate_task_request` turns a JSON body into a :class:`TaskRequest` or
raises ``Invalid`` naming every offending field.

Fields (strings):

============================  =========  ==============================================
``name``                      required   1-40 characters after trimming spaces; no
                                         control characters (codes 0-31, 127)
``train_feature_id``          required   the feature table the training rows come from
``train_bucket``              required   a bucket name (object-storage rules)
``train_file_path``           required   a file path inside it (NCLUE's path rules)
``test_feature_id``           optional   the feature table of the test rows
``test_bucket``               optional   bucket of the test correct-answer file
``test_file_path``            optional   its path (same rules as ``train_file_path``)
============================  =========  ==============================================

The test set: the seed marks each ``test_*`` field optional on its own. A test set is a
labelled file, so ``test_bucket`` and ``test_file_path`` come together or not at all;
``test_feature_id`` may be left out when they are given (the test keys are then looked up
in the training feature table, :attr:`TaskRequest.test_features`), but it is refused
without a test file, which would leave nothing to evaluate. An optional field sent as
``null`` or ``""`` is absent. Fields the request does not define are ignored.

File paths are checked by :func:`taskloom.services.buckets.check_file_path` (the characters
``&$@=;:+,?*\\{}^%`[]<>~#|"'``, codes 0-31 and 127-255, absolute paths and ``.``/``..``
segments are refused), bucket names by :func:`~taskloom.services.buckets.check_bucket_name`.

Errors: one ``Invalid`` whose ``field``/``code``/message are the first problem's and whose
``details["errors"]`` lists them all as ``{"field", "code", "message"}``. Codes:
``invalid_body``, ``required``, ``invalid_type``, ``name_too_long``, ``invalid_name``,
``invalid_bucket_name``, ``invalid_file_path``, ``required_with``, ``test_file_required``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from taskloom.errors import Invalid
from taskloom.services.buckets import check_bucket_name, check_file_path

__all__ = ["MAX_NAME_LENGTH", "TaskRequest", "validate_task_request"]

MAX_NAME_LENGTH = 40
MAX_FEATURE_ID_LENGTH = 128


@dataclass(frozen=True)
class TaskRequest:
    """A valid task-model creation request (absent optional fields are None)."""

    name: str
    train_feature_id: str
    train_bucket: str
    train_file_path: str
    test_feature_id: str | None = None
    test_bucket: str | None = None
    test_file_path: str | None = None

    @property
    def has_test_set(self) -> bool:
        """Whether a separate test file was given (else the metrics come from a held-out
        share of the training rows)."""
        return self.test_file_path is not None

    @property
    def test_features(self) -> str | None:
        """The feature table the test keys are looked up in (None without a test set)."""
        if not self.has_test_set:
            return None
        return self.test_feature_id or self.train_feature_id

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, code: str, message: str) -> None:
        self.items.append({"field": field, "code": code, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]
            raise Invalid(
                first["message"],
                code=first["code"],
                field=first["field"],
                details={"errors": list(self.items)},
            )


def _has_control_chars(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _string(body: Mapping[str, Any], field: str, errors: _Errors, *, required: bool) -> str | None:
    value = body.get(field)
    if value is None or value == "":
        if required:
            errors.add(field, "required", f"{field} is required")
        return None
    if not isinstance(value, str):
        errors.add(field, "invalid_type", f"{field} must be a string")
        return None
    if required and not value.strip():
        errors.add(field, "required", f"{field} is required")
        return None
    return value


def _name(body: Mapping[str, Any], errors: _Errors) -> str | None:
    raw = _string(body, "name", errors, required=True)
    if raw is None:
        return None
    name = raw.strip()
    if len(name) > MAX_NAME_LENGTH:
        errors.add(
            "name",
            "name_too_long",
            f"name is at most {MAX_NAME_LENGTH} characters (it has {len(name)})",
        )
        return None
    if _has_control_chars(name):
        errors.add("name", "invalid_name", "name may not contain control characters")
        return None
    return name


def _feature_id(value: str | None, field: str, errors: _Errors) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_FEATURE_ID_LENGTH or _has_control_chars(value) or value != value.strip():
        errors.add(field, "invalid_feature_id", f"{field} is not a feature id")
        return None
    return value


def _checked(
    value: str | None, field: str, check: Callable[[Any, str], str], errors: _Errors
) -> str | None:
    if value is None:
        return None
    try:
        return check(value, field)
    except Invalid as exc:
        errors.add(field, exc.code, exc.message)
        return None


def validate_task_request(body: Any) -> TaskRequest:
    """The request's fields, checked; ``Invalid`` (with every problem) otherwise."""
    errors = _Errors()
    if not isinstance(body, Mapping):
        errors.add("", "invalid_body", "the request body must be a JSON object")
        errors.raise_if_any()
    name = _name(body, errors)
    fields: dict[str, str | None] = {}
    for prefix, required in (("train", True), ("test", False)):
        feature = _string(body, f"{prefix}_feature_id", errors, required=required)
        bucket = _string(body, f"{prefix}_bucket", errors, required=required)
        path = _string(body, f"{prefix}_file_path", errors, required=required)
        fields[f"{prefix}_feature_id"] = _feature_id(feature, f"{prefix}_feature_id", errors)
        fields[f"{prefix}_bucket"] = _checked(bucket, f"{prefix}_bucket", check_bucket_name, errors)
        fields[f"{prefix}_file_path"] = _checked(
            path, f"{prefix}_file_path", check_file_path, errors
        )
    _test_set_rules(body, errors)
    errors.raise_if_any()
    assert name is not None
    return TaskRequest(
        name=name,
        train_feature_id=_present(fields["train_feature_id"]),
        train_bucket=_present(fields["train_bucket"]),
        train_file_path=_present(fields["train_file_path"]),
        test_feature_id=fields["test_feature_id"],
        test_bucket=fields["test_bucket"],
        test_file_path=fields["test_file_path"],
    )


def _present(value: str | None) -> str:
    assert value is not None  # required fields: an absent one was an error above
    return value


def _test_set_rules(body: Mapping[str, Any], errors: _Errors) -> None:
    def given(field: str) -> bool:
        return body.get(field) not in (None, "")

    bucket, path = given("test_bucket"), given("test_file_path")
    if bucket and not path:
        errors.add(
            "test_file_path",
            "required_with",
            "test_file_path is required when test_bucket is given",
        )
    elif path and not bucket:
        errors.add(
            "test_bucket", "required_with", "test_bucket is required when test_file_path is given"
        )
    elif given("test_feature_id") and not bucket:
        errors.add(
            "test_file_path",
            "test_file_required",
            "test_feature_id needs a test set: give test_bucket and test_file_path too",
        )
