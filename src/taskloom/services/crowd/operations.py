"""Asynchronous task batches: Toloka's ``TASK.BATCH_CREATE`` operation as a taskloom job.

``submit_task_batch`` counts the batch against the requester's rate limit, accepts a job
of kind ``crowd_batch_create`` (idempotency key = ``operation_id``), stores the items in
``crowd_operation_items`` and only then queues the job, so a worker that dies mid-way
leaves a job the reaper re-queues with its items still there. The job writes its tasks in
chunks, each in one transaction with the log entries of its items; a retried attempt skips
the items already logged, so no task is created twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, func, or_, select

from taskloom.errors import Invalid, JobFailed, NotFound
from taskloom.services.auth import Scope
from taskloom.services.crowd.common import Base
from taskloom.services.crowd.tasks import check_items
from taskloom.store.crowd_tables import crowd_operation_items
from taskloom.store.tables import jobs
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext

BATCH_KIND = "crowd_batch_create"
AGGREGATE_KIND = "crowd_aggregate"
CROWD_KINDS = (BATCH_KIND, AGGREGATE_KIND)
CHUNK = 5_000


def details_of(job: dict[str, Any]) -> dict[str, Any] | None:
    """The counts of a batch operation, from its result or (when it failed) its error."""
    result = job.get("result") or {}
    if "details" in result:
        return result["details"]
    error = job.get("error") or {}
    return (error.get("details") or {}).get("details")


class OperationsMixin(Base):
    # -- the API side ------------------------------------------------------------------------

    def _find_job(self, scope: Scope, op_id: Any) -> dict[str, Any]:
        """A crowd job of this app by its id or by the operation_id it was submitted with."""
        if not isinstance(op_id, str) or not op_id:
            raise NotFound("operation not found", code="operation_not_found", field="operation_id")
        with self.store.read() as conn:
            row = conn.execute(
                select(jobs.c.id).where(
                    jobs.c.app_id == scope.app_id,
                    or_(jobs.c.id == op_id, jobs.c.idempotency_key == op_id),
                    jobs.c.kind.in_(CROWD_KINDS),
                )
            ).first()
        if row is None:
            raise NotFound(
                f"operation {op_id!r} not found", code="operation_not_found", field="operation_id"
            )
        return self.jobs.get(scope, row.id)

    def get_operation(self, scope: Scope, op_id: str) -> dict[str, Any]:
        """The job, plus ``details`` (the counts of a batch) once it has them."""
        job = self._find_job(scope, op_id)
        return {**job, "details": details_of(job)}

    def submit_task_batch(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
        operation_id: str | None = None,
    ) -> dict[str, Any]:
        """Accept a batch to create in the background; the operation (job dict) answers.
        The same ``operation_id`` again creates nothing and answers the first operation."""
        items = check_items(items)
        if operation_id is not None:
            if not isinstance(operation_id, str) or not 1 <= len(operation_id) <= 255:
                raise Invalid("1 to 255 characters", field="operation_id")
            try:
                return self._resume(scope, self._find_job(scope, operation_id), items)
            except NotFound:
                pass
        try:
            staged = [(i, orjson.dumps(item).decode()) for i, item in enumerate(items)]
        except TypeError as exc:
            raise Invalid("the items are not JSON", field="items") from exc
        now = utcnow()
        with self.store.write() as conn:
            self.consume_rate(conn, scope, len(items), now)  # type: ignore[attr-defined]
        params = {
            "requester_id": scope.user_id,
            "allow_defaults": bool(allow_defaults),
            "skip_invalid_items": bool(skip_invalid_items),
            "open_pool": bool(open_pool),
            "total_count": len(items),
            "operation_id": operation_id,
        }
        job, created = self.jobs.submit(
            scope, BATCH_KIND, params, idempotency_key=operation_id, queue=False
        )
        if not created:  # a concurrent request with the same operation_id won
            return self._resume(scope, job, items)
        self._stage(job["id"], staged)
        job = self.jobs.enqueue(scope, job["id"])
        return {**job, "details": None}

    def _stage(self, job_id: str, staged: list[tuple[int, str]]) -> None:
        ph, jp = self._ph, self._json_ph
        with self.store.write() as conn:
            have = conn.execute(
                select(func.count()).where(crowd_operation_items.c.job_id == job_id)
            ).scalar_one()
            if have:
                return
            conn.exec_driver_sql(
                f"INSERT INTO crowd_operation_items (job_id, idx, input) VALUES ({ph}, {ph}, {jp})",
                [(job_id, i, raw) for i, raw in staged],
            )

    def _resume(self, scope: Scope, job: dict[str, Any], items: list[Any]) -> dict[str, Any]:
        """A repeated operation_id: the first operation. One whose request died before its
        items were stored takes this request's items and is queued now."""
        if job["status"] == "registered":
            self._stage(job["id"], [(i, orjson.dumps(x).decode()) for i, x in enumerate(items)])
            job = self.jobs.enqueue(scope, job["id"])
        return {**job, "details": details_of(job)}

    def operation_log(self, scope: Scope, op_id: str) -> list[dict[str, Any]]:
        """One entry per item the operation has handled: ``{type, success, input, output}``."""
        job = self._find_job(scope, op_id)
        t = crowd_operation_items
        with self.store.read() as conn:
            rows = conn.execute(
                select(t.c.input, t.c.success, t.c.output)
                .where(t.c.job_id == job["id"], t.c.success.is_not(None))
                .order_by(t.c.idx)
            ).all()
        kind = "TASK_CREATE"
        return [
            {"type": kind, "success": r.success, "input": r.input, "output": r.output or {}}
            for r in rows
        ]

    # -- the job -----------------------------------------------------------------------------

    def _log_items(self, conn: Any, job_id: str, entries: list[tuple[bool, Any, int]]) -> None:
        if not entries:
            return
        ph, jp = self._ph, self._json_ph
        conn.exec_driver_sql(
            f"UPDATE crowd_operation_items SET success = {ph}, output = {jp} "
            f"WHERE job_id = {ph} AND idx = {ph}",
            [
                (ok, None if out is None else orjson.dumps(out).decode(), job_id, idx)
                for ok, out, idx in entries
            ],
        )

    def run_batch_create(self, ctx: JobContext, params: Any) -> dict[str, Any]:
        """The body of a ``crowd_batch_create`` job."""
        scope = Scope(app_id=ctx.scope.app_id, user_id=params.requester_id)
        job_id = ctx.job_id
        t = crowd_operation_items
        with self.store.read() as conn:
            pending = conn.execute(
                select(t.c.idx, t.c.input)
                .where(t.c.job_id == job_id, t.c.success.is_(None))
                .order_by(t.c.idx)
            ).all()
            pools = self.pool_infos(conn, scope, [r.input for r in pending])  # type: ignore[attr-defined]
        ctx.progress(1.0, f"checking {len(pending)} tasks")
        now = utcnow()
        idxs = [r.idx for r in pending]
        rows, created, errors = self.prepare_tasks(  # type: ignore[attr-defined]
            scope, [r.input for r in pending], pools, params.allow_defaults, now
        )
        invalid = [(False, errs, idxs[int(pos)]) for pos, errs in errors.items()]
        if errors and not params.skip_invalid_items:
            refused = [(False, None, idxs[int(pos)]) for pos in created]
            with self.store.write() as conn:
                self._log_items(conn, job_id, invalid + refused)
            details = self._details(job_id, params.total_count)
            raise JobFailed(
                f"{details['not_valid_count']} of {details['total_count']} tasks are not "
                "valid, so none was created (skip_invalid_items is false)",
                code="validation_failed",
                details={"details": details},
            )
        with self.store.write() as conn:
            self._log_items(conn, job_id, invalid)
        positions = list(created)  # str(position in pending) of each row, in order
        used: set[str] = set()
        for start in range(0, len(rows), CHUNK):
            ctx.progress(
                1.0 + 98.0 * start / max(len(rows), 1), f"created {start} of {len(rows)} tasks"
            )
            chunk = rows[start : start + CHUNK]
            chunk_used = {r[2] for r in chunk}
            with self.store.write() as conn:
                self.recheck_pools(conn, scope, chunk_used)  # type: ignore[attr-defined]
                self.insert_task_rows(conn, chunk)  # type: ignore[attr-defined]
                self._log_items(
                    conn,
                    job_id,
                    [
                        (True, {"task_id": row[0]}, idxs[int(pos)])
                        for row, pos in zip(chunk, positions[start : start + CHUNK], strict=True)
                    ],
                )
            used |= chunk_used
        if params.open_pool and used:
            with self.store.write() as conn:
                self.open_closed_pools(conn, used)  # type: ignore[attr-defined]
        return {"details": self._details(job_id, params.total_count)}

    def _details(self, job_id: str, total: int) -> dict[str, int]:
        t = crowd_operation_items
        with self.store.read() as conn:
            success = conn.execute(
                select(func.count()).where(t.c.job_id == job_id, t.c.success.is_(True))
            ).scalar_one()
            not_valid = conn.execute(
                select(func.count()).where(
                    and_(t.c.job_id == job_id, t.c.success.is_(False), t.c.output.is_not(None))
                )
            ).scalar_one()
        return {
            "total_count": total,
            "valid_count": total - not_valid,
            "not_valid_count": not_valid,
            "success_count": success,
            "failed_count": total - success,
        }
