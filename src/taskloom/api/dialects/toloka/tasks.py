"""Toloka tasks and task suites: creation (one, a batch, asynchronous), search and patches.

``POST /tasks`` and ``POST /task-suites`` read Toloka's query parameters ``async_mode``,
``allow_defaults``, ``skip_invalid_items``, ``open_pool`` and ``operation_id``:

* synchronous, one object: ``201`` the task; an invalid one is ``400 VALIDATION_ERROR`` whose
  payload maps each field path to ``{code, message}``.
* synchronous, a list: ``201 {items: {"0": task}, validation_errors: {"1": {path: {code,
  message}}}}``; when nothing was created (an invalid item without ``skip_invalid_items``, or
  every item invalid) ``400 VALIDATION_ERROR`` with ``{index: {path: {code, message}}}``.
* ``async_mode=true``: ``202`` a ``TASK.BATCH_CREATE`` (``TASK_SUITE.BATCH_CREATE``)
  operation; its log (``GET /operations/{id}/log``) has one entry per item whose ``input``
  is the item as sent and whose ``output`` is ``{task_id}`` (``{task_suite_id}``), so
  toloka-kit's default path (async, each item tagged ``__item_idx``) finds its items again.
  A repeated ``operation_id`` creates nothing: ``409 OPERATION_ALREADY_EXISTS``, which
  toloka-kit answers by reading that operation.
* past the requester's rate limit: ``429 TOO_MANY_REQUESTS``.

``PATCH /task-suites/{id}`` takes toloka-kit's TaskSuitePatch (``overlap``,
``infinite_overlap``, ``issuing_order_override``; ``open_pool`` in the query) and
``PATCH /task-suites/{id}/set-overlap-or-min`` its TaskSuiteOverlapPatch, as for tasks.
"""

from __future__ import annotations

import uuid
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
    error_response,
    json_body,
    json_object,
    page,
    parse_search,
    query_bool,
)
from taskloom.api.dialects.toloka.search import find
from taskloom.errors import Invalid, NotFound
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.services.crowd.work_records import Operation

router = APIRouter(route_class=TolokaRoute)

# Fields the service owns; a client may echo them back (toloka-kit's objects carry them).
_READONLY = ("id", "created", "remaining_overlap", "automerged")


def _objects(body: Any, what: str) -> tuple[list[dict[str, Any]], bool]:
    """(items, one): a JSON object is one item, a list of objects is a batch."""
    if isinstance(body, dict):
        return [_clean(body)], True
    if not isinstance(body, list):
        raise Invalid(
            f"the body is a {what} or a list of them", code="ARRAY_EXPECTED", field="body"
        )
    if not body:
        raise Invalid(f"the list holds no {what}", code="VALUE_REQUIRED", field="body")
    out = []
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise Invalid(f"each {what} is a JSON object", code="OBJECT_EXPECTED", field=str(i))
        out.append(_clean(item))
    return out, False


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    """The item without read-only fields and client tags (toloka-kit's ``__item_idx``: the
    operation log gives it back by position, see ``ops.log_entry``)."""
    if any(k in _READONLY or k.startswith("__") for k in item):
        return {k: v for k, v in item.items() if k not in _READONLY and not k.startswith("__")}
    return item


def _operation_id(request: Request) -> str | None:
    raw = request.query_params.get("operation_id")
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise Invalid(
            "operation_id is a UUID (RFC 4122)", code="INVALID_UUID", field="operation_id"
        ) from exc


def _existing_operation(services: Services, scope: Scope, op_id: str) -> Operation | None:
    try:
        return services.crowd.operations.get(scope, op_id)
    except NotFound:
        return None


