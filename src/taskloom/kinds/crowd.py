"""Crowd job kinds: ``crowd_batch_create`` (Toloka's TASK.BATCH_CREATE operation),
``crowd_suite_batch_create`` (TASK_SUITE.BATCH_CREATE) and ``crowd_aggregate``. The work
itself is in ``services.crowd``; every kind is idempotent (a retried batch skips the items it
already logged, a retried aggregation rewrites its own results)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from taskloom.jobs.registry import JobKind, Registry

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext
    from taskloom.services.container import Services


class BatchCreateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requester_id: str = Field(description="The user whose tasks these are.")
    allow_defaults: bool = False
    skip_invalid_items: bool = False
    open_pool: bool = False
    total_count: int = Field(ge=1, description="Items stored for this operation.")
    operation_id: str | None = Field(default=None, description="The client's operation id.")


class AggregateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool_id: str = Field(min_length=1)
    method: Literal["majority_vote", "dawid_skene", "skill_weighted"] = "dawid_skene"
    fields: list[str] = Field(min_length=1, description="Output fields aggregated together.")
    answer_weight_skill_id: str | None = None


def run_batch_create(ctx: JobContext[Services], params: BatchCreateParams) -> dict[str, Any]:
    """Create the crowd tasks of an asynchronous batch; log each item."""
    return ctx.services.crowd.operations.run_batch_create(ctx.scope, ctx.job_id, ctx, params)


def run_suite_batch_create(ctx: JobContext[Services], params: BatchCreateParams) -> dict[str, Any]:
    """Create the task suites of an asynchronous batch; log each item."""
    return ctx.services.crowd.operations.run_suite_batch_create(ctx.scope, ctx.job_id, ctx, params)


def run_aggregate(ctx: JobContext[Services], params: AggregateParams) -> dict[str, Any]:
    """Aggregate a pool's answers into one answer per task."""
    return ctx.services.crowd.aggregation.run(ctx.scope, ctx.job_id, ctx, params)


def register(registry: Registry) -> None:
    registry.register(
        JobKind(
            "crowd_batch_create",
            BatchCreateParams,
            run_batch_create,
            "Create crowd tasks in the background (Toloka's TASK.BATCH_CREATE); the items "
            "are stored with the job by services.crowd.operations.submit_tasks.",
        )
    )
    registry.register(
        JobKind(
            "crowd_suite_batch_create",
            BatchCreateParams,
            run_suite_batch_create,
            "Create crowd task suites in the background (Toloka's TASK_SUITE.BATCH_CREATE); "
            "the items are stored with the job by services.crowd.operations.submit_suites.",
        )
    )
    registry.register(
        JobKind(
            "crowd_aggregate",
            AggregateParams,
            run_aggregate,
            "Aggregate a pool's answers (majority_vote, dawid_skene, skill_weighted).",
        )
    )
