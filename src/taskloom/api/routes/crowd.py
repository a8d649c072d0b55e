"""Crowd labelling, the requester's side: projects, pools, skills, operations, assignments
and aggregations under ``/v1/crowd`` (tasks and task suites: ``crowd_tasks.py``).

Bodies use Toloka's field names (``services.crowd.bodies``). Rules live in ``services.crowd``;
this module only parses, checks shapes and picks status codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import crowd as answers
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.errors import also
from taskloom.api.schemas.jobs import Job
from taskloom.errors import Invalid, NotFound
from taskloom.services.crowd.bodies import (
    Aggregation,
    PoolCreate,
    PoolUpdate,
    ProjectCreate,
    ProjectUpdate,
    Review,
    SkillCreate,
    UserSkillSet,
)
from taskloom.store.records import Record

router = APIRouter(prefix="/v1/crowd", tags=["crowd"])

Limit = Annotated[int, Query(ge=1, le=1000)]
TaskLimit = Annotated[int, Query(ge=1, le=10_000)]


# -- helpers -----------------------------------------------------------------------------------


def page(out: Mapping[str, Any]) -> FastJSONResponse:
    """A service page ``{data, cursor}`` as the API's list shape ``{data, count, cursor}``."""
    data = [rendered(x) for x in out["data"]]
    return ok({"data": data, "count": len(data), "cursor": out.get("cursor")})


def rendered(value: Any) -> Any:
    """A record as its JSON object (orjson would nest a spread record's ``data``); else as is."""
    return value.to_dict() if isinstance(value, Record) else value


# -- projects ----------------------------------------------------------------------------------


