"""Crowd labelling, the requester's side: projects, pools, skills, tasks, task suites,
operations, assignments and aggregations under ``/v1/crowd``.

Bodies use Toloka's field names (``crowd_schemas.py``). Rules live in ``services.crowd``;
this module only parses, checks shapes and picks status codes.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.errors import error_body
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.routes.crowd_schemas import (
    Aggregation,
    OverlapSet,
    PoolCreate,
    PoolUpdate,
    ProjectCreate,
    ProjectUpdate,
    Review,
    SkillCreate,
    TaskSuiteUpdate,
    TaskUpdate,
    UserSkillSet,
)
from taskloom.errors import Invalid, MalformedJSON, NotFound, RateLimited
from taskloom.runtime import Services
from taskloom.services.auth import Scope

router = APIRouter(prefix="/v1/crowd", tags=["crowd"])

Limit = Annotated[int, Query(ge=1, le=1000)]
TaskLimit = Annotated[int, Query(ge=1, le=10_000)]


# -- helpers -----------------------------------------------------------------------------------


def page(out: dict[str, Any]) -> FastJSONResponse:
    """A service page ``{data, cursor}`` as the API's list shape ``{data, count, cursor}``."""
    data = out["data"]
    return ok({"data": data, "count": len(data), "cursor": out.get("cursor")})


async def json_body(request: Request) -> Any:
    """The raw JSON body, parsed with orjson (batches of thousands of tasks go by here)."""
    raw = await request.body()
    if not raw:
        raise Invalid("a JSON body is required", code="missing_body", field="body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc}", field="body") from exc


def objects(body: Any, what: str) -> tuple[list[dict[str, Any]], bool]:
    """(items, one): a JSON object is one item, a list of objects is a batch."""
    if isinstance(body, dict):
        return [body], True
    if not isinstance(body, list):
        raise Invalid(f"the body is one {what} (an object) or a list of them", field="body")
    if not body:
        raise Invalid(f"the list holds no {what}", code="empty_batch", field="body")
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise Invalid(f"each {what} is a JSON object", field=f"[{i}]")
    return body, False


def operation_id_param(raw: str | None, async_mode: bool) -> str | None:
    if raw is None:
        return None
    if not async_mode:
        raise Invalid(
            "operation_id names an asynchronous operation: add async_mode=true",
            field="operation_id",
        )
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise Invalid("operation_id is a UUID (RFC 4122)", field="operation_id") from exc


def batch_answer(out: dict[str, Any], skip_invalid_items: bool, what: str) -> FastJSONResponse:
    """201 ``{items, validation_errors}``; a refused batch (``skip_invalid_items=false`` and
    an invalid item, so nothing was created) is a 422 that lists every error."""
    errors = out.get("validation_errors") or {}
    if errors and not skip_invalid_items:
        index = min(errors, key=int)
        path = next(iter(errors[index]), "")
        first = errors[index].get(path) or {}
        raise Invalid(
            f"{len(errors)} {what} not valid, so none was created "
            f"(item {index}: {path}: {first.get('message', 'invalid')}); "
            "send skip_invalid_items=true to create the valid ones",
            code="invalid_items",
            details={
                "field": f"[{index}].{path}" if path else f"[{index}]",
                "validation_errors": errors,
            },
        )
    return ok({"items": out.get("items") or {}, "validation_errors": errors}, 201)


def rate_limited(exc: RateLimited) -> FastJSONResponse:
    """429 in the error envelope, with ``Retry-After`` when the limit says when."""
    retry = exc.details.get("retry_after")
    headers = None
    if isinstance(retry, int | float) and not isinstance(retry, bool):
        headers = {"Retry-After": str(max(1, math.ceil(retry)))}
    return FastJSONResponse(error_body(exc.code, exc.message, exc.details), 429, headers=headers)


def _missing_pool(exc: Invalid) -> Exception:
    """A single item naming a pool this app does not have: 404, as for any object of
    another tenant (in a batch it stays a per-item ``OBJECT_NOT_FOUND``)."""
    if exc.code == "OBJECT_NOT_FOUND" and exc.field == "pool_id":
        return NotFound("pool not found", code="pool_not_found", field="pool_id")
    return exc


