"""How registry rows read back: models, versions and the task-model view (plain dicts)."""

from __future__ import annotations

import math
from typing import Any

from taskloom.jobs.states import JobStatus

#: the fields of a task-model creation request, echoed in the view (None when absent)
REQUEST_FIELDS = (
    "train_feature_id",
    "train_feature_name",
    "train_bucket",
    "train_file_path",
    "test_feature_id",
    "test_feature_name",
    "test_bucket",
    "test_file_path",
)


def json_safe(value: Any) -> Any:
    """Metrics as JSON: numpy scalars become Python numbers, NaN and infinities None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def status_of(row: Any) -> str:
    """The job's status while the job exists (it moves first), else what the version recorded."""
    job_status = getattr(row, "job_status", None)
    return job_status if job_status is not None else row.status


def error_of(row: Any, status: str) -> dict[str, Any] | None:
    if status != JobStatus.FAILED.value:
        return None
    if row.error:
        return {"code": row.error.get("code"), "message": row.error.get("message")}
    job_error = getattr(row, "job_error", None) or {}
    code = job_error.get("code") or "training_failed"
    # the worker upper-cases codes; the version records them as raised
    return {"code": str(code).lower(), "message": job_error.get("message") or "failed"}


def model_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "app_id": row.app_id,
        "name": row.name,
        "kind": row.kind,
        "description": row.description,
        "latest_version": getattr(row, "latest_version", None),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def version_public(row: Any) -> dict[str, Any]:
    status = status_of(row)
    return {
        "id": row.id,
        "model_id": row.model_id,
        "number": row.number,
        "status": status,
        "params": row.params,
        "metrics": row.metrics,
        "has_artifact": row.artifact is not None,
        "job_id": row.job_id,
        "error": error_of(row, status),
        "created_at": row.created_at,
        "updated_at": _latest(row.updated_at, getattr(row, "job_updated_at", None)),
    }


def task_model_public(row: Any) -> dict[str, Any]:
    """The task-model view: the request's fields, the training job's status, the metrics."""
    status = status_of(row)
    params = row.params or {}
    out: dict[str, Any] = {"id": row.model_id, "name": row.name, "status": status}
    out.update({f: params.get(f) for f in REQUEST_FIELDS})
    out.update(
        created_at=row.model_created_at,
        updated_at=_latest(row.updated_at, getattr(row, "job_updated_at", None)),
        error=error_of(row, status),
        metrics=row.metrics if status == JobStatus.COMPLETED.value else None,
        job_id=row.job_id,
        version=row.number,
        version_id=row.id,
        hyperparameters=params.get("hyperparameters") or {},
    )
    return out


def _latest(a: Any, b: Any) -> Any:
    if b is None:
        return a
    return max(a, b)
