"""Crowd assignment issuing in a big pool: 100,000 tasks (overlap 3) on SQLite, in-process.

50 workers take turns: each asks ``services.crowd.issuing.request`` for its next
assignment and answers it with ``submit_assignment``. Latency percentiles of both calls are
taken in three windows: at the start, when half the pool is used up, and near the end
(95 %). Between the windows the pool is fast-forwarded by writing, in bulk, the rows those
workers' turns would have written (SUBMITTED assignments and their answers, in the same
turn order, each task's overlap used up), so that the late windows do not need hours of
turns first; ``--through-api`` plays every turn through the services instead.

In the same run, the floor: per timed call, one write transaction of a bare indexed point
lookup and update of one ``crowd_tasks`` row by the raw driver, on the same database file
in the same state, so the ratio shows what the services cost above SQLite itself.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import BENCH_KEY, pct, row
from sqlalchemy import func, insert, select, update

from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.services.crowd.common import new_id
from taskloom.store.crowd_tables import crowd_answers, crowd_assignments, crowd_tasks
from taskloom.store.types import utcnow

INPUT = {"image": {"type": "url"}, "caption": {"type": "string", "max_length": 200}}
OUTPUT = {"label": {"type": "string", "allowed_values": ["cat", "dog", "other"]}}
OVERLAP = 3
LABELS = ("cat", "dog", "other")


class Bench:
    def __init__(self, p: Platform, n_tasks: int, n_workers: int) -> None:
        self.p = p
        self.crowd = p.services.crowd
        auth = p.services.auth
        self.scope = auth.scope(auth.authenticate(BENCH_KEY))
        project = self.crowd.projects.create(
            self.scope,
            {"public_name": "bench", "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT}},
        )
        self.pool = self.crowd.pools.create(
            self.scope,
            {
                "project_id": project["id"],
                "private_name": "bench",
                "reward_per_assignment": 0.01,
                "assignment_max_duration_seconds": 600,
                "will_expire": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                "mixer_config": {"real_tasks_count": 1},
            },
        )
        self.n_tasks = n_tasks
        t = time.perf_counter()
        for start in range(0, n_tasks, 5_000):
            items = [
                {
                    "pool_id": self.pool["id"],
                    "input_values": {
                        "image": f"https://images.example.com/{i}.jpg",
                        "caption": f"photo number {i}",
                    },
                    "overlap": OVERLAP,
                }
                for i in range(start, min(n_tasks, start + 5_000))
            ]
            out = self.crowd.tasks.create_many(self.scope, items, open_pool=True)
            assert not out["validation_errors"]
        self.setup_s = time.perf_counter() - t
        self.workers = [
            self.crowd.workers.register(self.scope, {"name": f"w{i}"})["id"]
            for i in range(n_workers)
        ]
        self.turn = 0  # whose turn it is, across windows and fast-forwards
        self.issued = 0  # assignments issued and answered through the services
        self.api_s = 0.0  # time spent in those calls

    # -- turns through the services ---------------------------------------------------------

    def one_turn(
        self, req: list[float] | None, sub: list[float] | None, cpu: list[float] | None = None
    ) -> bool:
        """The next worker asks and answers; False when nothing was left for them."""
        crowd, scope = self.crowd, self.scope
        worker = self.workers[self.turn % len(self.workers)]
        self.turn += 1
        c0 = time.thread_time()
        t0 = time.perf_counter()
        a = crowd.issuing.request(scope, worker, self.pool["id"])
        t1 = time.perf_counter()
        if a is None:
            self.api_s += t1 - t0
            return False
        sols = [{"output_values": {"label": LABELS[self.turn % 3]}} for _ in a["tasks"]]
        crowd.assignments.submit(scope, worker, a["id"], sols)
        t2 = time.perf_counter()
        c2 = time.thread_time()
        self.api_s += t2 - t0
        self.issued += 1
        if req is not None and sub is not None:
            req.append(t1 - t0)
            sub.append(t2 - t1)
        if cpu is not None:
            cpu.append(c2 - c0)
        return True

    def window(self, rounds: int) -> tuple[list[float], list[float], list[float]]:
        req: list[float] = []
        sub: list[float] = []
        cpu: list[float] = []
        misses = 0
        for _ in range(rounds * len(self.workers)):
            if not self.one_turn(req, sub, cpu):
                misses += 1
                if misses >= len(self.workers):
                    break
        return req, sub, cpu

    # -- state ------------------------------------------------------------------------------

    def used(self) -> int:
        """Tasks whose overlap is used up."""
        with self.p.store.read() as conn:
            return conn.execute(
                select(func.count()).where(
                    crowd_tasks.c.pool_id == self.pool["id"], crowd_tasks.c.remaining_overlap == 0
                )
            ).scalar_one()

    def fast_forward(self, target: int, through_api: bool) -> float:
        """Until ``target`` tasks are used up: every turn through the services, or the rows
        those turns write, in bulk (the same turn order and answers)."""
        t = time.perf_counter()
        if through_api:
            while self.used() < target:
                for _ in range(1_000):
                    if not self.one_turn(None, None):
                        break
            return time.perf_counter() - t
        pool_id, now = self.pool["id"], utcnow()
        n_workers = len(self.workers)
        with self.p.store.write() as conn:
            tasks = conn.execute(
                select(crowd_tasks.c.id, crowd_tasks.c.seq, crowd_tasks.c.remaining_overlap)
                .where(crowd_tasks.c.pool_id == pool_id, crowd_tasks.c.remaining_overlap > 0)
                .order_by(crowd_tasks.c.seq)
            ).all()
            to_use = max(0, target - (self.n_tasks - len(tasks)))
            assignments: list[dict[str, Any]] = []
            answers: list[dict[str, Any]] = []
            for task in tasks[:to_use]:
                had = {
                    r.user_id
                    for r in conn.execute(
                        select(crowd_answers.c.user_id).where(crowd_answers.c.task_id == task.id)
                    )
                }
                for _ in range(task.remaining_overlap):
                    worker = self.workers[self.turn % n_workers]
                    while worker in had:  # what issuing does: the next task is for someone else
                        self.turn += 1
                        worker = self.workers[self.turn % n_workers]
                    had.add(worker)
                    self.turn += 1
                    aid = new_id()
                    label = {"label": LABELS[self.turn % 3]}
                    assignments.append(
                        {
                            "id": aid,
                            "app_id": self.scope.app_id,
                            "pool_id": pool_id,
                            "suite_id": new_id(),
                            "user_id": worker,
                            "status": "SUBMITTED",
                            "task_ids": [task.id],
                            "solutions": [{"output_values": label}],
                            "reward": 0.01,
                            "mixed": True,
                            "automerged": False,
                            "public_comment": None,
                            "created_at": now,
                            "expires_at": now + timedelta(seconds=600),
                            "submitted_at": now,
                        }
                    )
                    answers.append(
                        {
                            "assignment_id": aid,
                            "position": 0,
                            "task_id": task.id,
                            "pool_id": pool_id,
                            "user_id": worker,
                            "kind": "real",
                            "status": "SUBMITTED",
                            "output_values": label,
                            "score": None,
                            "submitted_at": now,
                        }
                    )
                if len(assignments) >= 20_000:
                    conn.execute(insert(crowd_assignments), assignments)
                    conn.execute(insert(crowd_answers), answers)
                    assignments, answers = [], []
            if assignments:
                conn.execute(insert(crowd_assignments), assignments)
                conn.execute(insert(crowd_answers), answers)
            if to_use:
                conn.execute(
                    update(crowd_tasks)
                    .where(
                        crowd_tasks.c.pool_id == pool_id,
                        crowd_tasks.c.seq <= tasks[to_use - 1].seq,
                    )
                    .values(remaining_overlap=0)
                )
        # a pool that got here turn by turn had its WAL copied back along the way; do it
        # now, so that the next window does not read through a WAL of the whole bulk write
        with self.p.store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return time.perf_counter() - t


@contextmanager
def raw_db(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        yield conn
    finally:
        conn.close()


def floor(db: Path, pool_id: str, n: int) -> list[float]:
    """``n`` write transactions, each a point lookup and update of one task by its id."""
    with raw_db(db) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM crowd_tasks WHERE pool_id = ? ORDER BY random() LIMIT ?",
                (pool_id, n),
            )
        ]
        out = []
        for tid in ids:
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "SELECT seq, remaining_overlap, input_values FROM crowd_tasks WHERE id = ?", (tid,)
            ).fetchone()
            conn.execute(
                "UPDATE crowd_tasks SET remaining_overlap = remaining_overlap WHERE id = ?", (tid,)
            )
            conn.execute("COMMIT")
            out.append(time.perf_counter() - t)
    return out


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{pct(values, p) * 1000:6.2f}" for p in (50, 95, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000, help="tasks in the pool")
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=10, help="turns of every worker per window")
    ap.add_argument(
        "--through-api",
        action="store_true",
        help="reach the later windows by playing every turn (slow), not by bulk rows",
    )
    args = ap.parse_args()
    print(
        f"crowd issuing: a pool of {args.n:,} tasks (overlap {OVERLAP}), {args.workers} workers "
        f"taking turns to request and submit, {args.rounds} turns each per window, SQLite"
    )
    print("  latency in ms, p50 / p95 / p99")
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", bootstrap_api_key=BENCH_KEY)
        with Platform(settings, workers=0, lock=None) as p:
            b = Bench(p, args.n, args.workers)
            db = Path(str(p.store.engine.url.database))
            row("pool set up (create_tasks)", f"{b.setup_s:.1f} s")
            ratios = []
            for name, frac in (("start", 0.0), ("half used", 0.5), ("near the end", 0.95)):
                target = int(args.n * frac)
                if target > b.used():
                    dt = b.fast_forward(target, args.through_api)
                    row(f"fast-forward to {target:,} tasks used", f"{dt:.1f} s")
                used = b.used()
                req, sub, cpu = b.window(args.rounds)
                base = floor(db, b.pool["id"], len(req))
                print(f"  -- {name}: {used:,} of {args.n:,} tasks used up")
                row("request_assignment", ms(req))
                row("submit_assignment", ms(sub))
                # CPU time of this thread: what a turn costs, whatever else the machine runs
                row("request + submit, CPU time of the thread", ms(cpu))
                row("raw floor: point lookup + update, 1 txn", ms(base))
                if req and base:
                    r = (pct(req, 50) + pct(sub, 50)) / pct(base, 50)
                    ratios.append(r)
                    row("(request + submit) / floor, p50", f"{r:.1f}x")
            row(
                "assignments issued and answered via services",
                f"{b.issued:,} in {b.api_s:.1f} s = {b.issued / b.api_s:,.0f}/s",
            )
            if len(ratios) == 3:
                row("p50 near the end / at the start", f"{ratios[2] / ratios[0]:.2f}x")


if __name__ == "__main__":
    main()