@router.post(
    "/projects",
    status_code=201,
    response_model=answers.Project,
    responses=error_responses(body=True),
)
def create_project(body: ProjectCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(rendered(services.crowd.projects.create(scope, body)), 201)


@router.get("/projects", response_model=answers.ProjectList, responses=error_responses())
def list_projects(
    scope: ScopeDep,
    services: ServicesDep,
    status: Literal["ACTIVE", "ARCHIVED"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.projects.list(scope, status=status, limit=limit, cursor=cursor))


@router.get("/projects/{project_id}", response_model=answers.Project, responses=error_responses())
def get_project(project_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(rendered(services.crowd.projects.get(scope, project_id)))


@router.patch(
    "/projects/{project_id}",
    response_model=answers.Project,
    responses=error_responses(409, body=True),
)
def update_project(
    project_id: str, body: ProjectUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(rendered(services.crowd.projects.update(scope, project_id, body)))


@router.post(
    "/projects/{project_id}/archive",
    response_model=answers.Project,
    responses=error_responses(409),
)
def archive_project(project_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(rendered(services.crowd.projects.archive(scope, project_id)))


# -- pools -------------------------------------------------------------------------------------


@router.post(
    "/pools",
    status_code=201,
    response_model=answers.Pool,
    responses=error_responses(409, body=True),
)
def create_pool(body: PoolCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.pools.create(scope, body), 201)


@router.get("/pools", response_model=answers.PoolList, responses=error_responses())
def list_pools(
    scope: ScopeDep,
    services: ServicesDep,
    project_id: str | None = None,
    status: Literal["OPEN", "CLOSED", "ARCHIVED"] | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(
        services.crowd.pools.list(
            scope, project_id=project_id, status=status, limit=limit, cursor=cursor
        )
    )


@router.get("/pools/{pool_id}", response_model=answers.Pool, responses=error_responses())
def get_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.pools.get(scope, pool_id))


@router.patch(
    "/pools/{pool_id}", response_model=answers.Pool, responses=error_responses(409, body=True)
)
def update_pool(
    pool_id: str, body: PoolUpdate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    return ok(services.crowd.pools.update(scope, pool_id, body))


@router.post(
    "/pools/{pool_id}/open", response_model=answers.PoolChange, responses=error_responses(409)
)
def open_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now OPEN; ``changed`` is false when it already was."""
    pool, changed = services.crowd.pools.open(scope, pool_id)
    return ok({**pool, "changed": changed})


@router.post(
    "/pools/{pool_id}/close", response_model=answers.PoolChange, responses=error_responses(409)
)
def close_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now CLOSED; ``changed`` is false when it already was."""
    pool, changed = services.crowd.pools.close(scope, pool_id)
    return ok({**pool, "changed": changed})


@router.post(
    "/pools/{pool_id}/archive",
    response_model=answers.PoolChange,
    responses=error_responses(409),
)
def archive_pool(pool_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """The pool, now ARCHIVED; ``changed`` is false when it already was."""
    pool, changed = services.crowd.pools.archive(scope, pool_id)
    return ok({**pool, "changed": changed})


# -- skills ------------------------------------------------------------------------------------


@router.post(
    "/skills",
    status_code=201,
    response_model=answers.Skill,
    responses=error_responses(body=True),
)
def create_skill(body: SkillCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(rendered(services.crowd.skills.create(scope, body)), 201)


@router.get("/skills", response_model=answers.SkillList, responses=error_responses())
def list_skills(
    scope: ScopeDep,
    services: ServicesDep,
    name: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(services.crowd.skills.list(scope, name=name, limit=limit, cursor=cursor))


@router.get("/skills/{skill_id}", response_model=answers.Skill, responses=error_responses())
def get_skill(skill_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(rendered(services.crowd.skills.get(scope, skill_id)))


@router.put("/user-skills", response_model=answers.UserSkill, responses=error_responses(body=True))
def set_user_skill(body: UserSkillSet, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.skills.set_user_skill(scope, body.skill_id, body.user_id, body.value))


@router.delete("/user-skills/{user_skill_id}", status_code=204, responses=error_responses())
def delete_user_skill(user_skill_id: str, scope: ScopeDep, services: ServicesDep) -> Response:
    """``<skill id>:<user id>`` (a user skill's ``id``): the worker loses that skill value."""
    skill_id, sep, user_id = user_skill_id.partition(":")
    if not sep or not skill_id or not user_id:
        raise NotFound(
            "a user skill id is <skill id>:<user id>",
            code="user_skill_not_found",
            field="user_skill_id",
        )
    services.crowd.skills.delete_user_skill(scope, skill_id, user_id)
    return Response(status_code=204)


@router.get("/user-skills", response_model=answers.UserSkillList, responses=error_responses())
def list_user_skills(
    scope: ScopeDep,
    services: ServicesDep,
    skill_id: str | None = None,
    user_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    return page(
        services.crowd.skills.list_user_skills(
            scope, skill_id=skill_id, user_id=user_id, limit=limit, cursor=cursor
        )
    )


# -- operations --------------------------------------------------------------------------------


@router.get(
    "/operations/{operation_id}",
    response_model=answers.Operation,
    responses=error_responses(),
)
def get_operation(operation_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.operations.get(scope, operation_id))


@router.get(
    "/operations/{operation_id}/log",
    response_model=answers.OperationLog,
    responses=error_responses(),
)
def operation_log(operation_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """One entry per input item: ``{type, success, input, output}``."""
    log = services.crowd.operations.log(scope, operation_id)
    return ok({"data": log, "count": len(log), "cursor": None})


# -- assignments -------------------------------------------------------------------------------

AssignmentStatus = Literal["ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED"]


@router.get("/assignments", response_model=answers.AssignmentList, responses=error_responses())
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
        services.crowd.assignments.list(
            scope,
            pool_id=pool_id,
            status=status,
            task_id=task_id,
            user_id=user_id,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get(
    "/assignments/{assignment_id}",
    response_model=answers.Assignment,
    responses=error_responses(),
)
def get_assignment(assignment_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.crowd.assignments.get(scope, assignment_id))


@router.patch(
    "/assignments/{assignment_id}",
    response_model=answers.Assignment,
    responses=error_responses(409, body=True),
)
def review_assignment(
    assignment_id: str, body: Review, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Accept or reject a submitted assignment: ``{status, public_comment}``."""
    return ok(
        services.crowd.assignments.review(scope, assignment_id, body.status, body.public_comment)
    )


# -- aggregation -------------------------------------------------------------------------------


@router.post(
    "/aggregations",
    status_code=202,
    response_model=Job,
    responses={
        **also(200, answers.AggregatedResult, "task_id: that task's result, now"),
        **error_responses(409, 503, body=True),
    },
)
def aggregate(body: Aggregation, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """``pool_id``: 202 a job (kind ``crowd_aggregate``) whose results are read from
    ``GET /aggregations/{job_id}/results``. ``task_id``: 200 that task's result now."""
    kw: dict[str, Any] = {
        "method": body.method,
        "fields": body.fields,
        "answer_weight_skill_id": body.answer_weight_skill_id,
    }
    if body.pool_id is not None and body.task_id is None:
        return ok(services.crowd.aggregation.aggregate_pool(scope, body.pool_id, **kw), 202)
    if body.task_id is not None and body.pool_id is None:
        return ok(services.crowd.aggregation.aggregate_task(scope, body.task_id, **kw), 200)
    raise Invalid(
        "give pool_id (a job over the pool) or task_id (one task now), not both",
        field="pool_id" if body.pool_id is None else "task_id",
    )


@router.get(
    "/aggregations/{job_id}/results",
    response_model=answers.AggregatedResultList,
    responses=error_responses(409),
)
def aggregation_results(
    job_id: str,
    scope: ScopeDep,
    services: ServicesDep,
    limit: TaskLimit = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    """``[{pool_id, task_id, output_values, confidence}]`` in task order, paged."""
    return page(services.crowd.aggregation.results(scope, job_id, limit=limit, cursor=cursor))
