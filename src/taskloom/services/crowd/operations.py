"""Asynchronous batches: Toloka's ``TASK.BATCH_CREATE`` and ``TASK_SUITE.BATCH_CREATE``
operations as taskloom jobs (kinds ``crowd_batch_create`` and ``crowd_suite_batch_create``).

``Operations.submit_tasks`` / ``submit_suites`` count the batch against the requester's rate
limit (tasks sent; for suites, the tasks inside them), accept a job (idempotency key =
``operation_id``), store the items in ``crowd_operation_items`` and only then queue the job,
so a worker that dies mid-way leaves a job the reaper re-queues with its items still there.
The job writes its objects in chunks, each in one transaction with the log entries of its
items; a retried attempt skips the items already logged, so nothing is created twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, func, select

from taskloom.errors import Conflict, Invalid, JobFailed, NotFound
from taskloom.scope import Scope
from taskloom.services.crowd.common import placeholders
from taskloom.services.crowd.tasks import check_items
from taskloom.services.crowd.work_records import Operation, OperationLogEntry
from taskloom.store.crowd_tables import crowd_operation_items
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.jobs.engine import JobEngine
    from taskloom.jobs.progress import Progress
    from taskloom.jobs.records import Job
    from taskloom.services.crowd.ratelimit import RateLimit
    from taskloom.services.crowd.suites import Suites
    from taskloom.services.crowd.tasks import Tasks
    from taskloom.store.engine import Store

BATCH_KIND = "crowd_batch_create"
SUITE_BATCH_KIND = "crowd_suite_batch_create"
AGGREGATE_KIND = "crowd_aggregate"
BATCH_KINDS = (BATCH_KIND, SUITE_BATCH_KIND)
CROWD_KINDS = (BATCH_KIND, SUITE_BATCH_KIND, AGGREGATE_KIND)
CHUNK = 5_000  # tasks per write transaction
# what a batch job creates: its log's entry type and the key of the created object's id
_CREATES = {
    BATCH_KIND: ("TASK_CREATE", "task_id"),
    SUITE_BATCH_KIND: ("TASK_SUITE_CREATE", "task_suite_id"),
}


def details_of(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The counts of a batch operation, from its result or (when it failed) its error."""
    result = job.get("result") or {}
    if "details" in result:
        return result["details"]
    error = job.get("error") or {}
    return (error.get("details") or {}).get("details")


@dataclass(frozen=True)
class _Unit:
    """One valid item of a batch: its position among the pending items, the id of what it
    creates, the suite row (None for a task) and its task rows."""

    position: str
    object_id: str
    suite: dict[str, Any] | None
    rows: list[tuple[Any, ...]]


def _chunks(units: list[_Unit]) -> Iterator[list[_Unit]]:
    """Consecutive units of about ``CHUNK`` tasks each (a suite is never split)."""
    chunk: list[_Unit] = []
    size = 0
    for u in units:
        if chunk and size + len(u.rows) > CHUNK:
            yield chunk
            chunk, size = [], 0
        chunk.append(u)
        size += len(u.rows)
    if chunk:
        yield chunk


