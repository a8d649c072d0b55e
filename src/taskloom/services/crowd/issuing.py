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
``assignment_max_duration_seconds``. Expired, skipped and rejected assignments give their
overlap back.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, insert, or_, select, update

from taskloom.errors import Conflict
from taskloom.services.auth import Scope
from taskloom.services.crowd.common import (
    new_id,
    parse_time,
    pool_row,
    worker_row,
)
from taskloom.services.crowd.overlap import OverlapMixin
from taskloom.services.crowd.pools import mixer_counts
from taskloom.store.crowd_tables import (
    crowd_answers,
    crowd_assignments,
    crowd_bans,
    crowd_task_suites,
    crowd_tasks,
)
from taskloom.store.types import utcnow

STATUSES = ("ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED")
_STAMP = {
    "SUBMITTED": "submitted_at",
    "ACCEPTED": "accepted_at",
    "REJECTED": "rejected_at",
    "SKIPPED": "skipped_at",
    "EXPIRED": "expired_at",
}
_PAGE = 200  # candidate tasks read per query while looking for ones a worker may take


def _allowed(row: Any, who: set[str]) -> bool:
    if row.reserved_for and not who.intersection(row.reserved_for):
        return False
    return not (row.unavailable_for and who.intersection(row.unavailable_for))


