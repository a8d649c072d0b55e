"""Mixed load: searches, gets, small inserts and job polls against a real server process.

A fresh ``taskloom serve`` on 127.0.0.1 (SQLite unless TASKLOOM_DATABASE_URL is set) holds
a dataset of ``-n`` documents with a 384-d vector field (embedding-like, as in
``bench_search``). ``--clients`` asyncio clients on one ``httpx.AsyncClient`` (its pool
bounded to the number of clients) send requests back to back for ``--seconds``, each
picking its next request by the mix:

* read-only: 40 % search (exact, top 10), 50 % get (one document by id), 10 % job polls;
* with writes: 40 % search, 40 % get, 10 % insert (a batch of ``--batch`` new documents),
  10 % job polls, as users see it in production.

For each phase: requests/s, and per operation the count, p50, p99 and errors (any answer
but 2xx, or a transport error). Target: search p50 with writes <= 2x read-only, 0 errors.

    python bench/bench_mixed.py                   # -n 50000 --clients 32 --seconds 20
    python bench/bench_mixed.py -n 200000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import time
from collections import defaultdict

import httpx
import numpy as np
from common import Server, pct, row

DIM = 384
DATASET = "mixed"
READ_ONLY = {"search": 40, "get": 50, "poll": 10}
WITH_WRITES = {"search": 40, "get": 40, "insert": 10, "poll": 10}


def make_vectors(n: int, seed: int) -> np.ndarray:
    """Embedding-like vectors: low intrinsic dimension, noise, unit length."""
    mix = np.random.default_rng(1234).standard_normal((32, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 32)).astype(np.float32)
    x = z @ mix + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def f32(v: np.ndarray) -> dict[str, str]:
    return {"$f32": base64.b64encode(v.astype("<f4").tobytes()).decode()}


def load(srv: Server, n: int) -> list[str]:
    """The dataset, a few finished jobs to poll; returns the job ids."""
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    with httpx.Client(base_url=srv.url, headers=headers, timeout=300) as c:
        c.post("/v1/datasets", json={"name": DATASET}).raise_for_status()
        for start in range(0, n, 5000):
            x = make_vectors(min(5000, n - start), seed=start + 1)
            docs = [
                {"_id": f"doc-{start + i}", "n": start + i, "emb_vector_": f32(v)}
                for i, v in enumerate(x)
            ]
            c.post(f"/v1/datasets/{DATASET}/documents", json={"documents": docs}).raise_for_status()
        jobs = [
            c.post("/v1/jobs", json={"kind": "noop", "params": {}}).json()["id"] for _ in range(8)
        ]
        # the first search loads the field: not part of the load measured below
        q = {"vector": f32(make_vectors(1, 0)[0]), "vector_field": "emb_vector_", "top_k": 10}
        c.post(f"/v1/datasets/{DATASET}/search", json=q, timeout=600).raise_for_status()
    return jobs


async def phase(
    srv: Server, mix: dict[str, int], args: argparse.Namespace, jobs: list[str], tag: str
) -> dict[str, object]:
    rng = random.Random(7)
    queries = [f32(v) for v in make_vectors(256, seed=999)]
    new_vecs = make_vectors(512, seed=4242)
    ops, weights = zip(*mix.items(), strict=True)
    times: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    samples: dict[str, str] = {}
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    async with httpx.AsyncClient(
        base_url=srv.url, headers=headers, limits=limits, timeout=120
    ) as client:

        def request(op: str) -> tuple[str, str, dict | None]:
            if op == "search":
                body = {"vector": rng.choice(queries), "vector_field": "emb_vector_", "top_k": 10}
                return "POST", f"/v1/datasets/{DATASET}/search", body
            if op == "get":
                return "GET", f"/v1/datasets/{DATASET}/documents/doc-{rng.randrange(args.n)}", None
            if op == "insert":
                k = next(counter)
                docs = [
                    {
                        "_id": f"{tag}-{k}-{j}",
                        "n": -k,
                        "emb_vector_": f32(new_vecs[(k * args.batch + j) % len(new_vecs)]),
                    }
                    for j in range(args.batch)
                ]
                return "POST", f"/v1/datasets/{DATASET}/documents", {"documents": docs}
            return "GET", f"/v1/jobs/{rng.choice(jobs)}", None

        async def one_client(deadline: float) -> None:
            while time.perf_counter() < deadline:
                op = rng.choices(ops, weights)[0]
                method, url, body = request(op)
                t = time.perf_counter()
                try:
                    r = await client.request(method, url, json=body)
                    ok = r.is_success
                    if not ok:
                        samples.setdefault(op, f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    ok = False
                    samples.setdefault(op, repr(exc))
                dt = time.perf_counter() - t
                if time.perf_counter() < deadline:  # the last, cut-off requests do not count
                    times[op].append(dt)
                    if not ok:
                        errors[op] += 1

        # a short warm-up, then the measured run
        await asyncio.gather(*(one_client(time.perf_counter() + 2) for _ in range(args.clients)))
        times.clear()
        errors.clear()
        start = time.perf_counter()
        deadline = start + args.seconds
        await asyncio.gather(*(one_client(deadline) for _ in range(args.clients)))
        elapsed = time.perf_counter() - start
    total = sum(len(v) for v in times.values())
    print(f"\n  {tag}: {', '.join(f'{k} {v} %' for k, v in mix.items())}")
    row("requests/s", f"{total / elapsed:,.1f}")
    for op in mix:
        t = times.get(op, [])
        if not t:
            row(op, "none")
            continue
        row(
            f"{op}: n, p50, p99, errors",
            f"{len(t):>6}  {pct(t, 50) * 1000:8.1f} ms  {pct(t, 99) * 1000:8.1f} ms  {errors[op]}",
        )
    for op, sample in samples.items():
        row(f"  first error of {op}", sample)
    return {"p50": {op: pct(t, 50) for op, t in times.items() if t}, "errors": sum(errors.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50_000, help="documents in the dataset")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--batch", type=int, default=5, help="documents per insert")
    ap.add_argument("--workers", type=int, default=2, help="the server's job worker threads")
    args = ap.parse_args()
    print(
        f"mixed load: {args.n:,} x {DIM} documents, {args.clients} clients, "
        f"{args.seconds:g} s per phase, inserts of {args.batch}"
    )
    with Server(workers=args.workers) as srv:
        t = time.perf_counter()
        jobs = load(srv, args.n)
        row("load (not timed below)", f"{time.perf_counter() - t:.1f} s")
        ro = asyncio.run(phase(srv, READ_ONLY, args, jobs, "read-only"))
        rw = asyncio.run(phase(srv, WITH_WRITES, args, jobs, "with writes"))
    ratio = rw["p50"]["search"] / ro["p50"]["search"]  # type: ignore[index]
    print()
    row("search p50, with writes / read-only (target <= 2)", f"{ratio:.2f}")
    row("errors (target 0)", str(int(ro["errors"]) + int(rw["errors"])))  # type: ignore[call-overload]


if __name__ == "__main__":
    main()
