"""Toloka assignments (search, accept, reject) and aggregated solutions.

Aggregation types: ``DAWID_SKENE`` → taskloom's Dawid-Skene, ``WEIGHTED_DYNAMIC_OVERLAP`` →
skill-weighted voting (``answer_weight_skill_id``), and ``MAJORITY_VOTE`` (taskloom's own
addition). ``aggregate-by-pool`` answers ``202`` a ``SOLUTION.AGGREGATE`` operation (a
``crowd_aggregate`` job); ``GET /aggregated-solutions/{operation id}`` pages its results by
``task_id``, as toloka-kit's ``get_aggregated_solutions`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ServicesDep
from taskloom.api.dialects.toloka import ops as toloka_ops
from taskloom.api.dialects.toloka.http import (
    TolokaRoute,
    TolokaScope,
    answer,
    json_object,
    page,
    parse_search,
)
from taskloom.api.dialects.toloka.search import find
from taskloom.errors import Invalid

router = APIRouter(route_class=TolokaRoute)

_ASSIGNMENT_TIMES = ("created", "submitted", "accepted", "rejected", "skipped", "expired")


def assignment(a: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    if out.get("user_id") is not None:
        out["user_id"] = str(out["user_id"])
    return out


# -- assignments -------------------------------------------------------------------------------


@router.get("/assignments")
def find_assignments(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("status", "task_id", "task_suite_id", "pool_id", "user_id"),
        multi=("status",),
        ranges={"id": "str", **{t: "time" for t in _ASSIGNMENT_TIMES}},
        sorts=("id", *_ASSIGNMENT_TIMES),
    )
    items, has_more = find(services, scope, "assignments", search)
    return page([assignment(a) for a in items], has_more)


@router.get("/assignments/{assignment_id}")
def get_assignment(assignment_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(assignment(services.crowd.assignments.get(scope, assignment_id)))


@router.patch("/assignments/{assignment_id}")
async def patch_assignment(
    assignment_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """``{status: ACCEPTED | REJECTED, public_comment}``: the requester's review."""
    body = await json_object(request)
    out = await run_in_threadpool(
        services.crowd.assignments.review,
        scope,
        assignment_id,
        body.get("status"),
        body.get("public_comment"),
    )
    return answer(assignment(out))


# -- aggregated solutions ----------------------------------------------------------------------

_METHODS = {
    "DAWID_SKENE": "dawid_skene",
    "WEIGHTED_DYNAMIC_OVERLAP": "skill_weighted",
    "MAJORITY_VOTE": "majority_vote",
}


def _aggregation_args(body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("type")
    if kind not in _METHODS:
        raise Invalid(
            f"type is one of {', '.join(_METHODS)}", code="VALUE_NOT_ALLOWED", field="type"
        )
    fields = body.get("fields")
    names: list[str] | None = None
    if fields is not None:
        if not isinstance(fields, list) or not fields:
            raise Invalid("fields is a list of {name}", code="ARRAY_EXPECTED", field="fields")
        names = []
        for i, f in enumerate(fields):
            name = f.get("name") if isinstance(f, dict) else f
            if not isinstance(name, str) or not name:
                raise Invalid("each field is {name}", code="VALUE_REQUIRED", field=f"fields.{i}")
            names.append(name)
    skill = body.get("answer_weight_skill_id")
    return {
        "method": _METHODS[kind],
        "fields": names,
        "answer_weight_skill_id": str(skill) if skill is not None else None,
    }


def _required_id(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise Invalid(f"{name} is required", code="VALUE_REQUIRED", field=name)
    return str(value)


@router.post("/aggregated-solutions/aggregate-by-pool", status_code=202)
async def aggregate_by_pool(
    request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    body = await json_object(request)
    pool_id = _required_id(body, "pool_id")
    kw = _aggregation_args(body)
    job = await run_in_threadpool(
        lambda: services.crowd.aggregation.aggregate_pool(scope, pool_id, **kw)
    )
    return answer(toloka_ops.operation(job), 202)


@router.post("/aggregated-solutions/aggregate-by-task")
async def aggregate_by_task(
    request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    body = await json_object(request)
    task_id = _required_id(body, "task_id")
    kw = _aggregation_args(body)
    out = await run_in_threadpool(
        lambda: services.crowd.aggregation.aggregate_task(scope, task_id, **kw)
    )
    return answer(out)


@router.get("/aggregated-solutions/{operation_id}")
def find_aggregated_solutions(
    operation_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    search = parse_search(
        request, equals=(), ranges={"task_id": "str"}, sorts=("task_id",), default_sort="task_id"
    )
    job = services.crowd.operations.get(scope, operation_id)  # 404 unless it is the caller's
    return page(*find(services, scope, "aggregated", search, job_id=job["id"]))
