"""The model registry and task models (``taskloom.services.models``), in the caller's app.

    GET    /v1/models                              {"data": [model], "count"}
    GET    /v1/models/{id}                         model
    GET    /v1/models/{id}/versions                {"data": [version], "count"}

    POST   /v1/task-models                         NCLUE's fields (+ queue, hyperparameters)
                                                   -> 201 task model
    GET    /v1/task-models?limit=&cursor=          {"data": [task model], "count", "cursor"}
    GET    /v1/task-models/{id}                    task model
    DELETE /v1/task-models/{id}                    204 (only while registered, else 409)
    POST   /v1/task-models/{id}/start              task model (queue a registered one)
    POST   /v1/task-models/{id}/predict            {"keys" | "rows", "feature_id"?}
                                                   -> {"predictions", "missing_keys", "classes"}
    POST   /v1/task-models/{id}/batch-predictions  {"bucket", "output_path", "feature_id"?}
                                                   -> 202 job

The creation body is checked by ``services.task_models_rules`` (every problem listed in
``details.errors``), so it is read as a plain JSON object here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.jobs import Job
from taskloom.api.schemas.models import (
    Model,
    ModelList,
    Predictions,
    TaskModel,
    TaskModelPage,
    VersionList,
)
from taskloom.errors import Invalid

router = APIRouter(tags=["models"])


class PredictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[Annotated[str, Field(min_length=1, max_length=1000)] | int] | None = Field(
        default=None, max_length=10_000
    )
    rows: list[list[float | None]] | None = Field(default=None, max_length=10_000)
    feature_id: str | None = Field(default=None, max_length=128)


class BatchPredictionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str = Field(max_length=63)
    output_path: str = Field(max_length=1024)
    feature_id: str | None = Field(default=None, max_length=128)


# -- the registry ---------------------------------------------------------------------------


@router.get("/v1/models", response_model=ModelList, responses=error_responses())
def list_models(scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    data = services.models.list_models(scope)
    return ok({"data": data, "count": len(data)})


@router.get("/v1/models/{model_id}", response_model=Model, responses=error_responses())
def get_model(model_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.models.get_model(scope, model_id))


@router.get(
    "/v1/models/{model_id}/versions", response_model=VersionList, responses=error_responses()
)
def list_versions(model_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    data = services.models.list_versions(scope, model_id)
    return ok({"data": data, "count": len(data)})


# -- task models -----------------------------------------------------------------------------


@router.post(
    "/v1/task-models",
    status_code=201,
    response_model=TaskModel,
    responses=error_responses(409, body=True),
)
def create_task_model(
    body: Annotated[dict[str, Any], Body()], scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Register a task model and its training job (queued unless ``"queue": false``)."""
    fields = dict(body)
    hyperparameters = fields.pop("hyperparameters", None)
    queue = fields.pop("queue", True)
    if not isinstance(queue, bool):
        raise Invalid("queue is true or false", code="invalid_type", field="queue")
    description = fields.pop("description", None) or ""
    if not isinstance(description, str) or len(description) > 10_000 or "\x00" in description:
        raise Invalid(
            "a description is text of at most 10000 characters",
            code="invalid_description",
            field="description",
        )
    out = services.models.create_task_model(
        scope,
        fields,
        queue=queue,
        hyperparameters=hyperparameters,
        description=description,
    )
    return ok(out, 201)


@router.get("/v1/task-models", response_model=TaskModelPage, responses=error_responses())
def list_task_models(
    scope: ScopeDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> FastJSONResponse:
    page = services.models.list_task_models(scope, limit=limit, cursor=cursor)
    return ok({**page, "count": len(page["data"])})


@router.get("/v1/task-models/{model_id}", response_model=TaskModel, responses=error_responses())
def get_task_model(model_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.models.get_task_model(scope, model_id))


@router.delete("/v1/task-models/{model_id}", status_code=204, responses=error_responses(409))
def delete_task_model(model_id: str, scope: ScopeDep, services: ServicesDep) -> Response:
    services.models.delete_task_model(scope, model_id)
    return Response(status_code=204)


@router.post(
    "/v1/task-models/{model_id}/start",
    response_model=TaskModel,
    responses=error_responses(409),
)
def start_task_model(model_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.models.start_task_model(scope, model_id))


@router.post(
    "/v1/task-models/{model_id}/predict",
    response_model=Predictions,
    responses=error_responses(409, body=True),
)
def predict(
    model_id: str, body: PredictBody, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Labels and probabilities for keys of a feature table or for rows of values."""
    return ok(
        services.models.predict(
            scope, model_id, keys=body.keys, rows=body.rows, feature_id=body.feature_id
        )
    )


@router.post(
    "/v1/task-models/{model_id}/batch-predictions",
    status_code=202,
    response_model=Job,
    responses=error_responses(409, body=True),
)
def batch_prediction(
    model_id: str, body: BatchPredictionCreate, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """A ``predict_task_model`` job writing every row's prediction to a TSV in a bucket."""
    job = services.models.submit_batch_prediction(
        scope,
        model_id,
        feature_id=body.feature_id,
        bucket=body.bucket,
        output_path=body.output_path,
    )
    return ok(job, 202)