class IssuingMixin(OverlapMixin):
    """Issuing assignments and giving their overlap back."""

    # -- reading -----------------------------------------------------------------------------

    def _publics(
        self, conn: Connection, rows: Sequence[Any], *, for_worker: bool = False
    ) -> list[dict[str, Any]]:
        ids = {tid for r in rows for tid in r.task_ids}
        tasks: dict[str, Any] = {}
        id_list = list(ids)
        for start in range(0, len(id_list), 900):
            for t in conn.execute(
                select(crowd_tasks.c.id, crowd_tasks.c.pool_id, crowd_tasks.c.input_values).where(
                    crowd_tasks.c.id.in_(id_list[start : start + 900])
                )
            ):
                tasks[t.id] = t
        visible: dict[str, Any] = {}
        if for_worker:  # workers do not see hidden input fields
            visible = self._visible_specs(conn, {r.pool_id for r in rows})
        out = []
        for r in rows:
            spec = visible.get(r.pool_id)
            items = []
            for tid in r.task_ids:
                task = tasks.get(tid)
                values = task.input_values if task is not None else {}
                items.append({"id": tid, "input_values": spec.visible(values) if spec else values})
            out.append(
                {
                    "id": r.id,
                    "task_suite_id": r.suite_id,
                    "pool_id": r.pool_id,
                    "user_id": r.user_id,
                    "status": r.status,
                    "reward": r.reward,
                    "tasks": items,
                    "solutions": r.solutions,
                    "mixed": r.mixed,
                    "automerged": r.automerged,
                    "created": r.created_at,
                    "expires": r.expires_at,
                    "submitted": r.submitted_at,
                    "accepted": r.accepted_at,
                    "rejected": r.rejected_at,
                    "skipped": r.skipped_at,
                    "expired": r.expired_at,
                    "public_comment": r.public_comment,
                }
            )
        return out

    def _visible_specs(self, conn: Connection, pool_ids: set[str]) -> dict[str, Any]:
        from taskloom.store.crowd_tables import crowd_pools, crowd_projects

        out = {}
        for r in conn.execute(
            select(crowd_pools.c.id.label("pool_id"), crowd_projects)
            .join(crowd_projects, crowd_projects.c.id == crowd_pools.c.project_id)
            .where(crowd_pools.c.id.in_(list(pool_ids)))
        ):
            out[r.pool_id] = self.specs(r)[0]  # type: ignore[attr-defined]
        return out

    def _public(self, conn: Connection, row: Any, *, for_worker: bool = False) -> dict[str, Any]:
        return self._publics(conn, [row], for_worker=for_worker)[0]

    # -- giving overlap back -------------------------------------------------------------------

    def _release(
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

    def _expire(self, conn: Connection, pool_id: str, now: datetime) -> int:
        t = crowd_assignments
        rows = conn.execute(
            select(t).where(t.c.pool_id == pool_id, t.c.status == "ACTIVE", t.c.expires_at < now)
        ).all()
        return sum(self._release(conn, r, "EXPIRED", now) for r in rows)

    # -- issuing -----------------------------------------------------------------------------

    def _banned(self, conn: Connection, worker_id: str, pool: Any) -> bool:
        b = crowd_bans
        return (
            conn.execute(
                select(b.c.id).where(
                    b.c.user_id == worker_id,
                    or_(
                        and_(b.c.scope == "POOL", b.c.scope_id == pool.id),
                        and_(b.c.scope == "PROJECT", b.c.scope_id == pool.project_id),
                        and_(b.c.scope == "APP", b.c.scope_id == pool.app_id),
                    ),
                )
            ).first()
            is not None
        )

    def _pick_suite(self, conn: Connection, pool_id: str, worker_id: str, who: set[str]) -> Any:
        s, a = crowd_task_suites, crowd_assignments
        last = 0
        while True:
            rows = conn.execute(
                select(s)
                .where(
                    s.c.pool_id == pool_id,
                    s.c.seq > last,
                    or_(s.c.infinite_overlap.is_(True), s.c.remaining_overlap > 0),
                    ~exists().where(a.c.suite_id == s.c.id, a.c.user_id == worker_id),
                )
                .order_by(s.c.seq)
                .limit(_PAGE)
            ).all()
            for r in rows:
                if _allowed(r, who):
                    return r
            if len(rows) < _PAGE:
                return None
            last = rows[-1].seq

    def _pick_tasks(
        self, conn: Connection, pool_id: str, kind: str, worker_id: str, who: set[str], n: int
    ) -> list[Any]:
        """Up to ``n`` tasks of ``kind`` (outside suites) this worker may take, oldest first;
        each one's overlap slot taken (a slot lost to a concurrent request is skipped)."""
        t, a = crowd_tasks, crowd_answers
        picked: list[Any] = []
        last = 0
        while n > len(picked):
            rows = conn.execute(
                select(t.c.id, t.c.seq, t.c.infinite_overlap, t.c.reserved_for, t.c.unavailable_for)
                .where(
                    t.c.pool_id == pool_id,
                    t.c.kind == kind,
                    t.c.suite_id.is_(None),
                    t.c.seq > last,
                    or_(t.c.infinite_overlap.is_(True), t.c.remaining_overlap > 0),
                    ~exists().where(a.c.task_id == t.c.id, a.c.user_id == worker_id),
                )
                .order_by(t.c.seq)
                .limit(_PAGE)
            ).all()
            for r in rows:
                if len(picked) == n:
                    break
                if not _allowed(r, who):
                    continue
                if not r.infinite_overlap:
                    res = conn.execute(
                        update(t)
                        .where(t.c.id == r.id, t.c.remaining_overlap > 0)
                        .values(remaining_overlap=t.c.remaining_overlap - 1)
                    )
                    if not res.rowcount:
                        continue
                picked.append(r)
            if len(rows) < _PAGE:
                break
            last = rows[-1].seq
        return picked

    def _take_suite(self, conn: Connection, suite: Any) -> list[str] | None:
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
        return [
            r.id
            for r in conn.execute(select(t.c.id).where(t.c.suite_id == suite.id).order_by(t.c.seq))
        ]

    def _issue(
        self, conn: Connection, scope: Scope, pool: Any, worker: Any, now: datetime
    ) -> str | None:
        who = {worker.id} | ({worker.external_id} if worker.external_id else set())
        suite = self._pick_suite(conn, pool.id, worker.id, who)
        task_ids = self._take_suite(conn, suite) if suite is not None else None
        if task_ids:
            suite_id, mixed = suite.id, False
        else:
            real, golden, training = mixer_counts(pool.data)
            picked = self._pick_tasks(conn, pool.id, "real", worker.id, who, real)
            if real and not picked:
                return None
            extra = self._pick_tasks(conn, pool.id, "golden", worker.id, who, golden)
            extra += self._pick_tasks(conn, pool.id, "training", worker.id, who, training)
            if not picked and not extra:
                return None
            task_ids = [r.id for r in picked]
            for r in extra:  # control tasks at random places, so they cannot be told apart
                task_ids.insert(random.randint(0, len(task_ids)), r.id)
            suite_id, mixed = new_id(), True
        kinds = {
            r.id: r.kind
            for r in conn.execute(
                select(crowd_tasks.c.id, crowd_tasks.c.kind).where(crowd_tasks.c.id.in_(task_ids))
            )
        }
        aid = new_id()
        seconds = pool.data.get("assignment_max_duration_seconds")
        conn.execute(
            insert(crowd_assignments),
            {
                "id": aid,
                "app_id": scope.app_id,
                "pool_id": pool.id,
                "suite_id": suite_id,
                "user_id": worker.id,
                "status": "ACTIVE",
                "task_ids": task_ids,
                "solutions": None,
                "reward": float(pool.data.get("reward_per_assignment") or 0.0),
                "mixed": mixed,
                "automerged": False,
                "public_comment": None,
                "created_at": now,
                "expires_at": now + timedelta(seconds=seconds) if seconds else None,
            },
        )
        conn.execute(
            insert(crowd_answers),
            [
                {
                    "assignment_id": aid,
                    "position": i,
                    "task_id": tid,
                    "pool_id": pool.id,
                    "user_id": worker.id,
                    "kind": kinds[tid],
                    "status": "ACTIVE",
                }
                for i, tid in enumerate(task_ids)
            ],
        )
        return aid

    def request_assignment(
        self, scope: Scope, worker_id: str, pool_id: str
    ) -> dict[str, Any] | None:
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
            t = crowd_assignments
            active = conn.execute(
                select(t).where(
                    t.c.pool_id == pool.id, t.c.user_id == worker.id, t.c.status == "ACTIVE"
                )
            ).first()
            if active is None:
                aid = self._issue(conn, scope, pool, worker, now)
                if aid is None:
                    return None
                active = conn.execute(select(t).where(t.c.id == aid)).one()
            return self._public(conn, active, for_worker=True)

    def is_banned(self, scope: Scope, worker_id: str, pool_id: str) -> bool:
        """Whether quality control (or a requester) keeps this worker out of the pool."""
        with self.store.read() as conn:
            return self._banned(conn, worker_id, pool_row(conn, scope, pool_id))
