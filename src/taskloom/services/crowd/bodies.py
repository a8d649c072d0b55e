"""Request bodies of the crowd services, in Toloka's field names: parsed once, by the native
``/v1/crowd`` routes (FastAPI) or by the service itself when a front door hands it a mapping
(:func:`parse_body`, the one place a pydantic ``ValidationError`` becomes ``Invalid``). They
live here, beneath the api layer, so that the Toloka door parses into the same models.

Types are strict, as Toloka's are: ``"2"`` is not an overlap and ``1`` is not ``true``.
Integers are bounded (nothing reaches a 64-bit column that does not fit it), display strings
hold no NUL character. Each resource accepts the fields taskloom implements and refuses any
other with a 422 that names it, so a typo is never dropped silently. Rules that need the
database (an overlap below the copies issued: 409) stay in the services.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    create_model,
)

from taskloom.services.crowd.common import INT64_MAX, MAX_TEXT
from taskloom.services.crowd.validate import MAX_OVERLAP
from taskloom.validation import parse_model


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a NUL character is not allowed here")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("a name is not blank")
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_no_nul)]
Name = Annotated[Text, Field(min_length=1, max_length=1000), AfterValidator(_not_blank)]
Id = Annotated[str, Field(min_length=1, max_length=200)]
# an overlap the service may refuse (0 below the copies issued: 409), never past the bound
Overlap = Annotated[StrictInt, Field(ge=0, le=MAX_OVERLAP)]
IssuingOrder = Annotated[float, Field(ge=-99_999.99999, le=99_999.99999, strict=True)]

B = TypeVar("B", bound=BaseModel)
_KEEPING: dict[type[BaseModel], type[BaseModel]] = {}


def _keeping_unknown(model: type[B]) -> type[B]:
    """``model`` that keeps the fields it does not know, at every level (Toloka's bodies
    store them as given), instead of refusing them; its instances are ``model``\'s."""
    if model not in _KEEPING:
        fields: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            swapped = _swap_models(info.annotation)
            if swapped is not info.annotation:
                kept = copy.copy(info)
                kept.annotation = swapped
                fields[name] = (swapped, kept)
        _KEEPING[model] = create_model(
            model.__name__, __base__=model, __module__=model.__module__, **fields
        )
        _KEEPING[model].model_config["extra"] = "allow"
        _KEEPING[model].model_rebuild(force=True)
    return _KEEPING[model]  # type: ignore[return-value]


def _swap_models(tp: Any) -> Any:
    """``tp`` with each crowd body model in it replaced by its keeping variant."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _keeping_unknown(tp)
    args = get_args(tp)
    if not args or get_origin(tp) is Literal:
        return tp
    swapped = tuple(_swap_models(a) for a in args)
    if swapped == args:
        return tp
    origin = get_origin(tp)
    if origin is Annotated:
        return Annotated[(swapped[0], *tp.__metadata__)]
    if origin in (Union, types.UnionType):
        return Union[swapped]  # noqa: UP007 (built from a tuple)
    return origin[swapped if len(swapped) > 1 else swapped[0]]


def parse_body(
    model: type[B], body: B | Mapping[str, Any] | Any, *, keep_unknown: bool = False
) -> B:
    """``body`` if it is already a ``model``, else the mapping parsed into one (a refusal is
    ``Invalid`` naming the first bad field; every error listed in ``details.errors``).
    ``keep_unknown``: fields the model does not know are kept (``model_extra``), not refused."""
    if isinstance(body, model):
        return body
    return parse_model(_keeping_unknown(model) if keep_unknown else model, body)


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
    public_description: Text | None = None
    public_instructions: Text | None = None
    private_comment: Text | None = None
    task_spec: TaskSpec | None = None
    assignments_issuing_type: Literal["AUTOMATED", "MAP_SELECTOR"] | None = None
    metadata: dict[str, Any] | None = None


class ProjectCreate(ProjectUpdate):
    public_name: Name
    task_spec: TaskSpec


class PoolDefaults(CrowdBody):
    """Overlaps of tasks and suites created with ``allow_defaults`` and no overlap of their
    own. A task suite default of 0 (Toloka's tutorials write it for pools whose suites the
    mixer builds) is accepted and means none: such a suite needs an overlap of its own."""

    default_overlap_for_new_tasks: Annotated[StrictInt, Field(ge=1, le=MAX_OVERLAP)] | None = None
    default_overlap_for_new_task_suites: Overlap | None = None


Count = Annotated[StrictInt, Field(ge=0, le=1000)]


class MixerConfig(CrowdBody):
    real_tasks_count: Count = 0
    golden_tasks_count: Count = 0
    training_tasks_count: Count = 0


SkillValue = Annotated[float, Field(ge=0, le=100, strict=True)]


class AnswerWeight(CrowdBody):
    """Weigh each worker's answer by their level in a skill."""

    skill_id: Id
    default_skill_value: SkillValue | None = None
    max_skill_value: SkillValue | None = None


