"""One way to turn a pydantic ``ValidationError`` into taskloom's :class:`Invalid`.

Job params, request bodies of the services and the dialects' parameters are all parsed with
pydantic; whatever parsed them, a refusal reads the same: the first error's field path (under
``prefix`` when given) and message, every error listed in ``details.errors`` (field, message
and pydantic's error type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from taskloom.errors import Invalid

M = TypeVar("M", bound=BaseModel)


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """``("items", 0, "pool_id")`` → ``items.0.pool_id`` (under ``prefix``)."""
    path = ".".join(str(p) for p in loc)
    if prefix:
        return f"{prefix}.{path}" if path else prefix
    return path


class HasErrors(Protocol):
    """A pydantic ``ValidationError``, or FastAPI's ``RequestValidationError`` (the errors of
    a request's parameters and body, each ``loc`` starting with where the value was)."""

    def errors(self) -> Sequence[Any]: ...


_SOURCES = ("body", "query", "path", "header", "cookie")


def invalid_from(
    exc: ValidationError | HasErrors,
    *,
    prefix: str = "",
    code: str = "invalid",
    default_field: str = "body",
    request: bool = False,
) -> Invalid:
    """The :class:`Invalid` for ``exc`` (raise it ``from exc``). ``request``: ``exc`` is a
    request's (FastAPI's ``RequestValidationError``), whose ``loc`` starts with where the value
    was (``body``, ``query``, ...); that word is left out of the field path."""
    errors = [dict(e) for e in exc.errors()]
    if request:
        for e in errors:
            loc = tuple(e.get("loc", ()))
            e["loc"] = loc[1:] if loc and loc[0] in _SOURCES else loc
    first: Mapping[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid value"}
    field = field_path(first.get("loc", ()), prefix)
    return Invalid(
        f"{field}: {first['msg']}" if field else str(first["msg"]),
        code=code,
        field=field or default_field,
        details={
            "errors": [
                {
                    "field": field_path(e.get("loc", ()), prefix) or default_field,
                    "message": e["msg"],
                    # pydantic's error type (int_type, missing, extra_forbidden, ...): a front
                    # door words it in its own codes (Toloka: INTEGER_EXPECTED, ...)
                    "type": e.get("type"),
                }
                for e in errors
            ]
        },
    )


def parse_model(
    model: type[M],
    value: Any,
    *,
    prefix: str = "",
    code: str = "invalid",
    default_field: str = "body",
) -> M:
    """``model.model_validate(value)``, refusing with :func:`invalid_from`."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise invalid_from(exc, prefix=prefix, code=code, default_field=default_field) from exc


# -- names people read ------------------------------------------------------------------------


def check_display_name(
    value: Any, field: str, *, most: int = 200, code: str = "invalid_name", what: str = "a name"
) -> str:
    """``value`` when it is a name people read: 1 to ``most`` characters, not blank, no
    surrounding spaces and no control characters (NUL among them); spaces and punctuation
    inside are fine. Ids stay strict elsewhere."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > most
        or value != value.strip()
        or any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value)
    ):
        raise Invalid(
            f"{what} is 1 to {most} characters, without control characters or surrounding spaces",
            code=code,
            field=field,
        )
    return value
