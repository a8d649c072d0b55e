"""Crowd labelling, the requester's side: tasks and task suites under ``/v1/crowd``: one
object, a synchronous batch (``items`` and ``validation_errors`` by index), or an
asynchronous batch operation (``async_mode=true``), with ``operation_id`` idempotency and
the per-requester rate limits.

Bodies use Toloka's field names (``services.crowd.bodies``); bodies of thousands of tasks are
parsed with orjson. Rules live in ``services.crowd``.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.errors import error_body
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.routes.crowd import Limit, TaskLimit, page
from taskloom.api.schemas import crowd as answers
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.errors import also
from taskloom.errors import Invalid, MalformedJSON, NotFound, RateLimited
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import OverlapSet, TaskSuiteUpdate, TaskUpdate
from taskloom.services.crowd.common import INT64_MAX

router = APIRouter(prefix="/v1/crowd", tags=["crowd"])


# -- helpers -----------------------------------------------------------------------------------


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


# -- tasks -------------------------------------------------------------------------------------


@router.post(
    "/tasks",
    status_code=201,
    openapi_extra=_BATCH_QUERY,
    response_model=answers.Task | answers.TaskBatch,
    responses={
        **also(202, answers.Operation, "async_mode: the operation"),
        **error_responses(409, 429, body=True),
    },
)
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
            crowd.operations.submit_tasks,
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
                crowd.tasks.create,
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
        crowd.tasks.create_many,
        scope,
        items,
        allow_defaults=allow_defaults,
        skip_invalid_items=skip_invalid_items,
        open_pool=open_pool,
    )
    return batch_answer(out, skip_invalid_items, "tasks")


@router.get("/tasks", response_model=answers.TaskList, responses=error_responses())
def list_tasks(
    scope: ScopeDep,
    services: ServicesDep,
    pool_id: str | None = None,
    overlap: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    created_gt: datetime | None = None,
    created_lt: datetime | None = None,
    sort: Literal["created", "-created", "id", "-id"] = "created",
    limit: TaskLimit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    """Tasks in creation order (or ``sort``), paged with ``cursor``."""
    return page(
        services.crowd.tasks.list(
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


@router.get("/tasks/{task_id}", response_model=answers.Task, responses=error_responses())
def get_task(task_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.tasks.get(scope, task_id))


@router.patch(
    "/tasks/{task_id}", response_model=answers.Task, responses=error_responses(409, body=True)
)
def update_task(
    task_id: str, body: TaskUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.tasks.update(scope, task_id, body))


@router.patch(
    "/tasks/{task_id}/set-overlap-or-min",
    response_model=answers.Task,
    responses=error_responses(409, body=True),
)
def set_overlap_or_min(
    task_id: str, body: OverlapSet, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.tasks.set_overlap_or_min(scope, task_id, body))


# -- task suites -------------------------------------------------------------------------------


@router.post(
    "/task-suites",
    status_code=201,
    openapi_extra=_BATCH_QUERY,
    response_model=answers.TaskSuite | answers.SuiteBatch,
    responses={
        **also(202, answers.Operation, "async_mode: the operation"),
        **error_responses(409, 429, body=True),
    },
)
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
                crowd.operations.submit_suites,
                scope,
                items,
                allow_defaults=allow_defaults,
                skip_invalid_items=skip_invalid_items,
                open_pool=open_pool,
                operation_id=op_id,
            )
            return ok(job, 202)
        out = await run_in_threadpool(
            crowd.suites.create_many,
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


@router.get("/task-suites", response_model=answers.TaskSuiteList, responses=error_responses())
def list_task_suites(
    scope: ScopeDep,
    services: ServicesDep,
    pool_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.suites.list(scope, pool_id=pool_id, limit=limit, cursor=cursor))


@router.get(
    "/task-suites/{suite_id}", response_model=answers.TaskSuite, responses=error_responses()
)
def get_task_suite(suite_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.suites.get(scope, suite_id))


@router.patch(
    "/task-suites/{suite_id}",
    response_model=answers.TaskSuite,
    responses=error_responses(409, body=True),
)
def update_task_suite(
    suite_id: str,
    body: TaskSuiteUpdate,
    scope: ScopeDep,
    services: ServicesDep,
    open_pool: bool = False,
) -> FastJSONResponse:
    """``overlap``, ``infinite_overlap``, ``issuing_order_override``; the suite's tasks follow
    its overlap. ``open_pool=true`` opens its pool when it is closed."""
    out = services.crowd.suites.update(scope, suite_id, body, open_pool=open_pool)
    return ok(out)


@router.patch(
    "/task-suites/{suite_id}/set-overlap-or-min",
    response_model=answers.TaskSuite,
    responses=error_responses(409, body=True),
)
def set_suite_overlap_or_min(
    suite_id: str, body: OverlapSet, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.suites.set_overlap_or_min(scope, suite_id, body))
