"""Vector search: the search service in-process against raw faiss, in the same run.

200,000 x 384 float32 seeded synthetic vectors (embedding-like: a 32-d latent space mapped
into 384-d plus noise, normalised) are inserted through ``DocumentService``; only searches
are timed. Reported:

* exact search, 1,000 queries, top 10, one query per call on both sides: the service
  (``SearchService.search``: dataset lookup, change check, faiss ``IndexFlat``, documents
  read back) against a raw faiss ``IndexFlat`` of the same metric over the same matrix.
  Both sides take turns in blocks of queries so that noise from other processes falls on
  both; each side's total over all blocks is compared. Target: >= 0.8x raw queries/s.
* HNSW through the service (``index="hnsw"``): recall@10 against the exact answers and
  queries/s, for a few ``ef_search`` values. Target: recall@10 >= 0.98 at the default.
* the first search after a write of one document (an updated vector, an insert, a delete:
  the change check and the index update) against the search after it, exact and HNSW.
  Target: <= 2x the steady search.
* for information: the first search (loading the field and building the index) and the
  time the background HNSW build takes.

    python bench/bench_search.py            # -n 200000 --queries 1000
    python bench/bench_search.py -n 20000 --queries 200 --metrics cosine   # a quick look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from common import row

from taskloom.config import Settings
from taskloom.runtime import Platform
from taskloom.vectors import metrics
from taskloom.vectors.faiss_index import threads

DIM = 384
KEY = "tlk_bench_search_0123456789abcdefghij"


def make_vectors(n: int, seed: int) -> np.ndarray:
    """Embedding-like vectors: low intrinsic dimension, noise, unit length."""
    mix = np.random.default_rng(1234).standard_normal((32, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), np.float32)
    for start in range(0, n, 50_000):
        m = min(50_000, n - start)
        z = rng.standard_normal((m, 32)).astype(np.float32)
        x = z @ mix + 0.5 * rng.standard_normal((m, DIM)).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def raw_index(metric: str, x: np.ndarray) -> faiss.Index:
    fm = {"l2": faiss.METRIC_L2, "l1": faiss.METRIC_L1}.get(metric, faiss.METRIC_INNER_PRODUCT)
    index = faiss.IndexFlat(DIM, fm)
    index.add(metrics.normalize(x) if metric == "cosine" else x)
    return index


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--metrics", default="cosine,l2")
    ap.add_argument("--block", type=int, default=50, help="queries per turn of each side")
    ap.add_argument("--ef", default="64,128,256", help="ef_search values to sweep")
    ap.add_argument("--no-hnsw", action="store_true")
    ap.add_argument("--writes", type=int, default=10, help="rounds of each write kind")
    args = ap.parse_args()
    n, nq = args.n, args.queries
    x = make_vectors(n, seed=0)
    queries = make_vectors(nq, seed=1)
    print(f"vector search: {n:,} x {DIM} float32, {nq:,} queries, top 10, one query per call")

    with tempfile.TemporaryDirectory(prefix="taskloom-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", bootstrap_api_key=KEY)
        platform = Platform(settings, workers=0, lock=None).start()
        try:
            run(platform, x, queries, args)
        finally:
            platform.stop()


def run(platform: Platform, x: np.ndarray, queries: np.ndarray, args: argparse.Namespace) -> None:
    services = platform.services
    scope = services.auth.scope(services.auth.authenticate(KEY))
    services.datasets.create(scope, "bench")
    t = time.perf_counter()
    for start in range(0, len(x), 5000):
        services.documents.insert(
            scope,
            "bench",
            [
                {"_id": f"doc-{i}", "n": i, "emb_vector_": x[i]}
                for i in range(start, min(len(x), start + 5000))
            ],
        )
    row("load (DocumentService, not timed below)", f"{time.perf_counter() - t:.1f} s")
    row("faiss threads per search, both sides", str(services.search.threads or "all"))
    search = services.search.search
    top: dict[str, list[list[str]]] = {}

    for metric in args.metrics.split(","):
        kw = {"vector_field": "emb_vector_", "metric": metric, "top_k": 10, "index": "flat"}
        t = time.perf_counter()
        search(scope, "bench", vector=queries[0], **kw)
        first = time.perf_counter() - t
        raw = raw_index(metric, x)
        prepared = metrics.normalize(queries) if metric == "cosine" else queries
        svc_time = raw_time = 0.0
        got: list[list[str]] = []
        want: list[list[int]] = []
        for start in range(0, len(queries), args.block):
            block = range(start, min(len(queries), start + args.block))
            t = time.perf_counter()
            for i in block:
                res = search(scope, "bench", vector=queries[i], **kw)
                got.append([h["_id"] for h in res["data"]])
            svc_time += time.perf_counter() - t
            with threads(services.search.threads):  # as many faiss threads as the service
                t = time.perf_counter()
                for i in block:
                    _, labels = raw.search(prepared[i : i + 1], 10)
                    want.append(labels[0].tolist())
                raw_time += time.perf_counter() - t
        del raw
        same = sum(g == [f"doc-{j}" for j in w] for g, w in zip(got, want, strict=True))
        svc_qps, raw_qps = len(queries) / svc_time, len(queries) / raw_time
        print(f"\n  exact, {metric}")
        row("first search (load field + build flat index)", f"{first:.2f} s")
        row("service queries/s", f"{svc_qps:,.1f}")
        row("raw faiss IndexFlat queries/s", f"{raw_qps:,.1f}")
        row("service / raw (target >= 0.8)", f"{svc_qps / raw_qps:.3f}")
        row("identical top 10 (service vs raw)", f"{same}/{len(queries)}")
        top[metric] = got

    metric = args.metrics.split(",")[0]
    exact = top[metric]
    after_write(services, scope, x, queries, metric, "flat", args.writes)

    if args.no_hnsw:
        return
    kw = {"vector_field": "emb_vector_", "metric": metric, "top_k": 10, "index": "hnsw"}
    cache = services.search.cache
    t = time.perf_counter()
    first = search(scope, "bench", vector=queries[0], **kw)  # starts the background build
    first_s = time.perf_counter() - t
    services.search.build_index(
        scope, "bench", vector_field="emb_vector_", metric=metric, index="hnsw", wait=True
    )
    build = time.perf_counter() - t
    print(f"\n  HNSW ({metric}, M={cache.hnsw.m}, efConstruction={cache.hnsw.ef_construction})")
    row(f"first search (answered by {first['index']} while HNSW builds)", f"{first_s:.2f} s")
    row("background HNSW build, until ready", f"{build:.1f} s")
    efs = [int(e) for e in args.ef.split(",") if e] or [cache.hnsw.ef_search]
    for ef in efs:
        hits = 0
        t = time.perf_counter()
        for i, q in enumerate(queries):
            res = search(scope, "bench", vector=q, ef_search=ef, **kw)
            hits += len({h["_id"] for h in res["data"]} & set(exact[i]))
        dt = time.perf_counter() - t
        default = " (default)" if ef == cache.hnsw.ef_search else ""
        row(
            f"ef_search={ef}{default} recall@10 (target >= 0.98)",
            f"{hits / (10 * len(queries)):.4f}",
        )
        row(f"ef_search={ef}{default} service queries/s", f"{len(queries) / dt:,.1f}")
    after_write(services, scope, x, queries, metric, "hnsw", args.writes)


def after_write(
    services: object,
    scope: object,
    x: np.ndarray,
    queries: np.ndarray,
    metric: str,
    index: str,
    rounds: int,
) -> None:
    """The first search after a write of one document (an update of its vector, an insert,
    a delete) against the search after it, the median of ``rounds`` of each. Target: the
    first <= 2x the steady one."""
    search = services.search.search  # type: ignore[attr-defined]
    docs = services.documents  # type: ignore[attr-defined]
    kw = {"vector_field": "emb_vector_", "metric": metric, "top_k": 10, "index": index}
    print(f"\n  after a write ({metric}, {index}; median of {rounds})")
    writes = {
        "updating one document's vector": lambda i: docs.update(
            scope, "bench", [{"_id": f"doc-{i}", "emb_vector_": queries[i % len(queries)]}]
        ),
        "inserting one document": lambda i: docs.insert(
            scope, "bench", [{"_id": f"new-{index}-{i}", "n": -i, "emb_vector_": queries[i % 7]}]
        ),
        "deleting one document": lambda i: docs.delete(scope, "bench", [f"new-{index}-{i}"]),
    }
    for name, write in writes.items():
        first, steady = [], []
        for i in range(1, rounds + 1):
            write(i)
            t = time.perf_counter()
            res = search(scope, "bench", vector=queries[i % len(queries)], **kw)
            first.append(time.perf_counter() - t)
            t = time.perf_counter()
            search(scope, "bench", vector=queries[i % len(queries)], **kw)
            steady.append(time.perf_counter() - t)
            if name.startswith("updating"):  # the index answers with the new vector
                assert res["data"][0]["_id"] == f"doc-{i}", res["data"][0]["_id"]
        f, st = float(np.median(first)), float(np.median(steady))
        row(f"first search after {name}", f"{f * 1000:.1f} ms")
        row("  the search after it", f"{st * 1000:.1f} ms")
        row("  first / steady (target <= 2)", f"{f / st:.2f}")
    for i in range(1, rounds + 1):  # put the vectors back for the next part
        docs.update(scope, "bench", [{"_id": f"doc-{i}", "emb_vector_": x[i]}])


if __name__ == "__main__":
    main()
