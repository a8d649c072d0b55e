"""Toloka searches: a parsed query (``toloka_http.Search``) run by ``services.crowd.search``,
its rows turned into the crowd service's objects."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from taskloom.api.dialects.toloka_http import Search
from taskloom.runtime import Services
from taskloom.services.auth import Scope
from taskloom.services.crowd.search import CrowdSearch, Query

Convert = Callable[[Services, Scope, Any], dict[str, Any]]


def _user_skill(_: Services, __: Scope, row: Any) -> dict[str, Any]:
    return {
        "id": f"{row.skill_id}.{row.user_id}",
        "skill_id": row.skill_id,
        "user_id": str(row.user_id),
        "value": int(round(row.value)),
        "exact_value": row.value,
        "created": row.created_at,
        "modified": row.updated_at,
    }


def _aggregated(_: Services, __: Scope, row: Any) -> dict[str, Any]:
    return {
        "pool_id": row.pool_id,
        "task_id": row.task_id,
        "confidence": row.confidence,
        "output_values": row.output_values,
    }


def _public(module: str, name: str, row: Any) -> dict[str, Any]:
    """The crowd service's own row -> object function (imported when first used)."""
    mod = importlib.import_module(f"taskloom.services.crowd.{module}")
    out: dict[str, Any] = getattr(mod, name)(row)
    return out


def _by_id(method: str) -> Convert:
    def convert(services: Services, scope: Scope, row: Any) -> dict[str, Any]:
        return getattr(services.crowd, method)(scope, row.id)

    return convert


CONVERT: dict[str, Convert] = {
    "projects": lambda _s, _c, row: _public("projects", "project_public", row),
    "pools": lambda _s, _c, row: _public("pools", "pool_public", row),
    "skills": _by_id("get_skill"),
    "user_skills": _user_skill,
    "tasks": _by_id("get_task"),
    "task_suites": _by_id("get_task_suite"),
    "assignments": _by_id("get_assignment"),
    "aggregated": _aggregated,
}


def find(
    services: Services, scope: Scope, what: str, search: Search, *, job_id: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """``(objects, has_more)`` of one search page."""
    query = Query(equals=search.equals, ranges=search.ranges, sort=search.sort, limit=search.limit)
    rows, more = CrowdSearch(services.crowd.store).search(scope, what, query, job_id=job_id)
    convert = CONVERT[what]
    return [convert(services, scope, row) for row in rows], more
