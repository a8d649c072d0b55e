"""Relevance AI filters, translated to taskloom's filter language (``store/filters.py``).

Relevance sends a list of conditions, all of which must hold::

    [{"field": "price", "filter_type": "numeric", "condition": ">=", "condition_value": 90},
     {"field": "brand", "filter_type": "category", "condition": "==", "condition_value": "x"}]

==================  =========================================================================
``numeric``         ``== != > >= < <=`` against a number
``date``            the same conditions against an ISO 8601 string (compared as text, which
                    orders ISO dates correctly)
``category``,       ``==`` / ``!=`` against a value, or against a list (any of / none of)
``exact_match``
``exists``          ``==``: the field is present; ``!=``: it is absent (the value is ignored)
``ids``             ``==`` / ``!=`` against a document id or a list of them (``field`` is
                    ignored)
``contains``        ``==``: the text contains the given text (case-sensitive); ``!=``: not
``categories``      ``==``: the array field holds one of the given values; ``!=``: none
``regexp``          ``==``: the pattern is found in the text (``$regex``); ``!=``: not
``wildcard``        ``==``: the whole text matches a pattern where ``*`` is any run of
                    characters and ``?`` one character; ``!=``: not
==================  =========================================================================

A condition with ``"strict": "must_or"`` joins the other ``must_or`` conditions in one OR
group; the group must hold along with every other condition. ``"strict": "must_not"``
conditions must all fail. ``text`` (full-text search) has no equivalent in taskloom's filter
language and answers 422 ``unsupported_filter``. A filter given as a JSON object instead of a
list is taken as a taskloom filter as it is.
"""

from __future__ import annotations

from typing import Any

from taskloom.errors import Invalid
from taskloom.store.filters import check_pattern

_ORDER = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_CONDITIONS = {"==", "!=", *_ORDER}
_UNSUPPORTED = {"text"}


def _bad(message: str, where: str, code: str = "invalid_filter") -> Invalid:
    return Invalid(message, code=code, field=where)


def translate(filters: Any, where: str = "filters") -> dict[str, Any] | None:
    """A taskloom filter for Relevance ``filters`` (``None`` when there is nothing to filter)."""
    if filters is None:
        return None
    if isinstance(filters, dict):
        return filters or None  # already taskloom's own language
    if not isinstance(filters, list):
        raise _bad("filters is a list of conditions", where)
    must: list[dict[str, Any]] = []
    any_of: list[dict[str, Any]] = []
    none_of: list[dict[str, Any]] = []
    for i, cond in enumerate(filters):
        here = f"{where}[{i}]"
        if not isinstance(cond, dict):
            raise _bad("a filter condition is an object", here)
        strict = cond.get("strict", "must")
        groups = {"must": must, "must_or": any_of, "must_not": none_of}
        if strict not in groups:
            raise _bad(f"strict {strict!r} is not one of must, must_or, must_not", f"{here}.strict")
        groups[strict].append(_condition(cond, here))
    if any_of:
        must.append(any_of[0] if len(any_of) == 1 else {"$or": any_of})
    if none_of:
        must.append({"$not": none_of[0] if len(none_of) == 1 else {"$or": none_of}})
    if not must:
        return None
    return must[0] if len(must) == 1 else {"$and": must}


def _condition(cond: dict[str, Any], where: str) -> dict[str, Any]:
    ftype = cond.get("filter_type")
    op = cond.get("condition", "==")
    value = cond.get("condition_value")
    field = cond.get("field")
    if not isinstance(ftype, str):
        raise _bad("filter_type is required", f"{where}.filter_type")
    if ftype in _UNSUPPORTED:
        raise _bad(
            f"filter_type {ftype!r} is not supported by taskloom",
            f"{where}.filter_type",
            "unsupported_filter",
        )
    if op not in _CONDITIONS:
        raise _bad(f"unknown condition {op!r}", f"{where}.condition")
    if ftype == "ids":
        return {"_id": _equality(op, value, f"{where}.condition_value", ftype)}
    if not isinstance(field, str) or not field:
        raise _bad("field is required", f"{where}.field")
    if ftype == "exists":
        if op not in ("==", "!="):
            raise _bad("exists takes == or !=", f"{where}.condition")
        return {field: {"$exists": op == "=="}}
    if ftype in ("category", "exact_match"):
        return {field: _equality(op, value, f"{where}.condition_value", ftype)}
    if ftype == "numeric":
        return {field: _compare(op, _number(value, f"{where}.condition_value"))}
    if ftype in ("contains", "regexp", "wildcard"):
        if op not in ("==", "!="):
            raise _bad(f"{ftype} takes == or !=", f"{where}.condition")
        if not isinstance(value, str):
            raise _bad(f"{ftype} takes a string", f"{where}.condition_value")
        if ftype == "contains":
            test: dict[str, Any] = {field: {"$contains": value}}
        else:
            pattern = value if ftype == "regexp" else _glob(value)
            test = {field: {"$regex": check_pattern(pattern, f"{where}.condition_value")}}
        return test if op == "==" else {"$not": test}
    if ftype == "categories":
        if op not in ("==", "!="):
            raise _bad("categories takes == or !=", f"{where}.condition")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise _bad("categories takes a value or a list of them", f"{where}.condition_value")
        tests = [{field: {"$contains": v}} for v in values]
        any_test = tests[0] if len(tests) == 1 else {"$or": tests}
        return any_test if op == "==" else {"$not": any_test}
    if ftype == "date":
        if not isinstance(value, str):
            raise _bad("a date is an ISO 8601 string", f"{where}.condition_value")
        return {field: _compare(op, value)}
    raise _bad(f"unknown filter_type {ftype!r}", f"{where}.filter_type")


def _equality(op: str, value: Any, where: str, ftype: str) -> dict[str, Any]:
    if op not in ("==", "!="):
        raise _bad(f"{ftype} takes == or !=", where.rsplit(".", 1)[0] + ".condition")
    if isinstance(value, list):
        return {"$in" if op == "==" else "$nin": value}
    return {"$eq" if op == "==" else "$ne": value}


def _compare(op: str, value: Any) -> dict[str, Any]:
    if op == "==":
        return {"$eq": value}
    if op == "!=":
        return {"$ne": value}
    return {_ORDER[op]: value}


def _number(value: Any, where: str) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    raise _bad("numeric filters compare with a number", where)


def _glob(pattern: str) -> str:
    """A wildcard pattern (``*``, ``?``) as an anchored regular expression."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isalnum() or ch in " _-":
            out.append(ch)
        else:
            out.append("[" + ch + "]" if ch not in "\\^]" else "\\" + ch)
    return "^" + "".join(out) + "$"
