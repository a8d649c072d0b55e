"""The one way a job's state changes, shared by the API side and the worker side.

Every state change is one guarded ``UPDATE … WHERE id = :id AND status IN (:allowed)``
plus one row in ``job_events``, in the same transaction. Zero rows updated means the job
was not in a state that allows the change: the caller gets ``InvalidTransition`` (API) or
``False`` (worker paths, where losing a race is normal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, update

from taskloom.jobs.notifier import Notifier
from taskloom.jobs.states import JobStatus, sources
from taskloom.store.engine import Store
from taskloom.store.tables import job_events, jobs
from taskloom.store.types import utcnow

_INSERT_EVENT = insert(job_events)


class Transitions:
    """The store and the notifier, and the guarded writes every engine method goes through."""

    def __init__(self, store: Store, notifier: Notifier | None = None) -> None:
        self.store = store
        self.notifier = notifier or Notifier()

    def _transition(
        self,
        conn: Connection,
        job_id: str,
        to: JobStatus,
        *,
        allowed: frozenset[JobStatus] | None = None,
        where: list[Any] | None = None,
        values: dict[str, Any] | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> bool:
        now = now or utcnow()
        frm = sources(to) if allowed is None else (allowed & sources(to))
        vals = {"status": to.value, "updated_at": now, **(values or {})}
        res = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_([s.value for s in frm]), *(where or []))
            .values(**vals)
        )
        if res.rowcount == 0:
            return False
        self._event(conn, job_id, "transition", status=to.value, message=message, data=data, at=now)
        return True

    def _event(
        self,
        conn: Connection,
        job_id: str,
        type_: str,
        *,
        status: str | None = None,
        progress: float | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        conn.execute(
            _INSERT_EVENT,
            {
                "job_id": job_id,
                "at": at or utcnow(),
                "type": type_,
                "status": status,
                "progress": progress,
                "message": message,
                "data": data,
            },
        )

    def _after_commit(self, jobs_ready: bool | int = False) -> None:
        self.notifier.events_written()
        if jobs_ready:
            self.notifier.jobs_available(int(jobs_ready))
