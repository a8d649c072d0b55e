"""One way to turn a pydantic ``ValidationError`` into taskloom's :class:`Invalid`.

Job params, request bodies of the services and the dialects' parameters are all parsed with
pydantic; whatever parsed them, a refusal reads the same: the first error's field path (under
``prefix`` when given) and message, every error listed in ``details.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from taskloom.errors import Invalid

M = TypeVar("M", bound=BaseModel)


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """``("items", 0, "pool_id")`` → ``items.0.pool_id`` (under ``prefix``)."""
    path = ".".join(str(p) for p in loc)
    if prefix:
        return f"{prefix}.{path}" if path else prefix
    return path


def invalid_from(
    exc: ValidationError, *, prefix: str = "", code: str = "invalid", default_field: str = "body"
) -> Invalid:
    """The :class:`Invalid` for ``exc`` (raise it ``from exc``)."""
    errors = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {"loc": (), "msg": "invalid value"}
    field = field_path(first["loc"], prefix)
    return Invalid(
        f"{field}: {first['msg']}" if field else str(first["msg"]),
        code=code,
        field=field or default_field,
        details={
            "errors": [
                {"field": field_path(e["loc"], prefix) or default_field, "message": e["msg"]}
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
