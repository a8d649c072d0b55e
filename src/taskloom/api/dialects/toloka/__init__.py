"""The Toloka front door: the REST shapes of toloka-kit 1.2.3, under ``/toloka/api/v1``.

Point the official client at the server: ``TolokaClient(api_key, url="http://host:port/toloka")``
(it adds ``/api/v1/...`` itself). Everything here translates names, shapes and status codes;
the rules live in ``services.crowd``. The parts:

* ``http``: credentials (``OAuth``/``ApiKey`` + a taskloom API key), the error envelope
  ``{request_id, code, message, payload}``, zoneless UTC timestamps, search queries.
* ``ops``: taskloom jobs as Toloka operations, and the finished operations that stand
  for pool/project transitions (synchronous in taskloom).
* this module: projects, pools, skills, user skills (set, search, delete), operations (get,
  search) and their logs.
* ``tasks``: tasks and task suites (sync and async creation, search, patches).
* ``work``: assignments (search, accept/reject) and aggregated solutions.

Searches answer ``{items, has_more}``; toloka-kit pages them by ``id_gt`` (or ``task_id_gt``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ServicesDep
from taskloom.api.dialects.toloka import ops as toloka_ops
from taskloom.api.dialects.toloka import tasks as toloka_tasks
from taskloom.api.dialects.toloka import work as toloka_work
from taskloom.api.dialects.toloka.http import (
    TolokaRoute,
    TolokaScope,
    answer,
    json_object,
    page,
    parse_search,
)
from taskloom.api.dialects.toloka.search import find, user_skill
from taskloom.errors import Invalid, NotFound

# Not in the OpenAPI schema: that describes the native API; this door is Toloka's own.
router = APIRouter(
    prefix="/toloka/api/v1", tags=["toloka"], route_class=TolokaRoute, include_in_schema=False
)

# Read-only fields a client echoes back in PUT bodies; the service owns them.
_READONLY = ("id", "status", "created", "last_started", "last_stopped", "last_close_reason", "type")


# toloka-kit 1.2.3's OperationType values (a search for one taskloom never keeps finds nothing)
OPERATION_TYPES = frozenset(
    {
        "PSEUDO.PSEUDO",
        "ANALYTICS",
        "KNOWN_SOLUTIONS.GENERATE",
        "POOL.ARCHIVE",
        "POOL.CLONE",
        "POOL.CLOSE",
        "POOL.OPEN",
        "PROJECT.ARCHIVE",
        "SOLUTION.AGGREGATE",
        "TASK.BATCH_CREATE",
        "TASK_SUITE.BATCH_CREATE",
        "TRAINING.ARCHIVE",
        "TRAINING.CLONE",
        "TRAINING.CLOSE",
        "TRAINING.OPEN",
        "USER_BONUS.BATCH_CREATE",
    }
)


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _READONLY}


# -- projects ----------------------------------------------------------------------------------


@router.post("/projects", status_code=201)
async def create_project(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    body = _writable(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.projects.create, scope, body), 201)


@router.get("/projects")
def find_projects(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("status",),
        ranges={"id": "str", "created": "time"},
        sorts=("id", "created", "public_name", "private_comment"),
    )
    return page(*find(services, scope, "projects", search))


@router.get("/projects/{project_id}")
def get_project(project_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(services.crowd.projects.get(scope, project_id))


@router.put("/projects/{project_id}")
async def update_project(
    project_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    body = _writable(await json_object(request))
    out = await run_in_threadpool(services.crowd.projects.update, scope, project_id, body)
    return answer(out)


@router.post("/projects/{project_id}/archive", status_code=202)
def archive_project(project_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    """202 with a finished ``PROJECT.ARCHIVE`` operation (archiving is synchronous)."""
    out = services.crowd.projects.archive(scope, project_id)
    project = out[0] if isinstance(out, tuple) else out
    return answer(toloka_ops.done_operation("project", "archive", str(project["id"])), 202)


# -- pools -------------------------------------------------------------------------------------


@router.post("/pools", status_code=201)
async def create_pool(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    body = _writable(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.pools.create, scope, body), 201)


@router.get("/pools")
def find_pools(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("status", "project_id"),
        ranges={"id": "str", "created": "time", "last_started": "time"},
        sorts=("id", "created", "last_started"),
    )
    return page(*find(services, scope, "pools", search))


@router.get("/pools/{pool_id}")
def get_pool(pool_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(services.crowd.pools.get(scope, pool_id))


@router.put("/pools/{pool_id}")
async def update_pool(
    pool_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    body = _writable(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.pools.update, scope, pool_id, body))


@router.patch("/pools/{pool_id}")
async def patch_pool(
    pool_id: str, request: Request, scope: TolokaScope, services: ServicesDep
) -> Response:
    """toloka-kit's ``patch_pool`` sends ``{priority}``; any writable pool field is taken."""
    body = _writable(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.pools.update, scope, pool_id, body))


def _transition(action: str, pool_id: str, scope: Any, services: Any) -> Response:
    pool, changed = getattr(services.crowd.pools, action)(scope, pool_id)
    if not changed:
        return Response(status_code=204)  # already in that state: toloka-kit expects 204
    return answer(toloka_ops.done_operation("pool", action, str(pool["id"])), 202)


