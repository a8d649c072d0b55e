"""Checking crowd task and task suite items: pure code, the hot loop of batch creation.

An item's errors are ``{path: {"code", "message"}}`` (Toloka's shape: the first error of
each path). Valid items become ready-to-insert row tuples plus their public dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from taskloom.crowd.spec import REQUIRED_MESSAGE, Spec, validate_solutions

Errors = dict[str, dict[str, str]]

TASK_KEYS = frozenset(
    {
        "pool_id",
        "input_values",
        "known_solutions",
        "baseline_solutions",
        "message_on_unknown_solution",
        "overlap",
        "infinite_overlap",
        "origin_task_id",
        "reserved_for",
        "unavailable_for",
    }
)
SUITE_KEYS = frozenset(
    {
        "pool_id",
        "tasks",
        "overlap",
        "infinite_overlap",
        "reserved_for",
        "unavailable_for",
        "issuing_order_override",
        "mixed",
        "longitude",
        "latitude",
    }
)
SUITE_TASK_KEYS = frozenset(
    {"input_values", "known_solutions", "message_on_unknown_solution", "origin_task_id"}
)
# read-only fields a client may echo back (toloka-kit does), and traits taskloom ignores
IGNORED = frozenset(
    {
        "id",
        "created",
        "remaining_overlap",
        "traits_all_of",
        "traits_any_of",
        "traits_none_of_any",
    }
)

_REQUIRED = {"code": "VALUE_REQUIRED", "message": REQUIRED_MESSAGE}
_NOT_ALLOWED = {"code": "VALUE_NOT_ALLOWED", "message": "This field is not allowed here"}
_OBJECT = {"code": "OBJECT_EXPECTED", "message": "An object is expected"}
_STRING = {"code": "STRING_EXPECTED", "message": "A string is expected"}
_INTEGER = {"code": "INTEGER_EXPECTED", "message": "An integer is expected"}
_BOOLEAN = {"code": "BOOLEAN_EXPECTED", "message": "A boolean is expected"}
_ARRAY = {"code": "ARRAY_EXPECTED", "message": "An array is expected"}
_MIN_OVERLAP = {"code": "VALUE_LESS_THAN_MIN", "message": "The overlap must be at least 1"}
_MAX_OVERLAP = {"code": "VALUE_GREATER_THAN_MAX", "message": "The overlap is at most 100000"}
_POOL_MISSING = {"code": "OBJECT_NOT_FOUND", "message": "No pool with this id"}
_POOL_ARCHIVED = {"code": "POOL_ARCHIVED", "message": "The pool is archived"}
_NO_DEFAULT = {
    "code": "VALUE_REQUIRED",
    "message": "Value must be present and not equal to null "
    "(the pool has no default overlap to use)",
}
MAX_OVERLAP = 100_000
_dumps = orjson.dumps


@dataclass(frozen=True)
class PoolInfo:
    """What checking an item needs to know of its pool."""

    id: str
    status: str
    input_spec: Spec
    output_spec: Spec
    default_overlap: int | None
    default_suite_overlap: int | None


def _dump(value: Any) -> str | None:
    return None if value is None else _dumps(value).decode()


def _weighted(solutions: list[Any], key: str) -> list[dict[str, Any]]:
    out = []
    for s in solutions:
        w = s.get(key)
        out.append({"output_values": s["output_values"], key: 1.0 if w is None else float(w)})
    return out


def _ids(value: Any, path: str, errs: Errors) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errs[path] = _ARRAY
        return None
    out = []
    for i, v in enumerate(value):
        if isinstance(v, str) and v:
            out.append(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(str(v))
        else:
            errs.setdefault(f"{path}.{i}", _STRING)
    return out


def _unknown(item: Mapping[str, Any], keys: frozenset[str], prefix: str, errs: Errors) -> None:
    for key in item:
        if key not in keys and key not in IGNORED:
            errs.setdefault(f"{prefix}{key}", _NOT_ALLOWED)


def _task_content(
    item: Mapping[str, Any], info: PoolInfo, prefix: str, errs: Errors
) -> tuple[Any, list[dict[str, Any]] | None, str | None, str | None]:
    """(input_values, known_solutions, message_on_unknown_solution, origin_task_id)."""
    values = item.get("input_values")
    for e in info.input_spec.validate(values, prefix=f"{prefix}input_values"):
        if e.path not in errs:
            errs[e.path] = {"code": e.code, "message": e.message}
    known = item.get("known_solutions")
    if known is not None:
        found = validate_solutions(
            info.output_spec,
            known,
            prefix=f"{prefix}known_solutions",
            weight_key="correctness_weight",
        )
        for e in found:
            if e.path not in errs:
                errs[e.path] = {"code": e.code, "message": e.message}
        known = _weighted(known, "correctness_weight") if not found and known else None
    message = item.get("message_on_unknown_solution")
    if message is not None and not isinstance(message, str):
        errs[f"{prefix}message_on_unknown_solution"] = _STRING
    origin = item.get("origin_task_id")
    if origin is not None and not isinstance(origin, str):
        errs[f"{prefix}origin_task_id"] = _STRING
    return values, known, message, origin


def _overlap(
    item: Mapping[str, Any], default: int | None, allow_defaults: bool, errs: Errors
) -> tuple[int | None, bool]:
    infinite = item.get("infinite_overlap")
    if infinite is None:
        infinite = False
    elif infinite is not True and infinite is not False:
        errs["infinite_overlap"] = _BOOLEAN
        infinite = False
    overlap = item.get("overlap")
    if overlap is None:
        if not infinite:
            if allow_defaults and default is not None:
                overlap = default
            else:
                errs["overlap"] = _NO_DEFAULT if allow_defaults else _REQUIRED
    elif overlap.__class__ is not int:
        if isinstance(overlap, float) and overlap.is_integer():
            overlap = int(overlap)
        else:
            errs["overlap"] = _INTEGER
            overlap = None
    if overlap is not None:
        if overlap < 1:
            errs["overlap"] = _MIN_OVERLAP
        elif overlap > MAX_OVERLAP:
            errs["overlap"] = _MAX_OVERLAP
    return overlap, infinite


# a suite's numbers (as a PATCH bounds the order: bodies.TaskSuiteUpdate)
_SUITE_NUMBERS = (("issuing_order_override", 99_999.99999), ("latitude", 90), ("longitude", 180))


def _number(value: Any, path: str, most: float, errs: Errors) -> None:
    if value is None:
        return
    if value.__class__ not in (int, float) or value != value:  # bool, str, NaN
        errs[path] = {"code": "FLOAT_EXPECTED", "message": "A number is expected"}
    elif value > most:
        errs[path] = {"code": "VALUE_GREATER_THAN_MAX", "message": f"At most {most}"}
    elif value < -most:
        errs[path] = {"code": "VALUE_LESS_THAN_MIN", "message": f"At least {-most}"}


def _pool(item: Mapping[str, Any], pools: Mapping[str, PoolInfo], errs: Errors) -> PoolInfo | None:
    pool_id = item.get("pool_id")
    if pool_id.__class__ is not str:
        errs["pool_id"] = _REQUIRED if pool_id is None else _STRING
        return None
    info = pools.get(pool_id)
    if info is None:
        errs["pool_id"] = _POOL_MISSING
        return None
    if info.status == "ARCHIVED":
        errs["pool_id"] = _POOL_ARCHIVED
    return info


def kind_of(known: list[Any] | None, message: str | None) -> str:
    if not known:
        return "real"
    return "training" if message else "golden"


def check_task(
    item: Any,
    pools: Mapping[str, PoolInfo],
    allow_defaults: bool,
    app_id: str,
    task_id: str,
    ts: Any,
    now: datetime,
) -> tuple[tuple[Any, ...] | None, dict[str, Any] | None, Errors]:
    """(insert row, public task, {}) for a valid item; (None, None, errors) otherwise."""
    errs: Errors = {}
    if item.__class__ is not dict:
        return None, None, {"task": _OBJECT}
    info = _pool(item, pools, errs)
    if not TASK_KEYS.issuperset(item):
        _unknown(item, TASK_KEYS, "", errs)
    if info is None:
        return None, None, errs
    values, known, message, origin = _task_content(item, info, "", errs)
    baseline = item.get("baseline_solutions")
    if baseline is not None:
        found = validate_solutions(
            info.output_spec, baseline, prefix="baseline_solutions", weight_key="confidence_weight"
        )
        for e in found:
            if e.path not in errs:
                errs[e.path] = {"code": e.code, "message": e.message}
        baseline = _weighted(baseline, "confidence_weight") if not found and baseline else None
    overlap, infinite = _overlap(item, info.default_overlap, allow_defaults, errs)
    reserved = _ids(item.get("reserved_for"), "reserved_for", errs)
    unavailable = _ids(item.get("unavailable_for"), "unavailable_for", errs)
    if errs:
        return None, None, errs
    remaining = 0 if overlap is None else overlap
    row = (
        task_id,
        app_id,
        info.id,
        None,
        kind_of(known, message),
        _dumps(values).decode(),
        _dump(known),
        _dump(baseline),
        message,
        overlap,
        remaining,
        infinite,
        origin,
        _dump(reserved),
        _dump(unavailable),
        ts,
    )
    public: dict[str, Any] = {
        "id": task_id,
        "pool_id": info.id,
        "input_values": values,
        "overlap": overlap,
        "remaining_overlap": remaining,
        "infinite_overlap": infinite,
        "created": now,
    }
    if known:
        public["known_solutions"] = known
    if baseline:
        public["baseline_solutions"] = baseline
    if message is not None:
        public["message_on_unknown_solution"] = message
    if origin is not None:
        public["origin_task_id"] = origin
    if reserved is not None:
        public["reserved_for"] = reserved
    if unavailable is not None:
        public["unavailable_for"] = unavailable
    return row, public, errs


def check_suite(
    item: Any,
    pools: Mapping[str, PoolInfo],
    allow_defaults: bool,
) -> tuple[dict[str, Any] | None, Errors]:
    """The normalised suite (its tasks' content checked) or the errors."""
    errs: Errors = {}
    if item.__class__ is not dict:
        return None, {"task_suite": _OBJECT}
    info = _pool(item, pools, errs)
    if not SUITE_KEYS.issuperset(item):
        _unknown(item, SUITE_KEYS, "", errs)
    if info is None:
        return None, errs
    tasks = item.get("tasks")
    checked = []
    if not isinstance(tasks, list) or not tasks:
        errs["tasks"] = _REQUIRED if tasks is None else _ARRAY
    else:
        for i, task in enumerate(tasks):
            prefix = f"tasks.{i}."
            if not isinstance(task, dict):
                errs[f"tasks.{i}"] = _OBJECT
                continue
            if task.get("baseline_solutions") is not None:
                errs[f"{prefix}baseline_solutions"] = {
                    "code": "VALUE_NOT_ALLOWED",
                    "message": "Baseline solutions cannot be set on the tasks of a task suite",
                }
            rest = {k: v for k, v in task.items() if k != "baseline_solutions"}
            if not SUITE_TASK_KEYS.issuperset(rest):
                _unknown(rest, SUITE_TASK_KEYS, prefix, errs)
            checked.append(_task_content(task, info, prefix, errs))
    overlap, infinite = _overlap(item, info.default_suite_overlap, allow_defaults, errs)
    for key, most in _SUITE_NUMBERS:
        _number(item.get(key), key, most, errs)
    reserved = _ids(item.get("reserved_for"), "reserved_for", errs)
    unavailable = _ids(item.get("unavailable_for"), "unavailable_for", errs)
    if errs:
        return None, errs
    extra = {
        k: item[k]
        for k in ("issuing_order_override", "mixed", "longitude", "latitude")
        if item.get(k) is not None
    }
    return {
        "pool": info,
        "tasks": checked,
        "overlap": overlap,
        "infinite_overlap": infinite,
        "reserved_for": reserved,
        "unavailable_for": unavailable,
        "data": extra,
    }, errs
