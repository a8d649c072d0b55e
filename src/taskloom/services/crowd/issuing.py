"""Issuing assignments: which tasks a worker gets next, expiry, giving overlap back.

Issuing happens in one write transaction per request (the pool row is locked on
PostgreSQL; SQLite has one writer), and every overlap slot is taken with a guarded
``UPDATE … SET remaining_overlap = remaining_overlap - 1 WHERE … AND remaining_overlap > 0``,
so two workers never share the last slot. A worker gets: their ACTIVE assignment in the
pool if they have one; else the next task suite they may take; else a page mixed from the
pool's tasks (``mixer_config``: real, golden = with known solutions, training = with known
solutions and a hint). Never a task they had before (whatever became of it), never one
``reserved_for`` others or ``unavailable_for`` them, nothing while banned.

Expiry is lazy: every request for a pool first expires its ACTIVE assignments past
``assignment_max_duration_seconds`` (and so does reading an assignment, see
``assignments.py``). Expired, skipped and rejected assignments give their overlap back.

A request costs the same in a fresh pool and in one nearly used up: candidates come from
partial indexes that hold only the tasks and suites with overlap left (``has_slots``), and
the statements of the hot path are built once, with bound parameters, so that a request
does not pay for building and keying SQL each time.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, bindparam, exists, insert, or_, select, update

from taskloom.crowd.spec import Spec
from taskloom.errors import Conflict
from taskloom.scope import Scope
from taskloom.services.crowd.common import (
    new_id,
    parse_time,
    pool_row,
    worker_row,
)
from taskloom.services.crowd.pools import mixer_counts
from taskloom.services.crowd.work_records import Assignment
from taskloom.store.crowd_tables import (
    crowd_answers,
    crowd_assignments,
    crowd_bans,
    crowd_pools,
    crowd_projects,
    crowd_task_suites,
    crowd_tasks,
    has_slots,
)
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.projects import Specs
    from taskloom.store.engine import Store

STATUSES = ("ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED")
_STAMP = {
    "SUBMITTED": "submitted_at",
    "ACCEPTED": "accepted_at",
    "REJECTED": "rejected_at",
    "SKIPPED": "skipped_at",
    "EXPIRED": "expired_at",
}
# candidates read per query while looking for ones a worker may take: a few first (most
# requests take the first one they read), more while they keep being refused
_FIRST_PAGE, _PAGE = 8, 200

_a, _s, _t, _ans, _b = crowd_assignments, crowd_task_suites, crowd_tasks, crowd_answers, crowd_bans
_DUE = select(_a).where(
    _a.c.pool_id == bindparam("pool_id"),
    _a.c.status == "ACTIVE",
    _a.c.expires_at < bindparam("now"),
)
_ACTIVE = select(_a).where(
    _a.c.pool_id == bindparam("pool_id"),
    _a.c.user_id == bindparam("user_id"),
    _a.c.status == "ACTIVE",
)
_BANNED = select(_b.c.id).where(
    _b.c.user_id == bindparam("user_id"),
    or_(
        and_(_b.c.scope == "POOL", _b.c.scope_id == bindparam("pool_id")),
        and_(_b.c.scope == "PROJECT", _b.c.scope_id == bindparam("project_id")),
        and_(_b.c.scope == "APP", _b.c.scope_id == bindparam("app_id")),
    ),
)
# candidates in issuing order, from the partial indexes (ix_crowd_task_suites_open,
# ix_crowd_tasks_open); the worker's own past tasks are skipped by ix_…_suite_user / task_user
_SUITES = (
    select(_s)
    .where(
        _s.c.pool_id == bindparam("pool_id"),
        has_slots(_s),
        _s.c.seq > bindparam("after"),
        ~exists().where(_a.c.suite_id == _s.c.id, _a.c.user_id == bindparam("user_id")),
    )
    .order_by(_s.c.seq)
    .limit(bindparam("page"))
)
_TASKS = (
    select(
        _t.c.id, _t.c.seq, _t.c.kind, _t.c.infinite_overlap, _t.c.reserved_for, _t.c.unavailable_for
    )
    .where(
        _t.c.pool_id == bindparam("pool_id"),
        _t.c.kind == bindparam("kind"),
        _t.c.suite_id.is_(None),
        has_slots(_t),
        _t.c.seq > bindparam("after"),
        ~exists().where(_ans.c.task_id == _t.c.id, _ans.c.user_id == bindparam("user_id")),
    )
    .order_by(_t.c.seq)
    .limit(bindparam("page"))
)
_TAKE = (
    update(_t)
    .where(_t.c.id == bindparam("task_id"), _t.c.remaining_overlap > 0)
    .values(remaining_overlap=_t.c.remaining_overlap - 1)
)
_POOL_PROJECTS = (
    select(crowd_pools.c.id.label("pool_id"), crowd_projects)
    .join(crowd_projects, crowd_projects.c.id == crowd_pools.c.project_id)
    .where(crowd_pools.c.id.in_(bindparam("ids", expanding=True)))
)
_INPUTS = select(_t.c.id, _t.c.input_values).where(_t.c.id.in_(bindparam("ids", expanding=True)))


def _allowed(row: Any, who: set[str]) -> bool:
    if row.reserved_for and not who.intersection(row.reserved_for):
        return False
    return not (row.unavailable_for and who.intersection(row.unavailable_for))


class Issuing:
    """Issuing assignments, showing them, and giving their overlap back."""

    def __init__(self, store: Store, specs: Specs) -> None:
        self.store = store
        self.specs = specs

    # -- reading -----------------------------------------------------------------------------

    def publics(
        self,
        conn: Connection,
        rows: Sequence[Any],
        *,
        for_worker: bool = False,
        tasks: Mapping[str, Any] | None = None,
        spec: Spec | None = None,
    ) -> list[Assignment]:
        """Assignment rows as records. ``tasks`` (id -> a row with ``input_values``) and, for a
        worker, ``spec`` (the input spec) save reading them again when the caller has them."""
        if tasks is None:
            tasks = {}
            id_list = list({tid for r in rows for tid in r.task_ids})
            for start in range(0, len(id_list), 900):
                for t in conn.execute(_INPUTS, {"ids": id_list[start : start + 900]}):
                    tasks[t.id] = t
        visible: dict[str, Any] = {}
        if for_worker:  # workers do not see hidden input fields
            if spec is not None:
                visible = {r.pool_id: spec for r in rows}
            else:
                visible = self._visible_specs(conn, {r.pool_id for r in rows})
        out = []
        for r in rows:
            pool_spec = visible.get(r.pool_id)
            items = []
            for tid in r.task_ids:
                task = tasks.get(tid)
                values = task.input_values if task is not None else {}
                items.append(
                    {
                        "id": tid,
                        "input_values": pool_spec.visible(values) if pool_spec else values,
                    }
                )
            out.append(Assignment.from_row(r, items))
        return out

    def _visible_specs(self, conn: Connection, pool_ids: set[str]) -> dict[str, Spec]:
        """pool id -> its project's input spec."""
        return {
            r.pool_id: self.specs.of(r)[0]
            for r in conn.execute(_POOL_PROJECTS, {"ids": list(pool_ids)})
        }

    def public(
        self,
        conn: Connection,
        row: Any,
        *,
        for_worker: bool = False,
        tasks: Mapping[str, Any] | None = None,
        spec: Spec | None = None,
    ) -> Assignment:
        return self.publics(conn, [row], for_worker=for_worker, tasks=tasks, spec=spec)[0]

    # -- giving overlap back -------------------------------------------------------------------

    def release(
        self,
        conn: Connection,
        row: Any,
        to: str,
        now: datetime,
        *,
        frm: str = "ACTIVE",
        comment: str | None = None,
    ) -> bool:
        """Move an assignment to EXPIRED, SKIPPED or REJECTED and give its overlap back."""
        values: dict[str, Any] = {"status": to, _STAMP[to]: now}
        if comment is not None:
            values["public_comment"] = comment
        res = conn.execute(
            update(crowd_assignments)
            .where(crowd_assignments.c.id == row.id, crowd_assignments.c.status == frm)
            .values(**values)
        )
        if not res.rowcount:
            return False
        conn.execute(
            update(crowd_answers).where(crowd_answers.c.assignment_id == row.id).values(status=to)
        )
        conn.execute(
            update(crowd_tasks)
            .where(
                crowd_tasks.c.id.in_(list(row.task_ids)), crowd_tasks.c.infinite_overlap.is_(False)
            )
            .values(remaining_overlap=crowd_tasks.c.remaining_overlap + 1)
        )
        if row.suite_id is not None and not row.mixed:
            conn.execute(
                update(crowd_task_suites)
                .where(
                    crowd_task_suites.c.id == row.suite_id,
                    crowd_task_suites.c.infinite_overlap.is_(False),
                )
                .values(remaining_overlap=crowd_task_suites.c.remaining_overlap + 1)
            )
        return True

    def expire_due(self, scope: Scope, pool_id: str | None, now: datetime) -> None:
        """Expire the app's (or the pool's) ACTIVE assignments past their time: a read
        finds them (an index holds the ACTIVE ones by expiry); only if there are any, a
        write expires them."""
        t = crowd_assignments
        q = select(t).where(
            t.c.app_id == scope.app_id, t.c.status == "ACTIVE", t.c.expires_at < now
        )
        if pool_id is not None:
            q = q.where(t.c.pool_id == pool_id)
        with self.store.read() as conn:
            if conn.execute(q.limit(1)).first() is None:
                return
        with self.store.write() as conn:
            for row in conn.execute(q).all():
                self.release(conn, row, "EXPIRED", now)

    def _expire(self, conn: Connection, pool_id: str, now: datetime) -> int:
        rows = conn.execute(_DUE, {"pool_id": pool_id, "now": now}).all()
        return sum(self.release(conn, r, "EXPIRED", now) for r in rows)

    # -- issuing -----------------------------------------------------------------------------

    def _banned(self, conn: Connection, worker_id: str, pool: Any) -> bool:
        params = {
            "user_id": worker_id,
            "pool_id": pool.id,
            "project_id": pool.project_id,
            "app_id": pool.app_id,
        }
        return conn.execute(_BANNED, params).first() is not None

    def _pick_suite(self, conn: Connection, pool_id: str, worker_id: str, who: set[str]) -> Any:
        last, page = 0, _FIRST_PAGE
        while True:
            rows = conn.execute(
                _SUITES, {"pool_id": pool_id, "after": last, "user_id": worker_id, "page": page}
            ).all()
            for r in rows:
                if _allowed(r, who):
                    return r
            if len(rows) < page:
                return None
            last, page = rows[-1].seq, _PAGE

    def _pick_tasks(
        self, conn: Connection, pool_id: str, kind: str, worker_id: str, who: set[str], n: int
    ) -> list[Any]:
        """Up to ``n`` tasks of ``kind`` (outside suites) this worker may take, oldest first;
        each one's overlap slot taken (a slot lost to a concurrent request is skipped)."""
        picked: list[Any] = []
        last, page = 0, max(_FIRST_PAGE, 2 * n)
        while n > len(picked):
            params = {"pool_id": pool_id, "kind": kind, "after": last, "user_id": worker_id}
            rows = conn.execute(_TASKS, {**params, "page": min(page, _PAGE)}).all()
            for r in rows:
                if len(picked) == n:
                    break
                if not _allowed(r, who):
                    continue
                if not r.infinite_overlap and not conn.execute(_TAKE, {"task_id": r.id}).rowcount:
                    continue  # a concurrent request took the last slot
                picked.append(r)
            if len(rows) < min(page, _PAGE):
                break
            last, page = rows[-1].seq, _PAGE
        return picked

    def _take_suite(self, conn: Connection, suite: Any) -> list[Any] | None:
        """The suite's tasks (id, kind) in order, its overlap slot taken; None if lost."""
        s, t = crowd_task_suites, crowd_tasks
        if not suite.infinite_overlap:
            res = conn.execute(
                update(s)
                .where(s.c.id == suite.id, s.c.remaining_overlap > 0)
                .values(remaining_overlap=s.c.remaining_overlap - 1)
            )
            if not res.rowcount:
                return None
            conn.execute(
                update(t)
                .where(t.c.suite_id == suite.id, t.c.remaining_overlap > 0)
                .values(remaining_overlap=t.c.remaining_overlap - 1)
            )
        return list(
            conn.execute(select(t.c.id, t.c.kind).where(t.c.suite_id == suite.id).order_by(t.c.seq))
        )

    def _issue(
        self, conn: Connection, scope: Scope, pool: Any, worker: Any, now: datetime
    ) -> SimpleNamespace | None:
        """A new assignment for the worker, as the row it inserted; None if nothing is left."""
        who = {worker.id} | ({worker.external_id} if worker.external_id else set())
        suite = self._pick_suite(conn, pool.id, worker.id, who)
        tasks = self._take_suite(conn, suite) if suite is not None else None
        if tasks:
            suite_id, mixed = suite.id, False
        else:
            real, golden, training = mixer_counts(pool.data)
            tasks = self._pick_tasks(conn, pool.id, "real", worker.id, who, real)
            if real and not tasks:
                return None
            extra = self._pick_tasks(conn, pool.id, "golden", worker.id, who, golden)
            extra += self._pick_tasks(conn, pool.id, "training", worker.id, who, training)
            if not tasks and not extra:
                return None
            for r in extra:  # control tasks at random places, so they cannot be told apart
                tasks.insert(random.randint(0, len(tasks)), r)
            suite_id, mixed = new_id(), True
        aid = new_id()
        seconds = pool.data.get("assignment_max_duration_seconds")
        values = {
            "id": aid,
            "app_id": scope.app_id,
            "pool_id": pool.id,
            "suite_id": suite_id,
            "user_id": worker.id,
            "status": "ACTIVE",
            "task_ids": [r.id for r in tasks],
            "solutions": None,
            "reward": float(pool.data.get("reward_per_assignment") or 0.0),
            "mixed": mixed,
            "automerged": False,
            "public_comment": None,
            "created_at": now,
            "expires_at": now + timedelta(seconds=seconds) if seconds else None,
        }
        conn.execute(insert(crowd_assignments), values)
        conn.execute(
            insert(crowd_answers),
            [
                {
                    "assignment_id": aid,
                    "position": i,
                    "task_id": r.id,
                    "pool_id": pool.id,
                    "user_id": worker.id,
                    "kind": r.kind,
                    "status": "ACTIVE",
                }
                for i, r in enumerate(tasks)
            ],
        )
        stamps = dict.fromkeys(_STAMP.values())
        return SimpleNamespace(**values, **stamps)

    def request(self, scope: Scope, worker_id: str, pool_id: str) -> Assignment | None:
        """The worker's next assignment in an OPEN pool, or None when nothing is left for
        them. A worker with an ACTIVE assignment in the pool gets that one again."""
        now = utcnow()
        with self.store.write() as conn:
            pool = pool_row(conn, scope, pool_id, lock=True)
            worker = worker_row(conn, scope, worker_id, field="worker_id")
            self._expire(conn, pool.id, now)
            if pool.status != "OPEN":
                raise Conflict(f"the pool is {pool.status}", code="pool_not_open", field="pool_id")
            expires = pool.data.get("will_expire")
            if expires and parse_time(expires, "will_expire") <= now:
                raise Conflict("the pool has expired", code="pool_expired", field="pool_id")
            if self._banned(conn, worker.id, pool):
                return None
            active: Any = conn.execute(_ACTIVE, {"pool_id": pool.id, "user_id": worker.id}).first()
            if active is None:
                active = self._issue(conn, scope, pool, worker, now)
                if active is None:
                    return None
            return self.public(conn, active, for_worker=True)

    def is_banned(self, scope: Scope, worker_id: str, pool_id: str) -> bool:
        """Whether quality control (or a requester) keeps this worker out of the pool."""
        with self.store.read() as conn:
            return self._banned(conn, worker_id, pool_row(conn, scope, pool_id))
