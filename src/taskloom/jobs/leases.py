"""The worker side of the engine: claim a job under a lease, keep the lease alive, report,
finish; and the reaper that recovers the jobs of workers that stopped heartbeating."""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from taskloom.jobs.notifier import Notifier
from taskloom.jobs.records import Job
from taskloom.jobs.states import JobStatus
from taskloom.jobs.transitions import Transitions
from taskloom.store.engine import Store
from taskloom.store.tables import jobs
from taskloom.store.types import utcnow

S = JobStatus
WORKER_LOST = "WORKER_LOST"


class WorkerSide(Transitions):
    """What worker processes call; every write is guarded by the worker's lease."""

    def __init__(
        self, store: Store, notifier: Notifier | None = None, *, lease_seconds: float = 30.0
    ) -> None:
        super().__init__(store, notifier)
        self.lease_seconds = lease_seconds

    def claim(self, worker_id: str, kinds: builtins.list[str] | None = None) -> Job | None:
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
        return Job.from_row(row)

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
