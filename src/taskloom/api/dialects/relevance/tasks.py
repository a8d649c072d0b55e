"""Relevance AI tasks as taskloom jobs: task names, parameters and status words.

==========================  =============================  ==================================
Relevance ``task_name``     taskloom job kind              parameters as the SDK sends them
==========================  =============================  ==================================
``NumericEncoder``          ``encode_numeric``             ``fields``, ``vector_name``
``CategoriesEncoder``       ``encode_categories``          ``fields``
``TextEncoder``             ``encode_text``                ``field``, ``alias``, ``refresh``
``TextImageEncoder``        ``encode_text_clip``           ``field``, ``alias``, ``refresh``
``ImageTextEncoder``        ``encode_image_clip``          ``field``, ``alias``, ``refresh``
``Clusterer``               ``cluster``                    ``vector_field`` (0.22) or
                                                           ``vector_fields`` (a list of one),
                                                           ``n_clusters``, ``alias``,
                                                           ``refresh``, ``n_iter``, ``n_init``
==========================  =============================  ==================================

Other parameters go to the job kind as they are, so the kind's own options (``scaling``,
``random_state``…) can be given too, and an unknown one is refused by the kind (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskloom.errors import Invalid

TASK_KINDS: dict[str, str] = {
    "NumericEncoder": "encode_numeric",
    "CategoriesEncoder": "encode_categories",
    "TextEncoder": "encode_text",
    "TextImageEncoder": "encode_text_clip",
    "ImageTextEncoder": "encode_image_clip",
    "Clusterer": "cluster",
}
TASK_NAMES: dict[str, str] = {kind: name for name, kind in TASK_KINDS.items()}

# Job status -> the word Relevance's client reads. Its polling loop stops on "Finished"
# (or "success"); the other words are for people and for taskloom's compat client.
STATUS_WORDS: dict[str, str] = {
    "registered": "Not Started",
    "pending": "Pending",
    "in_progress": "Running",
    "completed": "Finished",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

# sent by the SDK, but carried by the request path already
_CARRIED = ("task_name", "dataset_id")


def job_request(dataset: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(job kind, job params) for a ``tasks/create`` body."""
    name = body.get("task_name")
    if not isinstance(name, str) or not name:
        raise Invalid("task_name is required", code="missing_field", field="task_name")
    kind = TASK_KINDS.get(name)
    if kind is None:
        raise Invalid(
            f"unknown task_name {name!r}; known: {', '.join(sorted(TASK_KINDS))}",
            code="unknown_task_name",
            field="task_name",
        )
    if body.get("dataset_id") not in (None, dataset):
        raise Invalid(
            "dataset_id differs from the dataset in the path",
            code="dataset_mismatch",
            field="dataset_id",
        )
    params = {k: v for k, v in body.items() if k not in _CARRIED}
    if kind == "cluster":
        params = _one_vector_field(params)
    return kind, params


def _one_vector_field(params: dict[str, Any]) -> dict[str, Any]:
    """0.24+ sends ``vector_fields: [name]`` where 0.22 sent ``vector_field: name``."""
    out = dict(params)
    fields = out.pop("vector_fields", None)
    if fields is None:
        return out
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or len(fields) != 1 or not isinstance(fields[0], str):
        raise Invalid(
            "vector_fields is a list of one vector field name",
            code="invalid_vector_fields",
            field="vector_fields",
        )
    if out.get("vector_field") not in (None, fields[0]):
        raise Invalid(
            "vector_field and vector_fields name different fields",
            code="invalid_vector_fields",
            field="vector_fields",
        )
    out["vector_field"] = fields[0]
    return out


def render(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job as a Relevance task (``status`` is the word Relevance's client understands)."""
    error = job.get("error")
    return {
        "task_id": job["id"],
        "task_name": TASK_NAMES.get(job["kind"], job["kind"]),
        "dataset_id": job.get("dataset"),
        "status": STATUS_WORDS.get(job["status"], job["status"]),
        "job_status": job["status"],
        "progress": job.get("progress"),
        "message": job.get("message"),
        "params": job.get("params"),
        "result": job.get("result"),
        "error": error.get("message") if isinstance(error, dict) else error,
        "error_code": error.get("code") if isinstance(error, dict) else None,
        "created_at": job.get("created_at"),
        "started_at": job.get("started_at"),
        "finished_at": job.get("finished_at"),
    }
