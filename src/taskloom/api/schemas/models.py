"""The model registry and task models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskloom.api.schemas.common import Open, listing


class ModelError(Open):
    code: str | None
    message: str | None


class Model(BaseModel):
    id: str
    app_id: str
    name: str
    kind: str
    description: str | None
    latest_version: int | None
    created_at: datetime
    updated_at: datetime


class ModelVersion(BaseModel):
    id: str
    model_id: str
    number: int
    status: str
    params: dict[str, Any] | None
    metrics: dict[str, Any] | None
    has_artifact: bool
    job_id: str | None
    error: ModelError | None
    created_at: datetime
    updated_at: datetime


class TaskModel(BaseModel):
    id: str
    name: str
    status: str = Field(description="The training job's status.")
    train_feature_id: str | None
    train_feature_name: str | None
    train_bucket: str | None
    train_file_path: str | None
    test_feature_id: str | None
    test_feature_name: str | None
    test_bucket: str | None
    test_file_path: str | None
    created_at: datetime
    updated_at: datetime
    error: ModelError | None
    metrics: dict[str, Any] | None = Field(description="Once completed.")
    job_id: str | None
    version: int
    version_id: str
    hyperparameters: dict[str, Any]


class Prediction(BaseModel):
    key: str | None = Field(default=None, description="With `keys`: the row's key.")
    label: Any
    probabilities: dict[str, float]


class Predictions(BaseModel):
    predictions: list[Prediction]
    missing_keys: list[str]
    classes: list[Any]


ModelList = listing("ModelList", Model)
VersionList = listing("VersionList", ModelVersion)
TaskModelPage = listing("TaskModelPage", TaskModel, cursor=True)
