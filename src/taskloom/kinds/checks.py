"""Checks of a kind's params against the dataset's field list, made when the job is
submitted: a field that does not exist, or holds the wrong type, is a 422 that names the
param and lists the fields the dataset has, not a job that does nothing or fails later."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from taskloom.errors import Invalid


def _listed(fields: Mapping[str, Any]) -> list[str]:
    """The dataset's fields in first-seen order (what the error shows)."""
    return [k for k, _ in sorted(fields.items(), key=lambda kv: kv[1].get("seq", 1 << 30))]


def _has_beneath(fields: Mapping[str, Any], path: str) -> bool:
    """Whether the dataset has fields beneath ``path`` (``path.key``): it holds objects."""
    prefix = path + "."
    return any(name.startswith(prefix) for name in fields)


def require_field(
    fields: Mapping[str, Any],
    path: str,
    *,
    param: str,
    types: Collection[str] | None = None,
    what: str = "",
) -> None:
    """``path`` must be a field of the dataset; with ``types``, its type must be one of them
    (``mixed`` passes, but for a vector). A field that holds objects has fields beneath it
    (``path.key``) and counts as of type ``object``."""
    found: set[str] = set()
    if path in fields:
        found.add(str(fields[path].get("type")))
    if _has_beneath(fields, path):
        found.add("object")
    if not found:
        names = _listed(fields)
        raise Invalid(
            f"the dataset has no field {path!r}; its fields: {', '.join(names) or 'none yet'}",
            code="unknown_field",
            field=param,
            details={"fields": names},
        )
    allowed = set(types or ()) if "vector" in (types or ()) else {*(types or ()), "mixed"}
    if types is not None and not found & allowed:
        if "vector" in types:
            raise Invalid(
                f"{path!r} is not a vector field (its type is {', '.join(sorted(found))})",
                code="not_a_vector_field",
                field=param,
                details={"vector_fields": vector_fields(fields)},
            )
        raise Invalid(
            f"{path!r} holds {', '.join(sorted(found))}; {what or 'this kind'} needs "
            f"{' or '.join(sorted(types))}",
            code="wrong_field_type",
            field=param,
            details={"type": sorted(found)},
        )


def vector_fields(fields: Mapping[str, Any]) -> list[str]:
    return [k for k in _listed(fields) if fields[k].get("type") == "vector"]
