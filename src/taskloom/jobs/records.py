"""What the engine hands out: frozen, typed records of jobs and their events.

A :class:`Job` is read by attribute (``job.status``); it also reads by key (``job["status"]``,
``{**job}``) as the plain dicts it replaced did, and serialises (orjson, ``to_dict``) to the
JSON the API answers, field for field (the base: :class:`taskloom.store.records.Record`;
a record equals a mapping with the same items).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskloom.store.records import Record


@dataclass(frozen=True, slots=True, eq=False)
class Job(Record):
    id: str
    app_id: str
    dataset: str | None
    kind: str
    params: dict[str, Any]
    status: str
    progress: float
    message: str | None
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    attempts: int
    max_attempts: int
    idempotency_key: str | None
    cancel_requested: bool
    parent_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> Job:
        """From a row of the ``jobs`` table (or anything with its attributes)."""
        return cls(
            id=row.id,
            app_id=row.app_id,
            dataset=row.dataset_name,
            kind=row.kind,
            params=row.params,
            status=row.status,
            progress=row.progress,
            message=row.message,
            result=row.result,
            error=row.error,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            idempotency_key=row.idempotency_key,
            cancel_requested=row.cancel_requested,
            parent_id=row.parent_id,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            updated_at=row.updated_at,
        )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Job:
        """From the column values the engine inserted (no read back)."""
        return cls.from_row(_Values(values))


@dataclass(frozen=True, slots=True, eq=False)
class JobEvent(Record):
    id: int
    job_id: str
    at: datetime
    type: str
    status: str | None
    progress: float | None
    message: str | None
    data: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> JobEvent:
        return cls(
            id=row.id,
            job_id=row.job_id,
            at=row.at,
            type=row.type,
            status=row.status,
            progress=row.progress,
            message=row.message,
            data=row.data,
        )


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing, newest first; ``cursor`` resumes after it (None: the end)."""

    data: list[Job]
    cursor: str | None

    def __getitem__(self, key: str) -> Any:
        if key == "data":
            return self.data
        if key == "cursor":
            return self.cursor
        raise KeyError(key)


class _Values:
    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)
