"""Crowd task creation: 100,000 tasks in synchronous batches of 5,000, each item checked
against the project's input and output specs, through ``services.crowd.tasks.create_many`` on
SQLite; against a raw driver ``executemany`` of the same rows into the same table, without
any checking, in the same run."""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from common import BENCH_KEY, row
from sqlalchemy import create_engine

from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.store.tables import metadata
from taskloom.store.types import utcnow

INPUT = {
    "image": {"type": "url"},
    "caption": {"type": "string", "max_length": 200},
    "rank": {"type": "integer", "min_value": 0, "required": False},
}
OUTPUT = {
    "label": {"type": "string", "allowed_values": ["cat", "dog", "other"]},
    "sure": {"type": "boolean", "required": False},
}


def make_items(n: int, pool_id: str) -> list[dict]:
    """Tasks as a client sends them; every tenth one is a control task."""
    items = []
    for i in range(n):
        item = {
            "pool_id": pool_id,
            "input_values": {
                "image": f"https://images.example.com/{i}.jpg",
                "caption": f"photo number {i}",
                "rank": i % 100,
            },
            "overlap": 3,
        }
        if i % 10 == 0:
            item["known_solutions"] = [{"output_values": {"label": "cat"}, "correctness_weight": 1}]
        items.append(item)
    return items


def bench_taskloom(n: int, batch: int) -> float:
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", bootstrap_api_key=BENCH_KEY)
        with Platform(settings, workers=0, lock=None) as p:
            auth, crowd = p.services.auth, p.services.crowd
            scope = auth.scope(auth.authenticate(BENCH_KEY))
            project = crowd.projects.create(
                scope,
                {"public_name": "bench", "task_spec": {"input_spec": INPUT, "output_spec": OUTPUT}},
            )
            pool = crowd.pools.create(
                scope,
                {
                    "project_id": project["id"],
                    "private_name": "bench",
                    "reward_per_assignment": 0.01,
                    "assignment_max_duration_seconds": 600,
                    "will_expire": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                },
            )
            items = make_items(n, pool["id"])
            t = time.perf_counter()
            for start in range(0, n, batch):
                out = crowd.tasks.create_many(scope, items[start : start + batch])
                assert not out["validation_errors"] and len(out["items"]) == len(
                    items[start : start + batch]
                )
            dt = time.perf_counter() - t
            assert len(crowd.tasks.list(scope, pool_id=pool["id"], limit=100_000)["data"]) == n
    return dt


def bench_raw(n: int, batch: int) -> float:
    """The floor: the same rows (ids, JSON) by the driver's executemany, one transaction a
    batch, into the same table in a database with taskloom's settings; no checks."""
    with tempfile.TemporaryDirectory(prefix="taskloom-raw-") as tmp:
        eng = create_engine(f"sqlite:///{Path(tmp) / 'raw.db'}")
        with eng.begin() as conn:
            conn.exec_driver_sql("PRAGMA page_size=8192")
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        metadata.create_all(eng)
        now = utcnow()
        with eng.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO users (id, name, is_admin, created_at) VALUES ('u', 'u', 0, ?)",
                (now.strftime("%Y-%m-%d %H:%M:%S.%f"),),
            )
            conn.exec_driver_sql(
                "INSERT INTO apps (id, user_id, name, created_at) VALUES ('a', 'u', 'a', ?)",
                (now.strftime("%Y-%m-%d %H:%M:%S.%f"),),
            )
            conn.exec_driver_sql(
                "INSERT INTO crowd_projects VALUES ('p', 'a', 'ACTIVE', '{}', ?, ?)", (now, now)
            )
            conn.exec_driver_sql(
                "INSERT INTO crowd_pools VALUES ('pool', 'a', 'p', 'CLOSED', '{}', ?, ?)",
                (now, now),
            )
        items = make_items(n, "pool")
        ts = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        dumps = orjson.dumps
        t = time.perf_counter()
        for start in range(0, n, batch):
            rows = [
                (
                    str(uuid.uuid4()),
                    "a",
                    it["pool_id"],
                    None,
                    "golden" if "known_solutions" in it else "real",
                    dumps(it["input_values"]).decode(),
                    dumps(it["known_solutions"]).decode() if "known_solutions" in it else None,
                    None,
                    None,
                    it["overlap"],
                    it["overlap"],
                    False,
                    None,
                    None,
                    None,
                    ts,
                )
                for it in items[start : start + batch]
            ]
            with eng.begin() as conn:
                conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                conn.exec_driver_sql(
                    "INSERT INTO crowd_tasks (id, app_id, pool_id, suite_id, kind, input_values, "
                    "known_solutions, baseline_solutions, message_on_unknown_solution, overlap, "
                    "remaining_overlap, infinite_overlap, origin_task_id, reserved_for, "
                    "unavailable_for, created_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        dt = time.perf_counter() - t
        eng.dispose()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(
        f"crowd tasks: {args.n:,} tasks in synchronous batches of {args.batch:,}, "
        "checked against the spec, SQLite"
    )
    # a shared machine drifts: interleave the two, keep each one's best
    raws, ours = [], []
    for _ in range(args.rounds):
        raws.append(bench_raw(args.n, args.batch))
        ours.append(bench_taskloom(args.n, args.batch))
    raw, mine = min(raws), min(ours)
    rounds = ", ".join(
        f"{args.n / r:,.0f}/{args.n / s:,.0f}" for r, s in zip(raws, ours, strict=True)
    )
    row("each round (raw/taskloom tasks/s)", rounds)
    row("raw driver executemany (same table), best", f"{args.n / raw:,.0f} tasks/s ({raw:.2f} s)")
    row("taskloom create_tasks with checks, best", f"{args.n / mine:,.0f} tasks/s ({mine:.2f} s)")
    row("taskloom / raw throughput", f"{raw / mine:.2f}x")
    row("target >= 10,000 tasks/s", "met" if args.n / mine >= 10_000 else "NOT met")


if __name__ == "__main__":
    main()