async def _create(request: Request, scope: Scope, services: Services, what: str) -> Response:
    """The shared body of ``POST /tasks`` and ``POST /task-suites``."""
    async_mode = query_bool(request, "async_mode")
    allow_defaults = query_bool(request, "allow_defaults")
    skip_invalid = query_bool(request, "skip_invalid_items")
    open_pool = query_bool(request, "open_pool")
    op_id = _operation_id(request)
    items, one = _objects(await json_body(request), "task" if what == "tasks" else "task suite")
    crowd = services.crowd

    if async_mode:
        if op_id is not None:
            first = await run_in_threadpool(_existing_operation, services, scope, op_id)
            # a "registered" one never got its items (its request died): submitting again
            # hands them over, so only a started operation is a repeat
            if first is not None and first.get("status") != "registered":
                return error_response(
                    409,
                    "OPERATION_ALREADY_EXISTS",
                    f"operation {op_id} was already submitted; it created its objects once",
                    {"operation_id": op_id},
                )
        submit = (
            crowd.operations.submit_tasks if what == "tasks" else crowd.operations.submit_suites
        )
        job = await run_in_threadpool(
            lambda: submit(
                scope,
                items,
                allow_defaults=allow_defaults,
                skip_invalid_items=skip_invalid,
                open_pool=open_pool,
                operation_id=op_id,
            )
        )
        return answer(toloka_ops.operation(job), 202)

    if one and what == "tasks":
        task = await run_in_threadpool(
            lambda: crowd.tasks.create(
                scope, items[0], allow_defaults=allow_defaults, open_pool=open_pool
            )
        )
        return answer(task, 201)

    create = crowd.tasks.create_many if what == "tasks" else crowd.suites.create_many
    out = await run_in_threadpool(
        lambda: create(
            scope,
            items,
            allow_defaults=allow_defaults,
            skip_invalid_items=skip_invalid or one,
            open_pool=open_pool,
        )
    )
    created = out.get("items") or {}
    errors = out.get("validation_errors") or {}
    if one:
        if errors.get("0"):
            return _validation_failed(errors["0"])
        return answer(created["0"], 201)
    if errors and (not skip_invalid or not created):
        return _validation_failed(errors)
    return answer({"items": created, "validation_errors": errors or None}, 201)


def _validation_failed(payload: dict[str, Any]) -> Response:
    index, first = next(iter(payload.items()))
    inner = first if isinstance(first, dict) else {}
    if inner and all(isinstance(v, dict) for v in inner.values()) and "code" not in inner:
        path, err = next(iter(inner.items()))
        message = f"item {index}: {path}: {err.get('message', 'invalid')}"
    else:
        message = f"{index}: {inner.get('message', 'invalid')}"
    return error_response(400, "VALIDATION_ERROR", f"Validation failed ({message})", payload)


# -- tasks -------------------------------------------------------------------------------------


@router.post("/tasks", status_code=201)
async def create_tasks(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    return await _create(request, scope, services, "tasks")


@router.get("/tasks")
def find_tasks(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("pool_id", "overlap"),
        ranges={"id": "str", "created": "time", "overlap": "int"},
        sorts=("id", "created"),
    )
    return page(*find(services, scope, "tasks", search))


@router.get("/tasks/{task_id}")
def get_task(task_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(services.crowd.tasks.get(scope, task_id))


@router.patch("/tasks/{task_id}")
async def patch_task(
    task_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """``{overlap, infinite_overlap, baseline_solutions, known_solutions,
    message_on_unknown_solution}``: the fields given change, the others stay."""
    body = _clean(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.tasks.update, scope, task_id, body))


@router.patch("/tasks/{task_id}/set-overlap-or-min")
async def set_overlap_or_min(
    task_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """Lower the overlap to ``overlap``, or to the assignments already issued if that is more."""
    body = await json_object(request)
    out = await run_in_threadpool(services.crowd.tasks.set_overlap_or_min, scope, task_id, body)
    return answer(out)


# -- task suites -------------------------------------------------------------------------------


@router.post("/task-suites", status_code=201)
async def create_task_suites(
    request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    return await _create(request, scope, services, "task_suites")


@router.get("/task-suites")
def find_task_suites(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("task_id", "pool_id", "overlap"),
        ranges={"id": "str", "created": "time", "overlap": "int"},
        sorts=("id", "created"),
    )
    return page(*find(services, scope, "task_suites", search))


@router.get("/task-suites/{suite_id}")
def get_task_suite(suite_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(services.crowd.suites.get(scope, suite_id))


@router.patch("/task-suites/{suite_id}")
async def patch_task_suite(
    suite_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """toloka-kit's ``patch_task_suite``: the fields given change, the others stay."""
    body = _clean(await json_object(request))
    # toloka-kit sends open_pool in the query; a raw client may put it in the body
    in_body = body.pop("open_pool", None)
    if in_body is not None and not isinstance(in_body, bool):
        raise Invalid("open_pool is true or false", code="BOOLEAN_EXPECTED", field="open_pool")
    open_pool = query_bool(request, "open_pool") or bool(in_body)
    out = await run_in_threadpool(
        lambda: services.crowd.suites.update(scope, suite_id, body, open_pool=open_pool)
    )
    return answer(out)


@router.patch("/task-suites/{suite_id}/set-overlap-or-min")
async def set_suite_overlap_or_min(
    suite_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """Lower the suite's overlap to ``overlap``, or to the copies already issued."""
    body = await json_object(request)
    out = await run_in_threadpool(services.crowd.suites.set_overlap_or_min, scope, suite_id, body)
    return answer(out)
