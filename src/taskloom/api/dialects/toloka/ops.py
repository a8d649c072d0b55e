"""Toloka operations: taskloom jobs (and synchronous pool/project transitions) in Toloka's shape.

A Toloka *operation* is a taskloom *job*:

========================  =======================  ==========================
job kind                  Toloka type              parameters
========================  =======================  ==========================
crowd_batch_create        TASK.BATCH_CREATE        skip_invalid_items,
crowd_suite_batch_create  TASK_SUITE.BATCH_CREATE  allow_defaults, open_pool
crowd_aggregate           SOLUTION.AGGREGATE       pool_id
========================  =======================  ==========================

An operation's id is the ``operation_id`` it was submitted with (the job's idempotency key),
else the job id: ``GET /operations/{id}`` and the search (``GET /operations``) use the same.

Job states: ``registered``/``pending`` → ``PENDING``, ``in_progress`` → ``RUNNING``,
``completed`` → ``SUCCESS``, ``failed``/``cancelled`` → ``FAIL``.

Opening, closing and archiving a pool (and archiving a project) happen at once in taskloom,
inside the request. Toloka answers them with an operation, so the dialect answers with one
that has already succeeded (``POOL.OPEN``, ``POOL.CLOSE``, ``POOL.ARCHIVE``,
``PROJECT.ARCHIVE``). Its id names what happened (``pool.open.<pool id>.<ms since epoch>``)
and reading it back checks that the pool (or project) is still the caller's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from taskloom.errors import NotFound

_STATUS = {
    "registered": "PENDING",
    "pending": "PENDING",
    "in_progress": "RUNNING",
    "completed": "SUCCESS",
    "failed": "FAIL",
    "cancelled": "FAIL",
}

KINDS = {
    "TASK.BATCH_CREATE": "crowd_batch_create",
    "TASK_SUITE.BATCH_CREATE": "crowd_suite_batch_create",
    "SOLUTION.AGGREGATE": "crowd_aggregate",
}
STATUSES = {
    "PENDING": ("registered", "pending"),
    "RUNNING": ("in_progress",),
    "SUCCESS": ("completed",),
    "FAIL": ("failed", "cancelled"),
}

_DETAIL_KEYS = ("total_count", "valid_count", "not_valid_count", "success_count", "failed_count")


_TYPES = {kind: name for name, kind in KINDS.items()}


def operation_type(job: Mapping[str, Any]) -> str:
    kind = str(job.get("kind") or "")
    return _TYPES.get(kind, kind.upper())


def operation(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job as a Toloka operation."""
    params = job.get("params") or {}
    kind = job.get("kind")
    result = job.get("result") or {}
    op: dict[str, Any] = {
        # the client's operation_id names the operation when it gave one (Toloka's rule);
        # the service finds a job by either
        "id": job.get("idempotency_key") or job["id"],
        "type": operation_type(job),
        "status": _STATUS.get(str(job.get("status")), "PENDING"),
        "submitted": job.get("created_at"),
        "progress": int(round(float(job.get("progress") or 0))),
    }
    if job.get("started_at") is not None:
        op["started"] = job["started_at"]
    if job.get("finished_at") is not None:
        op["finished"] = job["finished_at"]
    if kind == "crowd_aggregate":
        op["parameters"] = {"pool_id": params.get("pool_id")}
    else:
        op["parameters"] = {
            "skip_invalid_items": bool(params.get("skip_invalid_items", False)),
            "allow_defaults": bool(params.get("allow_defaults", False)),
            "open_pool": bool(params.get("open_pool", False)),
        }
    details: dict[str, Any] = result
    for candidate in (job.get("details"), result.get("details")):
        if isinstance(candidate, dict):
            details = candidate
            break
    picked = {k: details[k] for k in _DETAIL_KEYS if k in details}
    if picked:
        op["details"] = picked
    elif kind == "crowd_aggregate" and "count" in details:
        op["details"] = {"items_count": details["count"]}
    if op["status"] == "FAIL" and job.get("error"):
        err = job["error"]
        op.setdefault("details", {})["error"] = {
            "code": str(err.get("code") or "OPERATION_EXECUTION_ERROR").upper(),
            "message": err.get("message"),
        }
    if op["status"] == "SUCCESS":
        op["progress"] = 100
    return op


# -- synchronous transitions as finished operations ---------------------------------------------

SYNTHETIC = {
    ("pool", "open"): "POOL.OPEN",
    ("pool", "close"): "POOL.CLOSE",
    ("pool", "archive"): "POOL.ARCHIVE",
    ("project", "archive"): "PROJECT.ARCHIVE",
}


def done_operation(what: str, action: str, object_id: str, at: datetime | None = None) -> dict:
    """A transition that already happened, as a finished Toloka operation."""
    at = at or datetime.now(UTC)
    ms = int(at.timestamp() * 1000)
    return {
        "id": f"{what}.{action}.{object_id}.{ms}",
        "type": SYNTHETIC[(what, action)],
        "status": "SUCCESS",
        "submitted": at,
        "started": at,
        "finished": at,
        "progress": 100,
        "parameters": {f"{what}_id": object_id},
    }


def parse_synthetic(op_id: str) -> tuple[str, str, str, datetime] | None:
    """``(what, action, object id, when)`` of a synthetic operation id, else None."""
    head, _, rest = op_id.partition(".")
    if head not in ("pool", "project"):
        return None
    action, _, rest = rest.partition(".")
    object_id, _, ms = rest.rpartition(".")
    if (head, action) not in SYNTHETIC or not object_id or not ms.isdigit():
        return None
    return head, action, object_id, datetime.fromtimestamp(int(ms) / 1000, UTC)


def synthetic_or_404(op_id: str) -> tuple[str, str, str, datetime]:
    parsed = parse_synthetic(op_id)
    if parsed is None:
        raise NotFound(f"operation {op_id!r} not found", field="operation_id")
    return parsed


def log_entry(entry: Mapping[str, Any], op_type: str, position: int) -> dict[str, Any]:
    """One operation log item: ``{type, success, input, output}``. The input is the item as
    sent; its ``__item_idx`` (toloka-kit tags each item of a batch with its position, and
    finds its items in the log by it) is the entry's position, since taskloom keeps no
    client tags."""
    success = bool(entry.get("success"))
    what = "TASK_SUITE" if op_type.startswith("TASK_SUITE") else "TASK"
    data = dict(entry.get("input") or {})
    data.setdefault("__item_idx", str(entry.get("idx", position)))
    return {
        "type": entry.get("type") or f"{what}_{'CREATE' if success else 'VALIDATE'}",
        "success": success,
        "input": data,
        "output": entry.get("output") or {},
    }
