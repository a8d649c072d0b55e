"""Toloka searches: a parsed query (``http.Search``) run by ``services.crowd.search.page``,
which answers the crowd service's own objects; the few Toloka shapes differ are fixed here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskloom.api.dialects.toloka.http import Search
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.services.crowd.search import Query


def user_skill(s: Mapping[str, Any]) -> dict[str, Any]:
    """Toloka's user skill: id ``<skill id>.<user id>``, ids as strings, ``value`` rounded,
    ``exact_value`` as stored."""
    out = dict(s)
    out["user_id"] = str(out.get("user_id"))
    out["id"] = f"{out.get('skill_id')}.{out['user_id']}"
    exact = out.get("exact_value", out.get("value"))
    if exact is not None:
        out["exact_value"] = exact
        out["value"] = int(round(float(exact)))
    if "modified" not in out and out.get("updated") is not None:
        out["modified"] = out["updated"]
    return out


def find(
    services: Services, scope: Scope, what: str, search: Search, *, job_id: str | None = None
) -> tuple[list[Mapping[str, Any]], bool]:
    """``(objects, has_more)`` of one search page."""
    query = Query(equals=search.equals, ranges=search.ranges, sort=search.sort, limit=search.limit)
    items, more = services.crowd.search.page(scope, what, query, job_id=job_id)
    if what == "user_skills":
        items = [user_skill(s) for s in items]
    return items, more
