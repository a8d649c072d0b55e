"""Request bodies of the crowd services, in Toloka's field names (the native ``/v1/crowd``
routes parse into them; they live here, beneath the api layer, so that the Toloka dialect
can parse into the same models).

Each resource accepts the fields taskloom implements and refuses any other with a 422 that
names it, so a typo is never dropped silently. The services still check the dict bodies the
Toloka front door hands them (its bodies keep unknown fields, stored as given).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=1000)]
Id = Annotated[str, Field(min_length=1, max_length=200)]


class CrowdBody(BaseModel):
    """A body that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid")

    def sent(self) -> dict[str, Any]:
        """What the caller sent, as JSON types (the services read what a dialect gives)."""
        return self.model_dump(mode="json", exclude_unset=True)


class TaskSpec(CrowdBody):
    """Field specs by name (``{"type": "string", "required": true, ...}``); the view spec is
    stored as given."""

    input_spec: dict[str, dict[str, Any]]
    output_spec: dict[str, dict[str, Any]]
    view_spec: dict[str, Any] | None = None


class ProjectUpdate(CrowdBody):
    """The fields a PATCH changes (those not sent stay as they are)."""

    public_name: Name | None = None
    public_description: str | None = None
    public_instructions: str | None = None
    private_comment: str | None = None
    task_spec: TaskSpec | None = None
    assignments_issuing_type: Literal["AUTOMATED", "MAP_SELECTOR"] | None = None
    metadata: dict[str, Any] | None = None


class ProjectCreate(ProjectUpdate):
    public_name: Name
    task_spec: TaskSpec


class PoolDefaults(CrowdBody):
    default_overlap_for_new_tasks: int | None = Field(default=None, ge=1)
    default_overlap_for_new_task_suites: int | None = Field(default=None, ge=1)


class MixerConfig(CrowdBody):
    real_tasks_count: int = Field(default=0, ge=0)
    golden_tasks_count: int = Field(default=0, ge=0)
    training_tasks_count: int = Field(default=0, ge=0)


class AnswerWeight(CrowdBody):
    """Weigh each worker's answer by their level in a skill."""

    skill_id: Id
    default_skill_value: float | None = Field(default=None, ge=0, le=100)
    max_skill_value: float | None = Field(default=None, ge=0, le=100)


class FieldRef(CrowdBody):
    name: Id


class DynamicOverlap(CrowdBody):
    """Issue a task until its leading answer reaches ``min_confidence`` or the overlap
    reaches ``max_overlap``."""

    type: Literal["BASIC"] = "BASIC"
    max_overlap: int = Field(ge=1)
    min_confidence: float = Field(ge=0, le=1)
    answer_weight: AnswerWeight | None = None
    fields: list[FieldRef] = Field(min_length=1)


class PoolUpdate(CrowdBody):
    """The fields a PATCH changes (those not sent stay as they are)."""

    private_name: Name | None = None
    public_description: str | None = None
    private_comment: str | None = None
    reward_per_assignment: float | None = Field(default=None, ge=0)
    assignment_max_duration_seconds: int | None = Field(default=None, ge=1)
    will_expire: datetime | None = None
    auto_accept_solutions: bool | None = None
    defaults: PoolDefaults | None = None
    mixer_config: MixerConfig | None = None
    quality_control: dict[str, Any] | None = None  # {"configs": [...]}, checked by the service
    dynamic_overlap_config: DynamicOverlap | None = None
    metadata: dict[str, Any] | None = None


class PoolCreate(PoolUpdate):
    project_id: Id
    private_name: Name
    reward_per_assignment: float = Field(ge=0)
    assignment_max_duration_seconds: int = Field(ge=1)
    will_expire: datetime


class SkillCreate(CrowdBody):
    name: Name
    private_comment: str | None = None
    hidden: bool | None = None
    training: bool | None = None
    skill_ttl_hours: int | None = Field(default=None, ge=1)
    public_requester_description: str | None = None
    metadata: dict[str, Any] | None = None


class UserSkillSet(CrowdBody):
    skill_id: Id
    user_id: Id
    value: float = Field(ge=0, le=100)


class TaskUpdate(CrowdBody):
    overlap: int | None = Field(default=None, ge=1)
    infinite_overlap: bool | None = None
    baseline_solutions: list[dict[str, Any]] | None = None


class TaskSuiteUpdate(CrowdBody):
    overlap: int | None = Field(default=None, ge=1)
    infinite_overlap: bool | None = None
    issuing_order_override: float | None = Field(default=None, ge=-99_999.99999, le=99_999.99999)


class OverlapSet(CrowdBody):
    overlap: int = Field(ge=0)


class Review(CrowdBody):
    status: Literal["ACCEPTED", "REJECTED"]
    public_comment: str | None = Field(default=None, max_length=10_000)


AggregationMethod = Literal["majority_vote", "dawid_skene", "skill_weighted"]


class Aggregation(CrowdBody):
    """``pool_id`` (a job over the pool) or ``task_id`` (one task, answered now)."""

    pool_id: Id | None = None
    task_id: Id | None = None
    method: AggregationMethod = "dawid_skene"
    fields: list[Id] | None = Field(default=None, min_length=1)
    answer_weight_skill_id: Id | None = None
