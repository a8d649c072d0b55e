"""What the crowd services hand the API about the work: frozen, typed records
(``store.records.Record``) of assignments, operations and their log, skills, user skills,
workers and aggregated results.

Each record's fields are the keys of the JSON both doors answer, in that order; a plain
record serialises natively (orjson) to the same bytes as ``to_dict()``. A skill keeps its
settings as the stored JSON object (Toloka's fields and any other key a Toloka client sent):
its ``data`` field, spread in place (``{"id": ..., **data, "name": ..., "created": ...}``),
with the fields taskloom knows as typed properties over it; render it with ``to_dict()``
(orjson's native output would nest ``data``).

An operation is its job (``jobs.records.Job``, every field in order) plus ``details``, the
counts of a batch once it has them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from taskloom.jobs.records import Job
from taskloom.store.records import Record

__all__ = [
    "AggregatedResult",
    "Assignment",
    "NewWorker",
    "Operation",
    "OperationLogEntry",
    "Skill",
    "UserSkill",
    "Worker",
]


@dataclass(frozen=True, slots=True, eq=False)
class Assignment(Record):
    """An assignment: the tasks issued to a worker together, their answers and the review.
    ``tasks`` holds ``{id, input_values}`` per task, in the assignment's order (a worker is
    not shown hidden input fields)."""

    id: str
    task_suite_id: str | None
    pool_id: str
    user_id: str
    status: str
    reward: float
    tasks: list[dict[str, Any]]
    solutions: list[dict[str, Any]] | None
    mixed: bool
    automerged: bool
    created: datetime
    expires: datetime | None
    submitted: datetime | None
    accepted: datetime | None
    rejected: datetime | None
    skipped: datetime | None
    expired: datetime | None
    public_comment: str | None

    @classmethod
    def from_row(cls, row: Any, tasks: list[dict[str, Any]]) -> Assignment:
        """From a row of ``crowd_assignments`` (or anything with its attributes) and its
        tasks as shown."""
        return cls(
            id=row.id,
            task_suite_id=row.suite_id,
            pool_id=row.pool_id,
            user_id=row.user_id,
            status=row.status,
            reward=row.reward,
            tasks=tasks,
            solutions=row.solutions,
            mixed=row.mixed,
            automerged=row.automerged,
            created=row.created_at,
            expires=row.expires_at,
            submitted=row.submitted_at,
            accepted=row.accepted_at,
            rejected=row.rejected_at,
            skipped=row.skipped_at,
            expired=row.expired_at,
            public_comment=row.public_comment,
        )


_JOB_FIELDS = tuple(f.name for f in fields(Job))


@dataclass(frozen=True, slots=True, eq=False)
class Operation(Job):
    """A crowd job (batch creation, aggregation) with ``details``: the counts of a batch, from
    its result or (when it failed) its error; None until it has them."""

    details: dict[str, Any] | None

    @classmethod
    def of(cls, job: Job, details: dict[str, Any] | None) -> Operation:
        return cls(**{name: getattr(job, name) for name in _JOB_FIELDS}, details=details)


@dataclass(frozen=True, slots=True, eq=False)
class OperationLogEntry(Record):
    """One item an operation has handled: what it created (``type``), whether it did, the
    item as sent and what came of it (the created id, or the validation errors)."""

    type: str
    success: bool
    input: dict[str, Any]
    output: dict[str, Any]


@dataclass(frozen=True, slots=True, eq=False)
class Skill(Record):
    """A skill; its stored settings (any key a Toloka client sent included) spread in place."""

    _spread: ClassVar[str] = "data"
    id: str
    data: dict[str, Any]
    name: str
    created: datetime

    @classmethod
    def from_row(cls, row: Any) -> Skill:
        """From a row of ``crowd_skills`` (or anything with its attributes)."""
        return cls(id=row.id, data=row.data, name=row.name, created=row.created_at)

    @property
    def private_comment(self) -> str | None:
        return self.data.get("private_comment")

    @property
    def hidden(self) -> bool | None:
        return self.data.get("hidden")

    @property
    def training(self) -> bool | None:
        return self.data.get("training")

    @property
    def skill_ttl_hours(self) -> int | None:
        return self.data.get("skill_ttl_hours")

    @property
    def public_requester_description(self) -> str | dict[str, str] | None:
        return self.data.get("public_requester_description")

    @property
    def metadata(self) -> dict[str, Any] | None:
        return self.data.get("metadata")


@dataclass(frozen=True, slots=True, eq=False)
class UserSkill(Record):
    """A worker's value of a skill: ``id`` is ``<skill id>:<user id>``, ``value`` the
    rounded ``exact_value``."""

    id: str
    skill_id: str
    user_id: str
    value: int
    exact_value: float
    created: datetime
    modified: datetime

    @classmethod
    def from_row(cls, row: Any) -> UserSkill:
        """From a row of ``crowd_user_skills`` (or anything with its attributes)."""
        return cls(
            id=f"{row.skill_id}:{row.user_id}",
            skill_id=row.skill_id,
            user_id=row.user_id,
            value=int(round(row.value)),
            exact_value=row.value,
            created=row.created_at,
            modified=row.updated_at,
        )


@dataclass(frozen=True, slots=True, eq=False)
class Worker(Record):
    """A worker of an app (a person who labels)."""

    id: str
    external_id: str | None
    name: str | None
    created: datetime

    @classmethod
    def from_row(cls, row: Any) -> Worker:
        """From a row of ``crowd_workers`` (or anything with its attributes)."""
        return cls(id=row.id, external_id=row.external_id, name=row.name, created=row.created_at)


@dataclass(frozen=True, slots=True, eq=False)
class NewWorker(Worker):
    """A worker just registered, with its token: shown this once (only its hash is kept)."""

    token: str

    @classmethod
    def of(cls, worker: Worker, token: str) -> NewWorker:
        return cls(
            id=worker.id,
            external_id=worker.external_id,
            name=worker.name,
            created=worker.created,
            token=token,
        )


@dataclass(frozen=True, slots=True, eq=False)
class AggregatedResult(Record):
    """One task's aggregated answer and its confidence."""

    pool_id: str
    task_id: str
    confidence: float
    output_values: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> AggregatedResult:
        """From a row of ``crowd_aggregated`` (or anything with its attributes)."""
        return cls(
            pool_id=row.pool_id,
            task_id=row.task_id,
            confidence=row.confidence,
            output_values=row.output_values,
        )