class FieldRef(CrowdBody):
    name: Id


class DynamicOverlap(CrowdBody):
    """Issue a task until its leading answer reaches ``min_confidence`` or the overlap
    reaches ``max_overlap``."""

    type: Literal["BASIC"] = "BASIC"
    max_overlap: Annotated[StrictInt, Field(ge=1, le=MAX_OVERLAP)]
    min_confidence: Annotated[float, Field(ge=0, le=1, strict=True)]
    answer_weight: AnswerWeight | None = None
    fields: list[FieldRef] = Field(min_length=1)


Reward = Annotated[float, Field(ge=0, le=1e9, strict=True)]
Duration = Annotated[StrictInt, Field(ge=1, le=10**8)]


class PoolUpdate(CrowdBody):
    """The fields a PATCH changes (those not sent stay as they are)."""

    private_name: Name | None = None
    public_description: Text | None = None
    private_comment: Text | None = None
    reward_per_assignment: Reward | None = None
    assignment_max_duration_seconds: Duration | None = None
    will_expire: datetime | None = None
    auto_accept_solutions: StrictBool | None = None
    defaults: PoolDefaults | None = None
    mixer_config: MixerConfig | None = None
    quality_control: dict[str, Any] | None = None  # {"configs": [...]}, checked by the service
    dynamic_overlap_config: DynamicOverlap | None = None
    metadata: dict[str, Any] | None = None


class PoolCreate(PoolUpdate):
    project_id: Id
    private_name: Name
    reward_per_assignment: Reward
    assignment_max_duration_seconds: Duration
    will_expire: datetime


class SkillCreate(CrowdBody):
    name: Name
    private_comment: Text | None = None
    hidden: StrictBool | None = None
    training: StrictBool | None = None
    skill_ttl_hours: Annotated[StrictInt, Field(ge=1, le=INT64_MAX)] | None = None
    public_requester_description: Text | dict[str, Text] | None = None
    metadata: dict[str, Any] | None = None


class WorkerCreate(CrowdBody):
    """A worker of the app: both fields optional, ``external_id`` unique in the app."""

    external_id: Annotated[Text, Field(min_length=1, max_length=200)] | None = None
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class UserSkillSet(CrowdBody):
    skill_id: Id
    user_id: Id
    value: SkillValue


class TaskUpdate(CrowdBody):
    """Toloka's TaskPatch: the fields sent change (``baseline_solutions: null`` clears them)."""

    overlap: Overlap | None = None
    infinite_overlap: StrictBool | None = None
    baseline_solutions: list[dict[str, Any]] | None = None


class TaskSuiteUpdate(CrowdBody):
    """Toloka's TaskSuitePatch."""

    overlap: Overlap | None = None
    infinite_overlap: StrictBool | None = None
    issuing_order_override: IssuingOrder | None = None


class OverlapSet(CrowdBody):
    """Toloka's TaskOverlapPatch (``set-overlap-or-min``): 0 stops issuing what is not out."""

    overlap: Overlap


class Review(CrowdBody):
    status: Literal["ACCEPTED", "REJECTED"]
    public_comment: Annotated[Text, Field(max_length=10_000)] | None = None


AggregationMethod = Literal["majority_vote", "dawid_skene", "skill_weighted"]


class Aggregation(CrowdBody):
    """``pool_id`` (a job over the pool) or ``task_id`` (one task, answered now)."""

    pool_id: Id | None = None
    task_id: Id | None = None
    method: AggregationMethod = "dawid_skene"
    fields: list[Id] | None = Field(default=None, min_length=1)
    answer_weight_skill_id: Id | None = None
