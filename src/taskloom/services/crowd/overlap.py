"""Dynamic overlap: a task is issued again while its leading answer is not confident enough.

A task starts with its ``overlap`` (the minimum). Once every issued copy of it is answered,
the answers on the pool's ``dynamic_overlap_config.fields`` (plus the task's baseline
solutions, with ``q = confidence_weight``) give a Bayes posterior
(:mod:`taskloom.crowd.confidence`); below ``min_confidence`` and under ``max_overlap`` the
task's overlap and remaining overlap grow by one, so the next worker who asks gets it.

A worker's accuracy ``q`` is their ``answer_weight`` skill / 100 (or the skill's
``default_skill_value``), else their accuracy on the pool's control tasks,
``(K + correct) / (2K + total)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select, update

from taskloom.crowd.aggregation import answer_key
from taskloom.crowd.confidence import count_options, needs_more, worker_accuracy
from taskloom.crowd.spec import Spec
from taskloom.store.crowd_tables import crowd_answers, crowd_tasks, crowd_user_skills

ANSWERED = ("SUBMITTED", "ACCEPTED")
SCORED = ("SUBMITTED", "ACCEPTED", "REJECTED")


def golden_accuracy(conn: Connection, pool_id: str, user_ids: Iterable[str]) -> dict[str, float]:
    """q of each worker from their control answers in this pool."""
    a = crowd_answers
    ids = list(set(user_ids))
    stats = {
        r.user_id: (float(r.correct or 0.0), float(r.total))
        for r in conn.execute(
            select(
                a.c.user_id,
                func.sum(a.c.score).label("correct"),
                func.count().label("total"),
            )
            .where(
                a.c.pool_id == pool_id,
                a.c.kind == "golden",
                a.c.status.in_(SCORED),
                a.c.user_id.in_(ids),
            )
            .group_by(a.c.user_id)
        )
    }
    return {u: worker_accuracy(*stats.get(u, (0.0, 0.0))) for u in ids}


def worker_q(
    conn: Connection, pool_id: str, skill: dict[str, Any] | None, user_ids: Iterable[str]
) -> dict[str, float]:
    ids = list(set(user_ids))
    q = golden_accuracy(conn, pool_id, ids)
    if skill and skill.get("skill_id"):
        t = crowd_user_skills
        values = {
            r.user_id: r.value
            for r in conn.execute(
                select(t.c.user_id, t.c.value).where(
                    t.c.skill_id == skill["skill_id"], t.c.user_id.in_(ids)
                )
            )
        }
        default = skill.get("default_skill_value")
        for u in ids:
            v = values.get(u, default)
            if v is not None:
                q[u] = min(1.0, max(0.0, float(v) / 100.0))
    return q


def grow_overlap(
    conn: Connection, pool: Any, output_spec: Spec, task_ids: Iterable[str]
) -> list[str]:
    """After a submit: grow the overlap of the tasks that still lack confidence.
    Returns the ids of the tasks that grew."""
    cfg = pool.data.get("dynamic_overlap_config")
    if not cfg:
        return []
    fields = [f["name"] for f in cfg["fields"]]
    specs = [output_spec.fields[f] for f in fields if f in output_spec.fields]
    t, a = crowd_tasks, crowd_answers
    grown = []
    for task in conn.execute(select(t).where(t.c.id.in_(list(task_ids)), t.c.kind == "real")).all():
        if task.infinite_overlap or task.remaining_overlap > 0 or task.overlap is None:
            continue
        if task.overlap >= cfg["max_overlap"]:
            continue
        rows = conn.execute(
            select(a.c.user_id, a.c.output_values, a.c.status).where(a.c.task_id == task.id)
        ).all()
        if any(r.status == "ACTIVE" for r in rows):
            continue  # a copy is still out: decide when it comes back
        answered = [r for r in rows if r.status in ANSWERED]
        q = worker_q(conn, pool.id, cfg.get("answer_weight"), [r.user_id for r in answered])
        pairs = [(answer_key(r.output_values, fields), q[r.user_id]) for r in answered]
        for b in task.baseline_solutions or []:
            pairs.append((answer_key(b["output_values"], fields), float(b["confidence_weight"])))
        y = count_options(specs, len({k for k, _ in pairs}))
        if needs_more(
            pairs,
            y,
            overlap_now=len(answered),
            min_overlap=task.overlap,
            max_overlap=cfg["max_overlap"],
            min_confidence=cfg["min_confidence"],
        ):
            res = conn.execute(
                update(t)
                .where(t.c.id == task.id, t.c.remaining_overlap == 0)
                .values(overlap=t.c.overlap + 1, remaining_overlap=1)
            )
            if res.rowcount:
                grown.append(task.id)
    return grown
