"""Crowd labelling: the objects of ``/v1/crowd`` as the server sends them (Toloka's field
names). Each object names the keys it always has; the rest of what the requester stored
(public names, specs, quality control, metadata...) comes along, so the objects are open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskloom.api.schemas.common import Open, listing
from taskloom.api.schemas.jobs import Job


class Project(Open):
    id: str
    status: str = Field(description="ACTIVE or ARCHIVED")
    created: datetime


class Pool(Open):
    id: str
    project_id: str
    status: str = Field(description="OPEN, CLOSED or ARCHIVED")
    created: datetime


class PoolChange(Pool):
    changed: bool = Field(description="false when the pool already was in that status.")


class Skill(Open):
    id: str
    name: str
    created: datetime


class UserSkill(BaseModel):
    id: str = Field(description="`<skill id>:<user id>`")
    skill_id: str
    user_id: str
    value: int
    exact_value: float
    created: datetime
    modified: datetime


class Operation(Job):
    """A batch operation: the job, plus the batch's counts once it has them."""

    details: dict[str, Any] | None = None


class OperationLogEntry(Open):
    type: str
    success: bool
    input: Any
    output: Any


class Task(Open):
    id: str
    pool_id: str
    input_values: dict[str, Any]
    overlap: int | None
    remaining_overlap: int | None
    infinite_overlap: bool | None
    created: datetime


class SuiteTask(Open):
    id: str
    input_values: dict[str, Any]


class TaskSuite(Open):
    id: str
    pool_id: str
    tasks: list[SuiteTask]
    overlap: int | None
    remaining_overlap: int | None
    infinite_overlap: bool | None
    created: datetime


class ItemError(Open):
    code: str
    message: str


class Batch(BaseModel):
    """A batch made in one request: what was created by index, what was not and why."""

    items: dict[str, Any] = Field(description='index -> the created object: `{"0": {...}}`')
    validation_errors: dict[str, dict[str, ItemError]] = Field(
        description='index -> {field path -> {code, message}}: `{"1": {"pool_id": ...}}`'
    )


class TaskBatch(Batch):
    items: dict[str, Task]


class SuiteBatch(Batch):
    items: dict[str, TaskSuite]


class AssignmentTask(Open):
    id: str
    input_values: dict[str, Any]


class Assignment(Open):
    id: str
    task_suite_id: str | None
    pool_id: str
    user_id: str
    status: str = Field(description="ACTIVE, SUBMITTED, ACCEPTED, REJECTED, SKIPPED, EXPIRED")
    reward: float | None
    tasks: list[AssignmentTask]
    solutions: list[Any] | None
    mixed: bool | None
    automerged: bool | None
    created: datetime
    expires: datetime | None
    submitted: datetime | None
    accepted: datetime | None
    rejected: datetime | None
    skipped: datetime | None
    expired: datetime | None
    public_comment: str | None


class IssuedAssignment(Assignment):
    task_spec: dict[str, Any] = Field(description="The project's task spec, to build a form.")


class AggregatedResult(Open):
    pool_id: str
    task_id: str
    confidence: float | None
    output_values: Any


class Worker(Open):
    id: str
    external_id: str | None
    name: str | None
    created: datetime


class NewWorker(Worker):
    token: str = Field(description="`Authorization: Worker <token>`; shown this once.")


class WorkerPool(Open):
    """An open pool as a worker sees it."""

    id: str
    project_id: str


class WorkerMe(BaseModel):
    worker: Worker
    pools: list[WorkerPool]


def crowd_page(name: str, item: Any) -> type[BaseModel]:
    return listing(name, item, cursor=True)


ProjectList = crowd_page("ProjectList", Project)
PoolList = crowd_page("PoolList", Pool)
SkillList = crowd_page("SkillList", Skill)
UserSkillList = crowd_page("UserSkillList", UserSkill)
OperationLog = crowd_page("OperationLog", OperationLogEntry)
AssignmentList = crowd_page("AssignmentList", Assignment)
AggregatedResultList = crowd_page("AggregatedResultList", AggregatedResult)
TaskList = crowd_page("TaskList", Task)
TaskSuiteList = crowd_page("TaskSuiteList", TaskSuite)
