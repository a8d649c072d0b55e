"""The durable job engine: the API side (submit, get, list, cancel, queue, delete, events) over
the worker side (:mod:`taskloom.jobs.leases`) and the guarded state changes both go through
(:mod:`taskloom.jobs.transitions`). It hands out :class:`~taskloom.jobs.records.Job` records.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Subquery, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from taskloom.errors import Invalid, InvalidTransition, NotFound
from taskloom.jobs.leases import WORKER_LOST, WorkerSide
from taskloom.jobs.notifier import Notifier
from taskloom.jobs.records import Job, JobEvent, JobPage
from taskloom.jobs.registry import Registry
from taskloom.jobs.states import ACTIVE, TERMINAL, JobStatus
from taskloom.scope import Scope
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.tables import job_events, jobs
from taskloom.store.types import utcnow

__all__ = ["WORKER_LOST", "Job", "JobEngine", "JobEvent", "JobPage", "public"]

S = JobStatus
_INSERT_JOB = insert(jobs)
# a job listing resumes after (created at, id), newest first
JOB_CURSOR = CursorFormat("j", datetime, str)


def public(row: Any) -> Job:
    """The record of a row of the ``jobs`` table."""
    return Job.from_row(row)


class JobEngine(WorkerSide):
    def __init__(
        self,
        store: Store,
        registry: Registry,
        notifier: Notifier | None = None,
        *,
        lease_seconds: float = 30.0,
        default_max_attempts: int = 3,
    ) -> None:
        super().__init__(store, notifier, lease_seconds=lease_seconds)
        self.registry = registry
        self.default_max_attempts = default_max_attempts

    def submit(
        self,
        scope: Scope,
        kind: Any,
        params: Any = None,
        *,
        dataset: str | None = None,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        queue: bool = True,
        parent_id: str | None = None,
    ) -> tuple[Job, bool]:
        """Accept a job. Returns (job, created); an idempotency key seen before returns the
        first job and ``created=False``."""
        spec = self.registry.get(kind)
        validated = spec.validate(params)
        if spec.needs_dataset and dataset is None:
            raise Invalid(
                f"{spec.name} runs on a dataset", code="dataset_required", field="dataset"
            )
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 255
        ):
            raise Invalid(
                "1 to 255 characters", code="invalid_idempotency_key", field="idempotency_key"
            )
        attempts = self.default_max_attempts if max_attempts is None else max_attempts
        if not isinstance(attempts, int) or not 1 <= attempts <= 100:
            raise Invalid(
                "max_attempts is 1 to 100", code="invalid_max_attempts", field="max_attempts"
            )
        now = utcnow()
        status = S.PENDING if queue else S.REGISTERED
        try:
            with self.store.write() as conn:
                if idempotency_key is not None:
                    row = conn.execute(
                        select(jobs).where(
                            jobs.c.app_id == scope.app_id, jobs.c.idempotency_key == idempotency_key
                        )
                    ).first()
                    if row is not None:
                        return public(row), False
                ds = lookup(conn, scope, dataset) if dataset is not None else None
                if ds is not None and spec.check is not None:
                    spec.check(validated, ds.fields)
                if parent_id is not None:
                    self._get(conn, scope, parent_id, field="parent_id")
                job_id = uuid.uuid4().hex
                values: dict[str, Any] = {
                    "id": job_id,
                    "app_id": scope.app_id,
                    "dataset_id": ds.id if ds is not None else None,
                    "dataset_name": ds.name if ds is not None else None,
                    "kind": spec.name,
                    "params": validated.model_dump(mode="json"),
                    "status": status.value,
                    "progress": 0.0,
                    "message": None,
                    "result": None,
                    "error": None,
                    "attempts": 0,
                    "max_attempts": attempts,
                    "idempotency_key": idempotency_key,
                    "cancel_requested": False,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "run_after": now,
                    "parent_id": parent_id,
                    "created_at": now,
                    "started_at": None,
                    "finished_at": None,
                    "updated_at": now,
                }
                # a plain parameter dict: the compiled INSERT is cached, nothing is rebuilt
                conn.execute(_INSERT_JOB, values)
                self._event(
                    conn,
                    job_id,
                    "transition",
                    status=status.value,
                    message="submitted",
                    at=now,
                )
        except IntegrityError:
            # a concurrent request with the same idempotency key won the race
            if idempotency_key is None:
                raise
            found = self._by_key(scope, idempotency_key)
            if found is None:
                raise
            return found, False
        self._after_commit(jobs_ready=queue)
        return Job.from_values(values), True

    def _by_key(self, scope: Scope, key: str) -> Job | None:
        with self.store.read() as conn:
            row = conn.execute(
                select(jobs).where(jobs.c.app_id == scope.app_id, jobs.c.idempotency_key == key)
            ).first()
        return public(row) if row is not None else None

    @staticmethod
    def _get(conn: Connection, scope: Scope, job_id: str, field: str = "job_id") -> Any:
        row = conn.execute(
            select(jobs).where(jobs.c.id == job_id, jobs.c.app_id == scope.app_id)
        ).first()
        if row is None:
            raise NotFound(f"job {job_id!r} not found", code="job_not_found", field=field)
        return row

    def get(self, scope: Scope, job_id: str) -> Job:
        with self.store.read() as conn:
            return public(self._get(conn, scope, job_id))

    def list(
        self,
        scope: Scope,
        *,
        dataset: str | None = None,
        status: builtins.list[str] | None = None,
        kind: str | None = None,
        active_only: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Newest first, paged with an opaque cursor."""
        check_limit(limit)
        q = select(jobs).where(jobs.c.app_id == scope.app_id)
        if dataset is not None:
            q = q.where(jobs.c.dataset_name == dataset)
        if status:
            bad = [s for s in status if s not in {x.value for x in JobStatus}]
            if bad:
                raise Invalid(f"unknown status {bad[0]!r}", code="invalid_status", field="status")
            q = q.where(jobs.c.status.in_(status))
        if active_only:
            q = q.where(jobs.c.status.in_([s.value for s in ACTIVE]))
        if kind is not None:
            q = q.where(jobs.c.kind == kind)
        after = JOB_CURSOR.decode(cursor)
        if after is not None:
            at, last_id = after
            q = q.where(
                or_(jobs.c.created_at < at, and_(jobs.c.created_at == at, jobs.c.id < last_id))
            )
        q = q.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        shown, nxt = page(rows, limit, JOB_CURSOR, lambda r: (r.created_at, r.id))
        return JobPage([Job.from_row(r) for r in shown], nxt)

    def find(self, scope: Scope, ref: str, kinds: Collection[str] | None = None) -> Job | None:
        """A job of this app by its id or by the idempotency key it was submitted with."""
        q = select(jobs).where(
            jobs.c.app_id == scope.app_id, or_(jobs.c.id == ref, jobs.c.idempotency_key == ref)
        )
        if kinds is not None:
            q = q.where(jobs.c.kind.in_(list(kinds)))
        with self.store.read() as conn:
            row = conn.execute(q.order_by(jobs.c.created_at)).first()
        return public(row) if row is not None else None

    @staticmethod
    def owned(scope: Scope, kinds: Collection[str] | None = None) -> Subquery:
        """This app's jobs (of ``kinds``) as a subquery for reports to join, filter and sort
        (columns as in the ``jobs`` table; :func:`public` renders a row). Only the engine
        names the table; other areas read jobs through this or the methods above."""
        q = select(jobs).where(jobs.c.app_id == scope.app_id)
        if kinds is not None:
            q = q.where(jobs.c.kind.in_(list(kinds)))
        return q.subquery("owned_jobs")

    @staticmethod
    def delete_registered(conn: Connection, scope: Scope, job_id: str) -> str | None:
        """Inside the caller's transaction, delete a job that was never queued; None when it
        is gone, else the status that kept it (the caller refuses and rolls back)."""
        gone = conn.execute(
            delete(jobs).where(
                jobs.c.id == job_id,
                jobs.c.app_id == scope.app_id,
                jobs.c.status == S.REGISTERED.value,
            )
        ).rowcount
        if gone:
            return None
        status = conn.execute(
            select(jobs.c.status).where(jobs.c.id == job_id, jobs.c.app_id == scope.app_id)
        ).scalar()
        return str(status) if status is not None else ""

    def cancel(self, scope: Scope, job_id: str) -> Job:
        """Registered and pending jobs are cancelled at once; a running one is asked to stop."""
        now = utcnow()
        with self.store.write() as conn:
            row = self._get(conn, scope, job_id)
            if row.status in TERMINAL:
                raise InvalidTransition(
                    f"the job is already {row.status}",
                    field="status",
                    details={"status": row.status},
                )
            done = self._transition(
                conn,
                job_id,
                S.CANCELLED,
                allowed=frozenset({S.REGISTERED, S.PENDING}),
                values={"finished_at": now, "message": "cancelled"},
                message="cancelled before it ran",
                now=now,
            )
            if not done:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == S.IN_PROGRESS.value)
                    .values(cancel_requested=True, updated_at=now)
                )
                self._event(conn, job_id, "log", message="cancel requested", at=now)
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
        self._after_commit()
        return public(row)

    def enqueue(self, scope: Scope, job_id: str) -> Job:
        """Queue a registered job."""
        with self.store.write() as conn:
            row = self._get(conn, scope, job_id)
            if not self._transition(
                conn, job_id, S.PENDING, allowed=frozenset({S.REGISTERED}), message="queued"
            ):
                raise InvalidTransition(
                    f"only a registered job can be started; this one is {row.status}",
                    field="status",
                )
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
        self._after_commit(jobs_ready=True)
        return public(row)

    def delete(self, scope: Scope, job_id: str) -> None:
        """Delete a registered or finished job; queued and running jobs must be cancelled first."""
        with self.store.write() as conn:
            row = self._get(conn, scope, job_id)
            res = conn.execute(
                delete(jobs).where(
                    jobs.c.id == job_id,
                    jobs.c.status.in_([S.REGISTERED.value, *(s.value for s in TERMINAL)]),
                )
            )
            if res.rowcount == 0:
                raise InvalidTransition(
                    f"a {row.status} job cannot be deleted; cancel it first", field="status"
                )

    def events(
        self, scope: Scope, job_id: str, *, after: int = 0, limit: int = 1000
    ) -> builtins.list[JobEvent]:
        with self.store.read() as conn:
            self._get(conn, scope, job_id)
            rows = conn.execute(
                select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.id > after)
                .order_by(job_events.c.id)
                .limit(limit)
            ).all()
        return [JobEvent.from_row(r) for r in rows]
