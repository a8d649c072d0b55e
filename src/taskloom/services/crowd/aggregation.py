"""Aggregation: one answer per task, with a confidence, from the pool's accepted and
submitted answers (``crowd/aggregation.py`` holds the algorithms).

``aggregate_pool`` is a job (kind ``crowd_aggregate``) whose results are stored per job and
paged by ``results``; ``aggregate_task`` answers at once. A retried job deletes
what an earlier attempt of it wrote before writing again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, select

from taskloom.crowd import aggregation as algo
from taskloom.errors import Invalid, NotFound
from taskloom.scope import Scope
from taskloom.services.crowd.common import (
    pool_row,
    project_row,
    skill_row,
    task_row,
)
from taskloom.services.crowd.operations import AGGREGATE_KIND
from taskloom.services.crowd.work_records import AggregatedResult
from taskloom.store.crowd_tables import (
    crowd_aggregated,
    crowd_answers,
    crowd_tasks,
    crowd_user_skills,
)
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.records import Page

if TYPE_CHECKING:
    from taskloom.crowd.spec import Spec
    from taskloom.jobs.engine import JobEngine
    from taskloom.jobs.progress import Progress
    from taskloom.jobs.records import Job
    from taskloom.services.crowd.projects import Specs
    from taskloom.store.engine import Store

METHODS = ("majority_vote", "dawid_skene", "skill_weighted")
_WRITE_CHUNK = 5_000
CURSOR = CursorFormat("crowd_aggregated", int)


def _finite_options(spec: Spec, fields: list[str]) -> int | None:
    """Y when every aggregated field has a finite set of values, else None."""
    y = 1
    for name in fields:
        fs = spec.fields[name]
        if fs.allowed_values is not None and not fs.is_array:
            y *= len(set(fs.allowed_values))
        elif fs.type == "boolean":
            y *= 2
        else:
            return None
    return y


class Aggregation:
    """Aggregating a pool (a job) or one task (now), and the results of a job."""

    def __init__(self, store: Store, jobs: JobEngine, specs: Specs) -> None:
        self.store = store
        self.jobs = jobs
        self.specs = specs

    def _aggregation_args(
        self, conn: Connection, scope: Scope, pool: Any, method: Any, fields: Any, skill_id: Any
    ) -> tuple[list[str], str | None]:
        if method not in METHODS:
            raise Invalid(
                f"method is one of {', '.join(METHODS)}", code="value_not_allowed", field="method"
            )
        project = project_row(conn, scope, pool.project_id)
        _, out = self.specs.of(project)
        if fields is None:
            fields = list(out.fields)
        if not isinstance(fields, list) or not fields:
            raise Invalid("fields lists output fields", code="array_expected", field="fields")
        for i, name in enumerate(fields):
            if name not in out.fields:
                raise Invalid(
                    f"{name!r} is not a field of the output spec",
                    code="value_not_allowed",
                    field=f"fields.{i}",
                )
        if method == "skill_weighted":
            if skill_id is None:
                skill_id = (
                    (pool.data.get("dynamic_overlap_config") or {}).get("answer_weight") or {}
                ).get("skill_id")
            if skill_id is None:
                raise Invalid(
                    "skill_weighted needs answer_weight_skill_id",
                    code="value_required",
                    field="answer_weight_skill_id",
                )
        if skill_id is not None:
            skill_row(conn, scope, skill_id, field="answer_weight_skill_id")
        return list(fields), skill_id

    def aggregate_pool(
        self,
        scope: Scope,
        pool_id: str,
        *,
        method: str = "dawid_skene",
        fields: list[str] | None = None,
        answer_weight_skill_id: str | None = None,
    ) -> Job:
        """A job that aggregates every task of the pool; read its results with
        ``results(job id)``."""
        with self.store.read() as conn:
            pool = pool_row(conn, scope, pool_id)
            fields, skill_id = self._aggregation_args(
                conn, scope, pool, method, fields, answer_weight_skill_id
            )
        job, _ = self.jobs.submit(
            scope,
            AGGREGATE_KIND,
            {
                "pool_id": pool.id,
                "method": method,
                "fields": fields,
                "answer_weight_skill_id": skill_id,
            },
        )
        return job

    def _answers(self, conn: Connection, pool_id: str, task_id: str | None = None) -> list[Any]:
        a = crowd_answers
        q = select(a.c.task_id, a.c.user_id, a.c.output_values).where(
            a.c.pool_id == pool_id, a.c.kind == "real", a.c.status.in_(("SUBMITTED", "ACCEPTED"))
        )
        if task_id is not None:
            q = q.where(a.c.task_id == task_id)
        return list(conn.execute(q).all())

    def _run(
        self,
        conn: Connection,
        scope: Scope,
        pool: Any,
        rows: list[Any],
        method: str,
        fields: list[str],
        skill_id: str | None,
    ) -> dict[str, tuple[Any, float]]:
        answers = [(r.task_id, r.user_id, algo.answer_key(r.output_values, fields)) for r in rows]
        if method == "majority_vote":
            return algo.majority_vote(answers)
        if method == "dawid_skene":
            return algo.dawid_skene(answers)
        t = crowd_user_skills
        skills = {
            r.user_id: r.value
            for r in conn.execute(select(t.c.user_id, t.c.value).where(t.c.skill_id == skill_id))
        }
        project = project_row(conn, scope, pool.project_id)
        _, out = self.specs.of(project)
        return algo.skill_weighted(answers, skills, n_options=_finite_options(out, fields))

    def run(self, scope: Scope, job_id: str, progress: Progress, params: Any) -> dict[str, Any]:
        """The body of a ``crowd_aggregate`` job."""
        progress.progress(1.0, "reading answers")
        with self.store.read() as conn:
            pool = pool_row(conn, scope, params.pool_id)
            rows = self._answers(conn, pool.id)
            order = {
                r.id: r.seq
                for r in conn.execute(
                    select(crowd_tasks.c.id, crowd_tasks.c.seq).where(
                        crowd_tasks.c.pool_id == pool.id
                    )
                )
            }
            progress.progress(10.0, f"aggregating {len(rows)} answers ({params.method})")
            results = self._run(
                conn, scope, pool, rows, params.method, params.fields, params.answer_weight_skill_id
            )
        ordered = sorted(results.items(), key=lambda kv: order.get(kv[0], 0))
        progress.progress(80.0, f"writing {len(ordered)} results")
        with self.store.write() as conn:
            conn.execute(delete(crowd_aggregated).where(crowd_aggregated.c.job_id == job_id))
            for start in range(0, len(ordered), _WRITE_CHUNK):
                conn.execute(
                    insert(crowd_aggregated),
                    [
                        {
                            "job_id": job_id,
                            "position": start + i,
                            "pool_id": pool.id,
                            "task_id": task_id,
                            "output_values": json.loads(str(key)),
                            "confidence": float(conf),
                        }
                        for i, (task_id, (key, conf)) in enumerate(
                            ordered[start : start + _WRITE_CHUNK]
                        )
                    ],
                )
        return {"pool_id": pool.id, "method": params.method, "count": len(ordered)}

    def aggregate_task(
        self,
        scope: Scope,
        task_id: str,
        *,
        method: str = "dawid_skene",
        fields: list[str] | None = None,
        answer_weight_skill_id: str | None = None,
    ) -> AggregatedResult:
        """One task's aggregated answer now: ``{pool_id, task_id, confidence, output_values}``.
        Dawid-Skene learns the workers from the whole pool's answers."""
        with self.store.read() as conn:
            task = task_row(conn, scope, task_id)
            pool = pool_row(conn, scope, task.pool_id)
            fields, skill_id = self._aggregation_args(
                conn, scope, pool, method, fields, answer_weight_skill_id
            )
            rows = self._answers(conn, pool.id, None if method == "dawid_skene" else task.id)
            results = self._run(conn, scope, pool, rows, method, fields, skill_id)
        if task.id not in results:
            raise NotFound(
                "this task has no submitted or accepted answers yet",
                code="no_answers",
                field="task_id",
            )
        key, conf = results[task.id]
        return AggregatedResult(
            pool_id=pool.id,
            task_id=task.id,
            confidence=float(conf),
            output_values=json.loads(str(key)),
        )

    def results(
        self, scope: Scope, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[AggregatedResult]:
        """The results of an aggregation job, in task order: ``{data, cursor}``."""
        check_limit(limit, most=100_000)
        job = self.jobs.get(scope, job_id)
        if job["kind"] != AGGREGATE_KIND:
            raise NotFound(
                f"aggregation {job_id!r} not found", code="job_not_found", field="job_id"
            )
        t = crowd_aggregated
        q = select(t).where(t.c.job_id == job["id"])
        key = CURSOR.decode(cursor)
        if key is not None:
            q = q.where(t.c.position > key[0])
        q = q.order_by(t.c.position).limit(limit + 1)
        with self.store.read() as conn:
            rows, nxt = page(conn.execute(q).all(), limit, CURSOR, lambda r: (r.position,))
        return {"data": [AggregatedResult.from_row(r) for r in rows], "cursor": nxt}