class Operations:
    """Batch operations: accepting them (jobs), running them, their log."""

    def __init__(
        self, store: Store, jobs: JobEngine, tasks: Tasks, suites: Suites, rates: RateLimit
    ) -> None:
        self.store = store
        self.jobs = jobs
        self.tasks = tasks
        self.suites = suites
        self.rates = rates
        self._ph, self._json_ph = placeholders(store)

    # -- the API side ------------------------------------------------------------------------

    def _find_job(self, scope: Scope, op_id: Any) -> Job:
        """A crowd job of this app by its id or by the operation_id it was submitted with."""
        if not isinstance(op_id, str) or not op_id:
            raise NotFound("operation not found", code="operation_not_found", field="operation_id")
        job = self.jobs.find(scope, op_id, CROWD_KINDS)
        if job is None:
            raise NotFound(
                f"operation {op_id!r} not found", code="operation_not_found", field="operation_id"
            )
        return job

    def get(self, scope: Scope, op_id: str) -> Operation:
        """The job, plus ``details`` (the counts of a batch) once it has them."""
        job = self._find_job(scope, op_id)
        return Operation.of(job, details_of(job))

    def submit_tasks(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
        operation_id: str | None = None,
    ) -> Operation:
        """Accept a batch to create in the background; the operation (its job) answers.
        The same ``operation_id`` again creates nothing and answers the first operation."""
        items = check_items(items)
        return self._submit_batch(
            scope,
            BATCH_KIND,
            items,
            len(items),
            allow_defaults=allow_defaults,
            skip_invalid_items=skip_invalid_items,
            open_pool=open_pool,
            operation_id=operation_id,
        )

    def submit_suites(
        self,
        scope: Scope,
        items: Any,
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
        operation_id: str | None = None,
    ) -> Operation:
        """``submit_tasks`` for task suites (a job of kind ``crowd_suite_batch_create``);
        the rate limit counts the tasks inside the suites (at least one per item)."""
        items = check_items(items, "task suites")
        tasks = sum(
            max(1, len(i["tasks"]))
            if isinstance(i, dict) and isinstance(i.get("tasks"), list)
            else 1
            for i in items
        )
        return self._submit_batch(
            scope,
            SUITE_BATCH_KIND,
            items,
            tasks,
            allow_defaults=allow_defaults,
            skip_invalid_items=skip_invalid_items,
            open_pool=open_pool,
            operation_id=operation_id,
        )

    def _submit_batch(
        self,
        scope: Scope,
        kind: str,
        items: list[Any],
        n_tasks: int,
        *,
        allow_defaults: bool,
        skip_invalid_items: bool,
        open_pool: bool,
        operation_id: str | None,
    ) -> Operation:
        if operation_id is not None:
            if not isinstance(operation_id, str) or not 1 <= len(operation_id) <= 255:
                raise Invalid("1 to 255 characters", field="operation_id")
            try:
                return self._resume(scope, self._find_job(scope, operation_id), kind, items)
            except NotFound:
                pass
        try:
            staged = [(i, orjson.dumps(item).decode()) for i, item in enumerate(items)]
        except TypeError as exc:
            raise Invalid("the items are not JSON", field="items") from exc
        now = utcnow()
        with self.store.write() as conn:
            self.rates.consume(conn, scope, n_tasks, now)
        params = {
            "requester_id": scope.user_id,
            "allow_defaults": bool(allow_defaults),
            "skip_invalid_items": bool(skip_invalid_items),
            "open_pool": bool(open_pool),
            "total_count": len(items),
            "operation_id": operation_id,
        }
        job, created = self.jobs.submit(
            scope, kind, params, idempotency_key=operation_id, queue=False
        )
        if not created:  # a concurrent request with the same operation_id won
            return self._resume(scope, job, kind, items)
        self._stage(job["id"], staged)
        job = self.jobs.enqueue(scope, job["id"])
        return Operation.of(job, None)

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

    def _resume(self, scope: Scope, job: Job, kind: str, items: list[Any]) -> Operation:
        """A repeated operation_id: the first operation. One whose request died before its
        items were stored takes this request's items and is queued now. An operation_id
        already used by another kind of operation is a conflict."""
        if job["kind"] != kind:
            raise Conflict(
                f"operation_id {job.get('idempotency_key')!r} names an operation of another "
                f"kind ({job['kind']})",
                code="operation_id_in_use",
                field="operation_id",
            )
        if job["status"] == "registered":
            self._stage(job["id"], [(i, orjson.dumps(x).decode()) for i, x in enumerate(items)])
            job = self.jobs.enqueue(scope, job["id"])
        return Operation.of(job, details_of(job))

    def log(self, scope: Scope, op_id: str) -> list[OperationLogEntry]:
        """One entry per item the operation has handled: ``{type, success, input, output}``."""
        job = self._find_job(scope, op_id)
        t = crowd_operation_items
        with self.store.read() as conn:
            rows = conn.execute(
                select(t.c.input, t.c.success, t.c.output)
                .where(t.c.job_id == job["id"], t.c.success.is_not(None))
                .order_by(t.c.idx)
            ).all()
        kind = _CREATES.get(job["kind"], ("TASK_CREATE", ""))[0]
        return [
            OperationLogEntry(type=kind, success=r.success, input=r.input, output=r.output or {})
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

    def run_batch_create(
        self, scope: Scope, job_id: str, progress: Progress, params: Any
    ) -> dict[str, Any]:
        """The body of the ``crowd_batch_create`` job ``job_id``."""
        return self._run_batch(scope, job_id, progress, params, BATCH_KIND)

    def run_suite_batch_create(
        self, scope: Scope, job_id: str, progress: Progress, params: Any
    ) -> dict[str, Any]:
        """The body of the ``crowd_suite_batch_create`` job ``job_id``."""
        return self._run_batch(scope, job_id, progress, params, SUITE_BATCH_KIND)

    def _prepare(
        self, scope: Scope, kind: str, items: list[Any], pools: Any, allow_defaults: bool
    ) -> tuple[list[_Unit], dict[str, Any]]:
        """``(units, errors by position)``: a unit is one valid item ready to insert."""
        now = utcnow()
        if kind == BATCH_KIND:
            rows, created, errors = self.tasks.prepare(scope, items, pools, allow_defaults, now)
            units = [
                _Unit(pos, row[0], None, [row])
                for row, pos in zip(rows, created, strict=True)  # created: positions, in order
            ]
            return units, errors
        ready, errors = self.suites.prepare(scope, items, pools, allow_defaults, now)
        return [_Unit(pos, suite["id"], suite, rows) for pos, suite, rows in ready], errors

    def _run_batch(
        self, scope: Scope, job_id: str, progress: Progress, params: Any, kind: str
    ) -> dict[str, Any]:
        scope = Scope(app_id=scope.app_id, user_id=params.requester_id)
        t = crowd_operation_items
        with self.store.read() as conn:
            pending = conn.execute(
                select(t.c.idx, t.c.input)
                .where(t.c.job_id == job_id, t.c.success.is_(None))
                .order_by(t.c.idx)
            ).all()
            pools = self.tasks.pool_infos(conn, scope, [r.input for r in pending])
        what = "task suites" if kind == SUITE_BATCH_KIND else "tasks"
        id_key = _CREATES[kind][1]
        progress.progress(1.0, f"checking {len(pending)} {what}")
        idxs = [r.idx for r in pending]
        units, errors = self._prepare(
            scope, kind, [r.input for r in pending], pools, params.allow_defaults
        )
        invalid = [(False, errs, idxs[int(pos)]) for pos, errs in errors.items()]
        if errors and not params.skip_invalid_items:
            refused = [(False, None, idxs[int(u.position)]) for u in units]
            with self.store.write() as conn:
                self._log_items(conn, job_id, invalid + refused)
            details = self._details(job_id, params.total_count)
            raise JobFailed(
                f"{details['not_valid_count']} of {details['total_count']} {what} are not "
                "valid, so none was created (skip_invalid_items is false)",
                code="validation_failed",
                details={"details": details},
            )
        with self.store.write() as conn:
            self._log_items(conn, job_id, invalid)
        used: set[str] = set()
        done = 0
        for chunk in _chunks(units):
            progress.progress(
                1.0 + 98.0 * done / max(len(units), 1), f"created {done} of {len(units)} {what}"
            )
            chunk_used = {u.rows[0][2] if u.suite is None else u.suite["pool_id"] for u in chunk}
            with self.store.write() as conn:
                self.tasks.recheck_pools(conn, scope, chunk_used)
                if kind == BATCH_KIND:
                    self.tasks.insert_rows(conn, [u.rows[0] for u in chunk])
                else:
                    self.suites.insert(
                        conn,
                        [u.suite for u in chunk if u.suite is not None],
                        [row for u in chunk for row in u.rows],
                    )
                self._log_items(
                    conn,
                    job_id,
                    [(True, {id_key: u.object_id}, idxs[int(u.position)]) for u in chunk],
                )
            used |= chunk_used
            done += len(chunk)
        if params.open_pool and used:
            with self.store.write() as conn:
                self.tasks.open_closed_pools(conn, used)
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
