"""noop jobs through a real server: submit -> completed latency (p50/p95) and jobs/s.

Two runs: ``sequential`` submits one job and waits for it before the next (the latency a
user sees), ``burst`` submits all jobs at once and measures throughput. Latency is the
server's own finished_at - created_at, plus the client-observed round trip in sequential.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from common import Server, pct, row

from taskloom import Client


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def sequential(c: Client, n: int) -> None:
    server_lat, client_lat = [], []
    for _ in range(n):
        t = time.perf_counter()
        job = c.jobs.submit("noop")
        job.wait(poll_interval=0.01)
        client_lat.append(time.perf_counter() - t)
        assert job.status == "completed", job
        server_lat.append(_ts(job.finished_at) - _ts(job.created_at))
    row("sequential: server submit->completed p50", f"{pct(server_lat, 50) * 1000:.1f} ms")
    row("sequential: server submit->completed p95", f"{pct(server_lat, 95) * 1000:.1f} ms")
    row("sequential: client submit->seen completed p50", f"{pct(client_lat, 50) * 1000:.1f} ms")
    row("sequential: client submit->seen completed p95", f"{pct(client_lat, 95) * 1000:.1f} ms")
    target = pct(server_lat, 50) <= 0.050
    row("target p50 <= 50 ms", "met" if target else "NOT met")


def burst(c: Client, n: int) -> None:
    t = time.perf_counter()
    ids = [c.jobs.submit("noop").id for _ in range(n)]
    submitted = time.perf_counter() - t
    while True:
        active = c.jobs.list(active_only=True, kind="noop", limit=1)
        if not active:
            break
        time.sleep(0.05)
    total = time.perf_counter() - t
    jobs = [c.jobs.get(i) for i in ids]
    assert all(j.status == "completed" for j in jobs)
    lat = [_ts(j.finished_at) - _ts(j.created_at) for j in jobs]
    span = max(_ts(j.finished_at) for j in jobs) - min(_ts(j.created_at) for j in jobs)
    row("burst: submit rate", f"{n / submitted:,.0f} jobs/s")
    row("burst: completed throughput", f"{n / span:,.0f} jobs/s ({total:.2f} s wall)")
    row(
        "burst: submit->completed p50 / p95",
        f"{pct(lat, 50) * 1000:.0f} / {pct(lat, 95) * 1000:.0f} ms",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()
    print(f"noop jobs: {args.n:,} through `taskloom serve` (2 in-process workers, SQLite)")
    with Server(workers=2) as srv, Client(url=srv.url, api_key=srv.api_key) as c:
        sequential(c, args.n)
        burst(c, args.n)


if __name__ == "__main__":
    main()
