"""Task-model job kinds: ``train_task_model`` (fit and evaluate one model version) and
``predict_task_model`` (score every row of a feature table into a TSV in a bucket). The work
is in ``services.models``; both kinds overwrite their own output when retried."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from taskloom.jobs.registry import JobKind, Registry

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext
    from taskloom.services.container import Services


class TrainTaskModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=36, description="The task model.")
    version_id: str = Field(min_length=1, max_length=36, description="The version to train.")


class PredictTaskModelParams(TrainTaskModelParams):
    feature_id: str = Field(min_length=1, max_length=128, description="The rows to score.")
    bucket: str = Field(min_length=1, max_length=63, description="Where the output goes.")
    output_path: str = Field(min_length=1, max_length=512, description="The output TSV.")


def run_train(ctx: JobContext[Services], params: TrainTaskModelParams) -> dict[str, Any]:
    """Train a task model version from its correct-answer file and feature table."""
    return ctx.services.models.training.train(ctx.scope, ctx, params.model_id, params.version_id)


def run_predict(ctx: JobContext[Services], params: PredictTaskModelParams) -> dict[str, Any]:
    """Predict every row of a feature table; write key, label and probabilities as a TSV."""
    return ctx.services.models.training.batch_predict(ctx.scope, ctx, params)


def register(registry: Registry) -> None:
    registry.register(
        JobKind(
            "train_task_model",
            TrainTaskModelParams,
            run_train,
            "Train a task model (services.models.create_task_model submits it).",
        )
    )
    registry.register(
        JobKind(
            "predict_task_model",
            PredictTaskModelParams,
            run_predict,
            "Batch prediction of a task model into a TSV file in a bucket.",
        )
    )
