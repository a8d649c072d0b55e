"""Assignments: reading them, the worker's answers (submit, skip) and the requester's
review. Issuing is in ``issuing.py``.

A submit checks every solution against the output spec (nothing is written when one is
invalid), scores the answers to control tasks, runs the pool's quality-control rules and
dynamic overlap, all in the same transaction. A rejection gives the overlap back.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, exists, insert, select, update

from taskloom.errors import Conflict, Invalid, NotFound
from taskloom.scope import Scope
from taskloom.services.crowd import quality
from taskloom.services.crowd.bodies import Review, parse_body
from taskloom.services.crowd.common import (
    assignment_row,
    pool_row,
    project_row,
)
from taskloom.services.crowd.overlap import SCORED, grow_overlap
from taskloom.services.crowd.work_records import Assignment
from taskloom.store.crowd_tables import (
    crowd_answers,
    crowd_assignments,
    crowd_bans,
    crowd_tasks,
)
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.records import Page
from taskloom.store.types import utcnow

if TYPE_CHECKING:
    from taskloom.services.crowd.issuing import Issuing
    from taskloom.services.crowd.projects import Specs
    from taskloom.services.crowd.workers import Skills
    from taskloom.store.engine import Store

STATUSES = ("ACTIVE", "SUBMITTED", "ACCEPTED", "REJECTED", "SKIPPED", "EXPIRED")
CURSOR = CursorFormat("crowd_assignments", int)

_t, _a = crowd_tasks, crowd_answers
_TASKS = select(_t.c.id, _t.c.kind, _t.c.known_solutions, _t.c.input_values).where(
    _t.c.id.in_(bindparam("ids", expanding=True))
)
_ANSWER = (
    update(_a)
    .where(_a.c.assignment_id == bindparam("aid"), _a.c.position == bindparam("pos"))
    .values(
        status=bindparam("new_status"),
        output_values=bindparam("new_output_values"),
        score=bindparam("new_score"),
        submitted_at=bindparam("new_submitted_at"),
    )
)


def _due(row: Any, now: datetime) -> bool:
    """ACTIVE past its time: expired, though nothing has said so yet."""
    return row.status == "ACTIVE" and row.expires_at is not None and row.expires_at < now


def _check_solutions(out_spec: Any, solutions: Any, n: int) -> list[dict[str, Any]]:
    if not isinstance(solutions, list):
        raise Invalid("solutions is a list, one per task", code="ARRAY_EXPECTED", field="solutions")
    if len(solutions) != n:
        raise Invalid(
            f"this assignment has {n} tasks: send {n} solutions, in the order of its tasks",
            code="solutions_count_mismatch",
            field="solutions",
        )
    errors: dict[str, dict[str, str]] = {}
    clean = []
    for i, sol in enumerate(solutions):
        path = f"solutions.{i}"
        if not isinstance(sol, dict):
            errors[path] = {"code": "OBJECT_EXPECTED", "message": "An object is expected"}
            continue
        for key in sol:
            if key != "output_values":
                errors.setdefault(
                    f"{path}.{key}",
                    {"code": "VALUE_NOT_ALLOWED", "message": "This field is not allowed here"},
                )
        for e in out_spec.validate(sol.get("output_values"), prefix=f"{path}.output_values"):
            errors.setdefault(e.path, {"code": e.code, "message": e.message})
        clean.append({"output_values": sol.get("output_values")})
    if errors:
        path, err = next(iter(errors.items()))
        raise Invalid(
            f"{path}: {err['message']}",
            code=err["code"],
            field=path,
            details={"validation_errors": errors},
        )
    return clean


class Assignments:
    """Reading assignments, the worker's answers and the requester's review; issuing is
    :class:`Issuing`'s."""

    def __init__(self, store: Store, specs: Specs, issuing: Issuing, skills: Skills) -> None:
        self.store = store
        self.specs = specs
        self.issuing = issuing
        self.skills = skills

    # -- reading -----------------------------------------------------------------------------

    def get(self, scope: Scope, assignment_id: str) -> Assignment:
        """One assignment; an ACTIVE one past its time is expired first (and its overlap
        given back), so nobody is shown ACTIVE an assignment that can no longer be
        submitted."""
        now = utcnow()
        with self.store.read() as conn:
            row = assignment_row(conn, scope, assignment_id)
            if not _due(row, now):
                return self.issuing.public(conn, row)
        with self.store.write() as conn:
            row = assignment_row(conn, scope, assignment_id, lock=True)
            if _due(row, now) and self.issuing.release(conn, row, "EXPIRED", now):
                row = assignment_row(conn, scope, assignment_id)
            return self.issuing.public(conn, row)

    def list(
        self,
        scope: Scope,
        *,
        pool_id: str | None = None,
        status: str | None = None,
        task_id: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Assignment]:
        """Oldest first, paged: ``{data, cursor}``. ACTIVE assignments past their time are
        expired first, as in ``get``."""
        check_limit(limit, most=100_000)
        t = crowd_assignments
        q = select(t).where(t.c.app_id == scope.app_id)
        if pool_id is not None:
            q = q.where(t.c.pool_id == pool_id)
        if status is not None:
            if status not in STATUSES:
                raise Invalid(f"unknown status {status!r}", code="invalid_status", field="status")
            q = q.where(t.c.status == status)
        if user_id is not None:
            q = q.where(t.c.user_id == user_id)
        if task_id is not None:
            a = crowd_answers
            q = q.where(exists().where(a.c.assignment_id == t.c.id, a.c.task_id == task_id))
        key = CURSOR.decode(cursor)
        if key is not None:
            q = q.where(t.c.seq > key[0])
        q = q.order_by(t.c.seq).limit(limit + 1)
        self.issuing.expire_due(scope, pool_id, utcnow())
        with self.store.read() as conn:
            rows, nxt = page(conn.execute(q).all(), limit, CURSOR, lambda r: (r.seq,))
            data = self.issuing.publics(conn, rows)
        return {"data": data, "cursor": nxt}

    # -- the worker's answers ----------------------------------------------------------------

    def _own(self, conn: Connection, scope: Scope, worker_id: str, assignment_id: str) -> Any:
        row = assignment_row(conn, scope, assignment_id, lock=True)
        if row.user_id != worker_id:
            raise NotFound(
                f"assignment {assignment_id!r} not found",
                code="assignment_not_found",
                field="assignment_id",
            )
        if row.status != "ACTIVE":
            raise Conflict(
                f"the assignment is {row.status}", code="assignment_not_active", field="status"
            )
        return row

    def submit(
        self, scope: Scope, worker_id: str, assignment_id: str, solutions: Any
    ) -> Assignment:
        """Answers, one ``{"output_values": {...}}`` per task in order, checked against the
        output spec; control answers score the worker, quality rules and dynamic overlap run."""
        now = utcnow()
        with self.store.write() as conn:
            row = self._own(conn, scope, worker_id, assignment_id)
            expired = row.expires_at is not None and row.expires_at < now
            if expired:
                self.issuing.release(conn, row, "EXPIRED", now)
            else:
                return self._submit(conn, scope, row, solutions, now)
        raise Conflict(
            "the assignment expired before it was submitted",
            code="assignment_expired",
            field="assignment_id",
        )

    def _submit(
        self, conn: Connection, scope: Scope, row: Any, solutions: Any, now: datetime
    ) -> Assignment:
        pool = pool_row(conn, scope, row.pool_id)
        project = project_row(conn, scope, pool.project_id)
        in_spec, out_spec = self.specs.of(project)
        clean = _check_solutions(out_spec, solutions, len(row.task_ids))
        tasks = {t.id: t for t in conn.execute(_TASKS, {"ids": list(row.task_ids)})}
        status = "ACCEPTED" if pool.data.get("auto_accept_solutions") else "SUBMITTED"
        values: dict[str, Any] = {"status": status, "solutions": clean, "submitted_at": now}
        if status == "ACCEPTED":
            values["accepted_at"] = now
        conn.execute(
            update(crowd_assignments)
            .where(crowd_assignments.c.id == row.id, crowd_assignments.c.status == "ACTIVE")
            .values(**values)
        )
        golden = False
        answers = []
        for pos, (tid, sol) in enumerate(zip(row.task_ids, clean, strict=True)):
            task = tasks.get(tid)
            score = None
            if task is not None and task.kind != "real" and task.known_solutions:
                score = quality.score(sol["output_values"], task.known_solutions)
                golden = golden or task.kind == "golden"
            answers.append(
                {
                    "aid": row.id,
                    "pos": pos,
                    "new_status": status,
                    "new_output_values": sol["output_values"],
                    "new_score": score,
                    "new_submitted_at": now,
                }
            )
        conn.execute(_ANSWER, answers)
        if golden and pool.data.get("quality_control"):
            self._apply_quality(conn, scope, pool, row.user_id, now)
        grow_overlap(conn, pool, out_spec, row.task_ids)
        done = SimpleNamespace(**{**row._mapping, **values})
        return self.issuing.public(conn, done, for_worker=True, tasks=tasks, spec=in_spec)

    def _apply_quality(
        self, conn: Connection, scope: Scope, pool: Any, worker_id: str, now: datetime
    ) -> None:
        a = crowd_answers
        scores = [
            float(r.score or 0.0)
            for r in conn.execute(
                select(a.c.score)
                .where(
                    a.c.pool_id == pool.id,
                    a.c.user_id == worker_id,
                    a.c.kind == "golden",
                    a.c.status.in_(SCORED),
                )
                .order_by(a.c.submitted_at.desc(), a.c.assignment_id, a.c.position)
            )
        ]
        for action, stats in quality.fired_actions(pool.data.get("quality_control"), scores):
            params = quality.action_parameters(action)
            kind = action["type"]
            if kind in ("RESTRICTION_V2", "RESTRICTION"):
                where = params.get("scope", "POOL")
                target = {"POOL": ("POOL", pool.id), "PROJECT": ("PROJECT", pool.project_id)}.get(
                    where, ("APP", pool.app_id)
                )
                self._ban(conn, scope, worker_id, *target, params.get("private_comment"), now)
            elif kind == "SET_SKILL":
                self.skills.put_user_skill(
                    conn, scope, params["skill_id"], worker_id, float(params["skill_value"])
                )
            else:
                rate = stats[
                    "correct_rate"
                    if params["from_field"] == "correct_answers_rate"
                    else "incorrect_rate"
                ]
                if rate is not None:
                    self.skills.put_user_skill(
                        conn, scope, params["skill_id"], worker_id, float(rate)
                    )

    def _ban(
        self,
        conn: Connection,
        scope: Scope,
        worker_id: str,
        where: str,
        target: str,
        reason: Any,
        now: datetime,
    ) -> None:
        b = crowd_bans
        if conn.execute(
            select(b.c.id).where(
                b.c.user_id == worker_id, b.c.scope == where, b.c.scope_id == target
            )
        ).first():
            return
        conn.execute(
            insert(b),
            {
                "app_id": scope.app_id,
                "user_id": worker_id,
                "scope": where,
                "scope_id": target,
                "reason": reason if isinstance(reason, str) else "quality control",
                "created_at": now,
            },
        )

    def skip(self, scope: Scope, worker_id: str, assignment_id: str) -> Assignment:
        """SKIPPED: the tasks go back to the pool for other workers (not to this one)."""
        now = utcnow()
        with self.store.write() as conn:
            row = self._own(conn, scope, worker_id, assignment_id)
            self.issuing.release(conn, row, "SKIPPED", now)
            return self.issuing.public(
                conn, assignment_row(conn, scope, assignment_id), for_worker=True
            )

    # -- the requester's review ----------------------------------------------------------------

    def review(
        self, scope: Scope, assignment_id: str, status: Any, public_comment: Any = None
    ) -> Assignment:
        """Accept or reject a SUBMITTED assignment; a rejection gives the overlap back, so
        the tasks are issued again. Reviewing again with the same status changes nothing.
        ``status`` and ``public_comment`` are parsed into ``bodies.Review`` (a front door may
        hand them over as sent)."""
        review = parse_body(Review, {"status": status, "public_comment": public_comment})
        status, public_comment = review.status, review.public_comment
        if status == "REJECTED" and not (public_comment or "").strip():
            raise Invalid(
                "say why the answers are rejected", code="value_required", field="public_comment"
            )
        now = utcnow()
        with self.store.write() as conn:
            row = assignment_row(conn, scope, assignment_id, lock=True)
            if row.status != status:
                if row.status != "SUBMITTED":
                    raise Conflict(
                        f"a {row.status} assignment cannot be {status.lower()}",
                        code="assignment_not_submitted",
                        field="status",
                    )
                if status == "REJECTED":
                    self.issuing.release(
                        conn, row, "REJECTED", now, frm="SUBMITTED", comment=public_comment
                    )
                else:
                    conn.execute(
                        update(crowd_assignments)
                        .where(
                            crowd_assignments.c.id == row.id,
                            crowd_assignments.c.status == "SUBMITTED",
                        )
                        .values(status="ACCEPTED", accepted_at=now, public_comment=public_comment)
                    )
                    conn.execute(
                        update(crowd_answers)
                        .where(crowd_answers.c.assignment_id == row.id)
                        .values(status="ACCEPTED")
                    )
            return self.issuing.public(conn, assignment_row(conn, scope, assignment_id))