@router.post("/pools/{pool_id}/open", status_code=202)
def open_pool(pool_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return _transition("open", pool_id, scope, services)


@router.post("/pools/{pool_id}/close", status_code=202)
def close_pool(pool_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return _transition("close", pool_id, scope, services)


@router.post("/pools/{pool_id}/archive", status_code=202)
def archive_pool(pool_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return _transition("archive", pool_id, scope, services)


# -- skills and user skills --------------------------------------------------------------------


@router.post("/skills", status_code=201)
async def create_skill(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    body = _writable(await json_object(request))
    return answer(await run_in_threadpool(services.crowd.skills.create, scope, body), 201)


@router.get("/skills")
def find_skills(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request, equals=("name",), ranges={"id": "str", "created": "time"}, sorts=("id", "created")
    )
    return page(*find(services, scope, "skills", search))


@router.get("/skills/{skill_id}")
def get_skill(skill_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    return answer(services.crowd.skills.get(scope, skill_id))


@router.put("/user-skills")
async def set_user_skill(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    body = await json_object(request)
    ids = []
    for name in ("skill_id", "user_id"):
        value = body.get(name)
        if value is None or value == "":
            raise Invalid(f"{name} is required", code="VALUE_REQUIRED", field=name)
        ids.append(str(value))  # Toloka user ids are strings; some clients send numbers
    out = await run_in_threadpool(
        services.crowd.skills.set_user_skill, scope, ids[0], ids[1], body.get("value")
    )
    return answer(user_skill(out))


@router.get("/user-skills")
def find_user_skills(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    search = parse_search(
        request,
        equals=("user_id", "skill_id"),
        ranges={"id": "str", "created": "time", "modified": "time"},
        sorts=("id", "created", "modified"),
    )
    return page(*find(services, scope, "user_skills", search))


@router.delete("/user-skills/{user_skill_id}", status_code=204)
def delete_user_skill(user_skill_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    """toloka-kit's ``delete_user_skill``: the id is ``<skill id>.<user id>`` (as answered)."""
    sep = "." if "." in user_skill_id else ":"
    skill_id, _, user_id = user_skill_id.partition(sep)
    if not skill_id or not user_id:
        raise NotFound(f"user skill {user_skill_id!r} not found", field="user_skill_id")
    services.crowd.skills.delete_user_skill(scope, skill_id, user_id)
    return Response(status_code=204)


# -- operations --------------------------------------------------------------------------------


@router.get("/operations")
def find_operations(request: Request, scope: TolokaScope, services: ServicesDep) -> Response:
    """toloka-kit's ``find_operations``: the app's asynchronous crowd operations (batches and
    aggregations) by ``type``, ``status``, ``id_*``, ``submitted_*``, ``finished_*``. The
    transitions answered as finished operations (``POOL.OPEN``, ...) are not kept, so a
    search for their types finds nothing."""
    search = parse_search(
        request,
        equals=("type", "status"),
        ranges={"id": "str", "submitted": "time", "finished": "time"},
        sorts=("id", "submitted", "finished"),
    )
    equals: dict[str, Any] = {}
    if "type" in search.equals:
        kind = search.equals["type"]
        if kind not in OPERATION_TYPES:
            raise Invalid(
                f"type is one of {', '.join(sorted(OPERATION_TYPES))}",
                code="VALUE_NOT_ALLOWED",
                field="type",
            )
        kinds = [toloka_ops.KINDS[kind]] if kind in toloka_ops.KINDS else []
        equals["kind"] = kinds
    if "status" in search.equals:
        status = search.equals["status"]
        if status not in toloka_ops.STATUSES:
            raise Invalid(
                f"status is one of {', '.join(toloka_ops.STATUSES)}",
                code="VALUE_NOT_ALLOWED",
                field="status",
            )
        equals["status"] = list(toloka_ops.STATUSES[status])
    renamed = {"submitted": "created"}
    search.equals = equals
    search.ranges = [(renamed.get(n, n), op, v) for n, op, v in search.ranges]
    search.sort = [(renamed.get(n, n), desc) for n, desc in search.sort]
    jobs, has_more = find(services, scope, "operations", search)
    return page([toloka_ops.operation(j) for j in jobs], has_more)


@router.get("/operations/{operation_id}")
def get_operation(operation_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    synthetic = toloka_ops.parse_synthetic(operation_id)
    if synthetic is not None:
        what, action, object_id, at = synthetic
        crowd = services.crowd
        (crowd.pools if what == "pool" else crowd.projects).get(scope, object_id)  # caller's?
        return answer(toloka_ops.done_operation(what, action, object_id, at))
    return answer(toloka_ops.operation(services.crowd.operations.get(scope, operation_id)))


@router.get("/operations/{operation_id}/log")
def get_operation_log(operation_id: str, scope: TolokaScope, services: ServicesDep) -> Response:
    """One item per input object, in input order; synthetic operations have an empty log."""
    if toloka_ops.parse_synthetic(operation_id) is not None:
        get_operation(operation_id, scope, services)  # 404 unless it is the caller's
        return answer([])
    op = toloka_ops.operation(services.crowd.operations.get(scope, operation_id))
    entries = services.crowd.operations.log(scope, operation_id)
    return answer([toloka_ops.log_entry(e, op["type"], i) for i, e in enumerate(entries)])


router.include_router(toloka_tasks.router)
router.include_router(toloka_work.router)


# -- anything else -----------------------------------------------------------------------------


@router.api_route(
    "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def unknown(path: str) -> Response:
    raise NotFound(f"/api/v1/{path} is not part of taskloom's Toloka API", field="path")