def single_answer(out: dict[str, Any]) -> FastJSONResponse:
    """One object created through the batch call: 201 the object, or 422 naming its field."""
    errors = (out.get("validation_errors") or {}).get("0")
    if errors:
        path, err = next(iter(errors.items()))
        raise _missing_pool(
            Invalid(
                f"{path}: {err.get('message', 'invalid')}",
                code=err.get("code") or "invalid",
                field=path,
                details={"validation_errors": errors},
            )
        )
    return ok(out["items"]["0"], 201)


_BATCH_QUERY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            }
        },
    }
}


# -- projects ----------------------------------------------------------------------------------


@router.post("/projects", status_code=201)
def create_project(body: ProjectCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.create_project(scope, body.sent()), 201)


@router.get("/projects")
def list_projects(
    scope: ScopeDep,
    services: ServicesDep,
    status: Literal["ACTIVE", "ARCHIVED"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.list_projects(scope, status=status, limit=limit, cursor=cursor))


@router.get("/projects/{project_id}")
def get_project(project_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_project(scope, project_id))


@router.patch("/projects/{project_id}")
def update_project(
    project_id: str, body: ProjectUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.update_project(scope, project_id, body.sent()))


@router.post("/projects/{project_id}/archive")
def archive_project(project_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.archive_project(scope, project_id))


# -- pools -------------------------------------------------------------------------------------


@router.post("/pools", status_code=201)
def create_pool(body: PoolCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.create_pool(scope, body.sent()), 201)


@router.get("/pools")
def list_pools(
    scope: ScopeDep,
    services: ServicesDep,
    project_id: str | None = None,
    status: Literal["OPEN", "CLOSED", "ARCHIVED"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(
        services.crowd.list_pools(
            scope, project_id=project_id, status=status, limit=limit, cursor=cursor
        )
    )


@router.get("/pools/{pool_id}")
def get_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_pool(scope, pool_id))


@router.patch("/pools/{pool_id}")
def update_pool(
    pool_id: str, body: PoolUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.update_pool(scope, pool_id, body.sent()))


@router.post("/pools/{pool_id}/open")
def open_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now OPEN; ``changed`` is false when it already was."""
    pool, changed = services.crowd.open_pool(scope, pool_id)
    return ok({**pool, "changed": changed})


@router.post("/pools/{pool_id}/close")
def close_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now CLOSED; ``changed`` is false when it already was."""
    pool, changed = services.crowd.close_pool(scope, pool_id)
    return ok({**pool, "changed": changed})


@router.post("/pools/{pool_id}/archive")
def archive_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now ARCHIVED; ``changed`` is false when it already was."""
    pool, changed = services.crowd.archive_pool(scope, pool_id)
    return ok({**pool, "changed": changed})


# -- skills ------------------------------------------------------------------------------------


@router.post("/skills", status_code=201)
def create_skill(body: SkillCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.create_skill(scope, body.sent()), 201)


@router.get("/skills")
def list_skills(
    scope: ScopeDep,
    services: ServicesDep,
    name: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.list_skills(scope, name=name, limit=limit, cursor=cursor))


@router.get("/skills/{skill_id}")
def get_skill(skill_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_skill(scope, skill_id))


@router.put("/user-skills")
def set_user_skill(body: UserSkillSet, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.set_user_skill(scope, body.skill_id, body.user_id, body.value))


@router.delete("/user-skills/{user_skill_id}", status_code=204)
def delete_user_skill(user_skill_id: str, scope: ScopeDep, services: ServicesDep) -> Response:
    """``<skill id>:<user id>`` (a user skill's ``id``): the worker loses that skill value."""
    skill_id, sep, user_id = user_skill_id.partition(":")
    if not sep or not skill_id or not user_id:
        raise NotFound(
            "a user skill id is <skill id>:<user id>",
            code="user_skill_not_found",
            field="user_skill_id",
        )
    services.crowd.delete_user_skill(scope, skill_id, user_id)
    return Response(status_code=204)


@router.get("/user-skills")
def list_user_skills(
    scope: ScopeDep,
    services: ServicesDep,
    skill_id: str | None = None,
    user_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(
        services.crowd.list_user_skills(
            scope, skill_id=skill_id, user_id=user_id, limit=limit, cursor=cursor
        )
    )


# -- tasks -------------------------------------------------------------------------------------


@router.post("/tasks", status_code=201, openapi_extra=_BATCH_QUERY)
async def create_tasks(
    request: Request,
    scope: ScopeDep,
    services: ServicesDep,
    async_mode: bool = False,
    allow_defaults: bool = False,
    skip_invalid_items: bool = False,
    open_pool: bool = False,
    operation_id: Annotated[str | None, Query(max_length=100)] = None,
) -> FastJSONResponse:
    """One task (an object) or a batch (a list).

    * sync, one object: 201 the task, or 422 naming the invalid field.
    * sync, a list: 201 ``{items: {"0": task}, validation_errors: {"1": {path: {code,
      message}}}}``. Without ``skip_invalid_items`` one invalid item creates nothing and
      answers 422 ``invalid_items`` whose ``details.validation_errors`` has that shape.
    * ``async_mode=true``: 202 the operation (a job of kind ``crowd_batch_create``); with
      ``operation_id`` a repeated request creates nothing and answers the first operation.
    * past the requester's rate limit: 429 with ``Retry-After``; nothing is created.
    """
    items, one = objects(await json_body(request), "task")
    op_id = operation_id_param(operation_id, async_mode)
    try:
        return await _create_tasks(
            services,
            scope,
            items,
            one,
            async_mode,
            allow_defaults,
            skip_invalid_items,
            open_pool,
            op_id,
        )
    except RateLimited as exc:
        return rate_limited(exc)


async def _create_tasks(
    services: Services,
    scope: Scope,
    items: list[dict[str, Any]],
    one: bool,
    async_mode: bool,
    allow_defaults: bool,
    skip_invalid_items: bool,
    open_pool: bool,
    op_id: str | None,
) -> FastJSONResponse:
    crowd = services.crowd
    if async_mode:
        job = await run_in_threadpool(
            crowd.submit_task_batch,
            scope,
            items,
            allow_defaults=allow_defaults,
            skip_invalid_items=skip_invalid_items,
            open_pool=open_pool,
            operation_id=op_id,
        )
        return ok(job, 202)
    if one:
        try:
            task = await run_in_threadpool(
                crowd.create_task,
                scope,
                items[0],
                allow_defaults=allow_defaults,
                open_pool=open_pool,
            )
        except Invalid as exc:
            mapped = _missing_pool(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return ok(task, 201)
    out = await run_in_threadpool(
        crowd.create_tasks,
        scope,
        items,
        allow_defaults=allow_defaults,
        skip_invalid_items=skip_invalid_items,
        open_pool=open_pool,
    )
    return batch_answer(out, skip_invalid_items, "tasks")


@router.get("/tasks")
def list_tasks(
    scope: ScopeDep,
    services: ServicesDep,
    pool_id: str | None = None,
    overlap: Annotated[int | None, Query(ge=0)] = None,
    created_gt: datetime | None = None,
    created_lt: datetime | None = None,
    sort: Literal["created", "-created", "id", "-id"] = "created",
    limit: TaskLimit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    """Tasks in creation order (or ``sort``), paged with ``cursor``."""
    return page(
        services.crowd.list_tasks(
            scope,
            pool_id=pool_id,
            overlap=overlap,
            created_gt=created_gt,
            created_lt=created_lt,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/tasks/{task_id}")
def get_task(task_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_task(scope, task_id))


@router.patch("/tasks/{task_id}")
def update_task(
    task_id: str, body: TaskUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.update_task(scope, task_id, body.sent()))


@router.patch("/tasks/{task_id}/set-overlap-or-min")
def set_overlap_or_min(
    task_id: str, body: OverlapSet, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.set_overlap_or_min(scope, task_id, body.overlap))


# -- task suites -------------------------------------------------------------------------------


@router.post("/task-suites", status_code=201, openapi_extra=_BATCH_QUERY)
async def create_task_suites(
    request: Request,
    scope: ScopeDep,
    services: ServicesDep,
    async_mode: bool = False,
    allow_defaults: bool = False,
    skip_invalid_items: bool = False,
    open_pool: bool = False,
    operation_id: Annotated[str | None, Query(max_length=100)] = None,
) -> FastJSONResponse:
    """One task suite ``{pool_id, tasks: [...], overlap, ...}`` or a list; answers as
    ``POST /tasks`` does (``async_mode=true``: 202 an operation of kind
    ``crowd_suite_batch_create``, whose log names each ``task_suite_id``)."""
    items, one = objects(await json_body(request), "task suite")
    op_id = operation_id_param(operation_id, async_mode)
    crowd = services.crowd
    try:
        if async_mode:
            job = await run_in_threadpool(
                crowd.submit_suite_batch,
                scope,
                items,
                allow_defaults=allow_defaults,
                skip_invalid_items=skip_invalid_items,
                open_pool=open_pool,
                operation_id=op_id,
            )
            return ok(job, 202)
        out = await run_in_threadpool(
            crowd.create_task_suites,
            scope,
            items,
            allow_defaults=allow_defaults,
            skip_invalid_items=skip_invalid_items,
            open_pool=open_pool,
        )
    except RateLimited as exc:
        return rate_limited(exc)
    if one:
        return single_answer(out)
    return batch_answer(out, skip_invalid_items, "task suites")


@router.get("/task-suites")
def list_task_suites(
    scope: ScopeDep,
    services: ServicesDep,
    pool_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.list_task_suites(scope, pool_id=pool_id, limit=limit, cursor=cursor))


@router.get("/task-suites/{suite_id}")
def get_task_suite(suite_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_task_suite(scope, suite_id))


@router.patch("/task-suites/{suite_id}")
def update_task_suite(
    suite_id: str,
    body: TaskSuiteUpdate,
    scope: ScopeDep,
    services: ServicesDep,
    open_pool: bool = False,
) -> FastJSONResponse:
    """``overlap``, ``infinite_overlap``, ``issuing_order_override``; the suite's tasks follow
    its overlap. ``open_pool=true`` opens its pool when it is closed."""
    out = services.crowd.update_task_suite(scope, suite_id, body.sent(), open_pool=open_pool)
    return ok(out)


@router.patch("/task-suites/{suite_id}/set-overlap-or-min")
def set_suite_overlap_or_min(
    suite_id: str, body: OverlapSet, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.set_suite_overlap_or_min(scope, suite_id, body.overlap))


# -- operations --------------------------------------------------------------------------------


@router.get("/operations/{operation_id}")
def get_operation(operation_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_operation(scope, operation_id))


@router.get("/operations/{operation_id}/log")
def operation_log(operation_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """One entry per input item: ``{type, success, input, output}``."""
    log = services.crowd.operation_log(scope, operation_id)
    return ok({"data": log, "count": len(log), "cursor": None})


# -- assignments -------------------------------------------------------------------------------

AssignmentStatus = Literal["ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED"]


@router.get("/assignments")
def list_assignments(
    scope: ScopeDep,
    services: ServicesDep,
    pool_id: str | None = None,
    status: AssignmentStatus | None = None,
    task_id: str | None = None,
    user_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    """Oldest first; ``user_id`` is the worker's id."""
    return page(
        services.crowd.list_assignments(
            scope,
            pool_id=pool_id,
            status=status,
            task_id=task_id,
            user_id=user_id,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/assignments/{assignment_id}")
def get_assignment(assignment_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.get_assignment(scope, assignment_id))


@router.patch("/assignments/{assignment_id}")
def review_assignment(
    assignment_id: str, body: Review, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Accept or reject a submitted assignment: ``{status, public_comment}``."""
    return ok(
        services.crowd.review_assignment(scope, assignment_id, body.status, body.public_comment)
    )


# -- aggregation -------------------------------------------------------------------------------


@router.post("/aggregations", status_code=202)
def aggregate(body: Aggregation, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """``pool_id``: 202 a job (kind ``crowd_aggregate``) whose results are read from
    ``GET /aggregations/{job_id}/results``. ``task_id``: 200 that task's result now."""
    kw: dict[str, Any] = {
        "method": body.method,
        "fields": body.fields,
        "answer_weight_skill_id": body.answer_weight_skill_id,
    }
    if body.pool_id is not None and body.task_id is None:
        return ok(services.crowd.aggregate_pool(scope, body.pool_id, **kw), 202)
    if body.task_id is not None and body.pool_id is None:
        return ok(services.crowd.aggregate_task(scope, body.task_id, **kw), 200)
    raise Invalid(
        "give pool_id (a job over the pool) or task_id (one task now), not both",
        field="pool_id" if body.pool_id is None else "task_id",
    )


@router.get("/aggregations/{job_id}/results")
def aggregation_results(
    job_id: str,
    scope: ScopeDep,
    services: ServicesDep,
    limit: TaskLimit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    """``[{pool_id, task_id, output_values, confidence}]`` in task order, paged."""
    return page(services.crowd.aggregated_results(scope, job_id, limit=limit, cursor=cursor))
