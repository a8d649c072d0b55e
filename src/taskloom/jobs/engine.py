"""The durable job engine: submit, claim, heartbeat, transition, reap.

Every state change is one guarded ``UPDATE … WHERE id = :id AND status IN (:allowed)``
plus one row in ``job_events``, in the same transaction. Zero rows updated means the job
was not in a state that allows the change: the caller gets ``InvalidTransition`` (API) or
``False`` (worker paths, where losing a race is normal).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import uuid
from datetime import datetime, timedelta
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Subquery, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from taskloom.errors import Invalid, InvalidTransition, NotFound
from taskloom.jobs.notifier import Notifier
from taskloom.jobs.registry import Registry
from taskloom.jobs.states import ACTIVE, TERMINAL, JobStatus, sources
from taskloom.scope import Scope
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.tables import job_events, jobs
from taskloom.store.types import utcnow

S = JobStatus
WORKER_LOST = "WORKER_LOST"
_INSERT_JOB = insert(jobs)
_INSERT_EVENT = insert(job_events)


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "app_id": row.app_id,
        "dataset": row.dataset_name,
        "kind": row.kind,
        "params": row.params,
        "status": row.status,
        "progress": row.progress,
        "message": row.message,
        "result": row.result,
        "error": row.error,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "idempotency_key": row.idempotency_key,
        "cancel_requested": row.cancel_requested,
        "parent_id": row.parent_id,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "updated_at": row.updated_at,
    }


def event_public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "job_id": row.job_id,
        "at": row.at,
        "type": row.type,
        "status": row.status,
        "progress": row.progress,
        "message": row.message,
        "data": row.data,
    }


class JobEngine:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        notifier: Notifier | None = None,
        *,
        lease_seconds: float = 30.0,
        default_max_attempts: int = 3,
    ) -> None:
        self.store = store
        self.registry = registry
        self.notifier = notifier or Notifier()
        self.lease_seconds = lease_seconds
        self.default_max_attempts = default_max_attempts

    # -- the one way states change -----------------------------------------------------------

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

    # -- API side --------------------------------------------------------------------------

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
    ) -> tuple[dict[str, Any], bool]:
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
        return public(_Row(values)), True

    def _by_key(self, scope: Scope, key: str) -> dict[str, Any] | None:
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

    def get(self, scope: Scope, job_id: str) -> dict[str, Any]:
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
    ) -> dict[str, Any]:
        """Newest first, paged with an opaque cursor."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit is 1 to 1000", code="invalid_limit", field="limit")
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
        if cursor:
            at, last_id = _decode_job_cursor(cursor)
            q = q.where(
                or_(jobs.c.created_at < at, and_(jobs.c.created_at == at, jobs.c.id < last_id))
            )
        q = q.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
        with self.store.read() as conn:
            rows = conn.execute(q).all()
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = _encode_job_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return {"data": [public(r) for r in rows], "cursor": nxt}

    def find(
        self, scope: Scope, ref: str, kinds: Collection[str] | None = None
    ) -> dict[str, Any] | None:
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

    def cancel(self, scope: Scope, job_id: str) -> dict[str, Any]:
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

    def enqueue(self, scope: Scope, job_id: str) -> dict[str, Any]:
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
    ) -> builtins.list[dict[str, Any]]:
        with self.store.read() as conn:
            self._get(conn, scope, job_id)
            rows = conn.execute(
                select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.id > after)
                .order_by(job_events.c.id)
                .limit(limit)
            ).all()
        return [event_public(r) for r in rows]

    # -- worker side -----------------------------------------------------------------------

    def claim(
        self, worker_id: str, kinds: builtins.list[str] | None = None
    ) -> dict[str, Any] | None:
        """Lease the next due pending job, or None."""
        now = utcnow()
        pick = select(jobs.c.id).where(jobs.c.status == S.PENDING.value, jobs.c.run_after <= now)
        if kinds is not None:
            pick = pick.where(jobs.c.kind.in_(kinds))
        pick = pick.order_by(jobs.c.run_after, jobs.c.created_at).limit(1)
        if self.store.is_sqlite:
            # Look before taking SQLite's one write lock: idle workers polling for jobs
            # must not queue behind (and delay) the requests that write.
            with self.store.read() as conn:
                if conn.execute(pick).first() is None:
                    return None
        else:
            pick = pick.with_for_update(skip_locked=True)
        with self.store.write() as conn:
            row = conn.execute(
                update(jobs)
                .where(jobs.c.id == pick.scalar_subquery(), jobs.c.status == S.PENDING.value)
                .values(
                    status=S.IN_PROGRESS.value,
                    attempts=jobs.c.attempts + 1,
                    lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                    started_at=now,
                    updated_at=now,
                )
                .returning(*jobs.c)
            ).first()
            if row is None:
                return None
            self._event(
                conn,
                row.id,
                "transition",
                status=S.IN_PROGRESS.value,
                message=f"claimed by {worker_id} (attempt {row.attempts})",
                data={"worker": worker_id, "attempt": row.attempts},
                at=now,
            )
        self._after_commit()
        return public(row)

    def heartbeat(self, job_id: str, worker_id: str) -> tuple[bool, bool]:
        """Extend the lease. Returns (still ours, cancel requested)."""
        now = utcnow()
        with self.store.write() as conn:
            row = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status == S.IN_PROGRESS.value,
                    jobs.c.lease_owner == worker_id,
                )
                .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
                .returning(jobs.c.cancel_requested)
            ).first()
        if row is None:
            return False, False
        return True, bool(row.cancel_requested)

    def cancel_requested(self, job_id: str, worker_id: str) -> tuple[bool, bool]:
        """(still ours, cancel requested), read without writing."""
        with self.store.read() as conn:
            row = conn.execute(
                select(jobs.c.status, jobs.c.lease_owner, jobs.c.cancel_requested).where(
                    jobs.c.id == job_id
                )
            ).first()
        if row is None or row.status != S.IN_PROGRESS.value or row.lease_owner != worker_id:
            return False, False
        return True, bool(row.cancel_requested)

    def progress(self, job_id: str, worker_id: str, pct: float, message: str | None) -> bool:
        now = utcnow()
        pct = max(0.0, min(100.0, float(pct)))
        values: dict[str, Any] = {"progress": pct, "updated_at": now}
        if message is not None:
            values["message"] = message
        with self.store.write() as conn:
            res = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status == S.IN_PROGRESS.value,
                    jobs.c.lease_owner == worker_id,
                )
                .values(**values)
            )
            if res.rowcount == 0:
                return False
            self._event(conn, job_id, "progress", progress=pct, message=message, at=now)
        self._after_commit()
        return True

    def log(self, job_id: str, message: str, data: dict[str, Any] | None = None) -> None:
        with self.store.write() as conn:
            self._event(conn, job_id, "log", message=message, data=data)
        self._after_commit()

    def _owned(self, worker_id: str) -> builtins.list[Any]:
        return [jobs.c.lease_owner == worker_id]

    def complete(self, job_id: str, worker_id: str, result: dict[str, Any] | None) -> bool:
        now = utcnow()
        with self.store.write() as conn:
            ok = self._transition(
                conn,
                job_id,
                S.COMPLETED,
                allowed=frozenset({S.IN_PROGRESS}),
                where=self._owned(worker_id),
                values={
                    "result": result,
                    "progress": 100.0,
                    "finished_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "message": "completed",
                },
                message="completed",
                now=now,
            )
        self._after_commit()
        return ok

    def fail(
        self,
        job_id: str,
        worker_id: str,
        error: dict[str, Any],
        *,
        retry: bool,
        attempts: int,
        max_attempts: int,
    ) -> str | None:
        """Fail an attempt: back to pending while attempts are left (and ``retry``)."""
        now = utcnow()
        with self.store.write() as conn:
            if retry and attempts < max_attempts:
                delay = min(60.0, 0.5 * 2 ** (attempts - 1))
                ok = self._transition(
                    conn,
                    job_id,
                    S.PENDING,
                    allowed=frozenset({S.IN_PROGRESS}),
                    where=self._owned(worker_id),
                    values={
                        "run_after": now + timedelta(seconds=delay),
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "error": error,
                        "message": f"retrying in {delay:.1f}s: {error.get('message')}",
                    },
                    message=f"attempt {attempts} failed, retrying",
                    data={"error": error},
                    now=now,
                )
                status = S.PENDING.value if ok else None
            else:
                ok = self._transition(
                    conn,
                    job_id,
                    S.FAILED,
                    allowed=frozenset({S.IN_PROGRESS}),
                    where=self._owned(worker_id),
                    values={
                        "error": error,
                        "finished_at": now,
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "message": error.get("message"),
                    },
                    message="failed",
                    data={"error": error},
                    now=now,
                )
                status = S.FAILED.value if ok else None
        self._after_commit(jobs_ready=status == S.PENDING.value)
        return status

    def mark_cancelled(self, job_id: str, worker_id: str) -> bool:
        now = utcnow()
        with self.store.write() as conn:
            ok = self._transition(
                conn,
                job_id,
                S.CANCELLED,
                allowed=frozenset({S.IN_PROGRESS}),
                where=self._owned(worker_id),
                values={
                    "finished_at": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "message": "cancelled",
                },
                message="cancelled while running",
                now=now,
            )
        self._after_commit()
        return ok

    def release(self, job_id: str, worker_id: str) -> bool:
        """Give a running job back to the queue (this worker is shutting down); the
        interrupted attempt does not count."""
        now = utcnow()
        with self.store.write() as conn:
            ok = self._transition(
                conn,
                job_id,
                S.PENDING,
                allowed=frozenset({S.IN_PROGRESS}),
                where=self._owned(worker_id),
                values={
                    "attempts": jobs.c.attempts - 1,
                    "run_after": now,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "message": "worker shut down; re-queued",
                },
                message="worker shut down; re-queued",
                data={"worker": worker_id},
                now=now,
            )
        self._after_commit(jobs_ready=ok)
        return ok

    def reap(self) -> int:
        """Recover jobs whose worker stopped heartbeating: re-queue or fail them."""
        now = utcnow()
        expired = [jobs.c.lease_expires_at < now]
        with self.store.read() as conn:
            rows = conn.execute(
                select(
                    jobs.c.id,
                    jobs.c.attempts,
                    jobs.c.max_attempts,
                    jobs.c.cancel_requested,
                    jobs.c.lease_owner,
                )
                .where(jobs.c.status == S.IN_PROGRESS.value, *expired)
                .limit(500)
            ).all()
        n = 0
        for r in rows:
            with self.store.write() as conn:
                note = {"worker": r.lease_owner}
                clear = {"lease_owner": None, "lease_expires_at": None}
                if r.cancel_requested:
                    ok = self._transition(
                        conn,
                        r.id,
                        S.CANCELLED,
                        allowed=frozenset({S.IN_PROGRESS}),
                        where=expired,
                        values={**clear, "finished_at": now, "message": "cancelled"},
                        message="worker lost after cancel was requested",
                        data=note,
                        now=now,
                    )
                elif r.attempts < r.max_attempts:
                    ok = self._transition(
                        conn,
                        r.id,
                        S.PENDING,
                        allowed=frozenset({S.IN_PROGRESS}),
                        where=expired,
                        values={**clear, "run_after": now, "message": "worker lost; re-queued"},
                        message="lease expired: worker lost, re-queued",
                        data=note,
                        now=now,
                    )
                else:
                    err = {"code": WORKER_LOST, "message": "the worker running this job was lost"}
                    ok = self._transition(
                        conn,
                        r.id,
                        S.FAILED,
                        allowed=frozenset({S.IN_PROGRESS}),
                        where=expired,
                        values={
                            **clear,
                            "finished_at": now,
                            "error": err,
                            "message": err["message"],
                        },
                        message="lease expired: worker lost, no attempts left",
                        data=note,
                        now=now,
                    )
                n += int(ok)
        if n:
            self._after_commit(jobs_ready=n)
        return n


def _encode_job_cursor(at: datetime, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"j:{at.isoformat()}|{job_id}".encode()).decode().rstrip("=")


def _decode_job_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, rest = raw.partition(":")
        at, _, job_id = rest.partition("|")
        if tag != "j" or not job_id:
            raise ValueError(raw)
        return datetime.fromisoformat(at), job_id
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise Invalid("invalid cursor", code="invalid_cursor", field="cursor") from exc
