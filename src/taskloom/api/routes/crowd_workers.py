"""Crowd labelling, the worker's side.

Two ways in, one behaviour:

* ``/v1/crowd/workers/...`` with the requester's API key: register workers, and act for a
  worker of the key's app (the SDK's ``c.crowd.worker(id)``, a requester's own tools).
* ``/v1/crowd/me/...`` with the worker's own token (``Authorization: Worker <token>``, shown
  once at registration): what the labelling page uses. The token reaches only that
  worker's app, and only that worker's assignments; it opens no other ``/v1`` route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.routes.crowd import Limit
from taskloom.api.schemas import crowd as answers
from taskloom.api.schemas import error_responses
from taskloom.errors import Unauthorized
from taskloom.runtime import Services
from taskloom.scope import Scope
from taskloom.services.crowd.bodies import CrowdBody, Id, WorkerCreate
from taskloom.services.crowd.work_records import Assignment

router = APIRouter(prefix="/v1/crowd", tags=["crowd workers"])

WORKER_SCHEME = "worker"


class AssignmentRequest(CrowdBody):
    pool_id: Id


class Solution(CrowdBody):
    output_values: dict[str, Any]


class Submission(CrowdBody):
    solutions: list[Solution] = Field(min_length=1)


class WorkerCaller:
    """A request made with a worker token: the app it acts in and the worker."""

    def __init__(self, scope: Scope, worker_id: str) -> None:
        self.scope = scope
        self.worker_id = worker_id


def worker_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == WORKER_SCHEME and value.strip():
        return value.strip()
    return None


async def get_worker(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> WorkerCaller:
    token = worker_token(authorization)
    if token is None:
        raise Unauthorized(
            "a worker token is required: send Authorization: Worker <token>",
            code="unauthorized",
        )
    services: Services = request.app.state.platform.services
    scope, worker_id = await run_in_threadpool(services.crowd.workers.scope_of, token)
    return WorkerCaller(scope, worker_id)


WorkerDep = Annotated[WorkerCaller, Depends(get_worker)]


def _issued(crowd: Any, scope: Scope, assignment: Assignment | None) -> Response:
    """201 the assignment with its project's ``task_spec`` (what a labelling page builds
    its form from), or 204 when nothing is left for the worker."""
    if assignment is None:
        return Response(status_code=204)
    pool = crowd.pools.get(scope, assignment.pool_id)
    project = crowd.projects.get(scope, pool["project_id"])
    return ok({**assignment, "task_spec": project["task_spec"]}, 201)


_POOL_FOR_WORKER = (
    "id",
    "project_id",
    "private_name",
    "public_description",
    "reward_per_assignment",
    "assignment_max_duration_seconds",
    "will_expire",
)


def _pools_for_worker(crowd: Any, scope: Scope, worker_id: str, limit: int) -> list[dict]:
    """The open pools a worker may take assignments from, with what a worker is shown:
    the project's public name and instructions, not the requester's settings."""
    projects: dict[str, dict[str, Any]] = {}
    out = []
    for pool in crowd.pools.list(scope, status="OPEN", limit=limit)["data"]:
        if crowd.issuing.is_banned(scope, worker_id, pool["id"]):
            continue
        pid = pool["project_id"]
        if pid not in projects:
            projects[pid] = crowd.projects.get(scope, pid)
        project = projects[pid]
        shown = {k: pool[k] for k in _POOL_FOR_WORKER if pool.get(k) is not None}
        shown.setdefault("public_description", project.get("public_description"))
        shown["public_name"] = project.get("public_name")
        shown["public_instructions"] = project.get("public_instructions")
        out.append({k: v for k, v in shown.items() if v is not None})
    return out


_204: dict[int | str, dict[str, Any]] = {
    204: {"description": "nothing left in the pool for this worker"}
}


# -- the requester's side ----------------------------------------------------------------------


@router.post(
    "/workers",
    status_code=201,
    response_model=answers.NewWorker,
    responses=error_responses(409, body=True),
)
def register_worker(body: WorkerCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """A worker of this app; the answer holds its ``token``, shown this once."""
    return ok(services.crowd.workers.register(scope, body), 201)


@router.post(
    "/workers/{worker_id}/assignments",
    status_code=201,
    response_model=answers.IssuedAssignment,
    responses={**_204, **error_responses(409, body=True)},
)
def request_assignment(
    worker_id: str, body: AssignmentRequest, scope: ScopeDep, services: ServicesDep
) -> Response:
    """The worker's next assignment in the pool (201), or 204 when none is left for them."""
    crowd = services.crowd
    return _issued(crowd, scope, crowd.issuing.request(scope, worker_id, body.pool_id))


@router.post(
    "/workers/{worker_id}/assignments/{assignment_id}/submit",
    response_model=answers.Assignment,
    responses=error_responses(409, body=True),
)
def submit_assignment(
    worker_id: str,
    assignment_id: str,
    body: Submission,
    scope: ScopeDep,
    services: ServicesDep,
) -> FastJSONResponse:
    """One ``{output_values}`` per task of the assignment, in the assignment's order."""
    solutions = [s.sent() for s in body.solutions]
    return ok(services.crowd.assignments.submit(scope, worker_id, assignment_id, solutions))


@router.post(
    "/workers/{worker_id}/assignments/{assignment_id}/skip",
    response_model=answers.Assignment,
    responses=error_responses(409),
)
def skip_assignment(
    worker_id: str, assignment_id: str, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.assignments.skip(scope, worker_id, assignment_id))


# -- the worker's own token --------------------------------------------------------------------


@router.get("/me", response_model=answers.WorkerMe, responses=error_responses(scope=False))
def me(caller: WorkerDep, services: ServicesDep, limit: Limit = 100) -> FastJSONResponse:
    """``{worker, pools}``: who the token is, and the open pools of its app that quality
    control has not closed to them (``public_name`` is the project's)."""
    crowd, scope, wid = services.crowd, caller.scope, caller.worker_id
    worker = crowd.workers.get(scope, wid)
    return ok({"worker": worker, "pools": _pools_for_worker(crowd, scope, wid, limit)})


@router.post(
    "/me/assignments",
    status_code=201,
    response_model=answers.IssuedAssignment,
    # the token names its app: no X-Taskloom-App; 404 is a pool it does not have
    responses={**_204, **error_responses(404, 409, scope=False, body=True)},
)
def my_next_assignment(
    body: AssignmentRequest, caller: WorkerDep, services: ServicesDep
) -> Response:
    """The worker's next assignment in the pool (201, with ``task_spec``), or 204."""
    crowd, scope = services.crowd, caller.scope
    return _issued(crowd, scope, crowd.issuing.request(scope, caller.worker_id, body.pool_id))


@router.post(
    "/me/assignments/{assignment_id}/submit",
    response_model=answers.Assignment,
    responses=error_responses(404, 409, scope=False, body=True),
)
def my_submit(
    assignment_id: str, body: Submission, caller: WorkerDep, services: ServicesDep
) -> FastJSONResponse:
    solutions = [s.sent() for s in body.solutions]
    return ok(
        services.crowd.assignments.submit(caller.scope, caller.worker_id, assignment_id, solutions)
    )


@router.post(
    "/me/assignments/{assignment_id}/skip",
    response_model=answers.Assignment,
    responses=error_responses(404, 409, scope=False),
)
def my_skip(assignment_id: str, caller: WorkerDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.assignments.skip(caller.scope, caller.worker_id, assignment_id))
