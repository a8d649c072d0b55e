"""k-means: the ``cluster`` job end to end against raw faiss and scikit-learn, same run.

Data: N seeded float32 vectors (default 200,000 x 384) drawn around K Gaussian blobs
(scikit-learn ``make_blobs``'s defaults: centers uniform in [-10, 10], ``--std`` 1.0).
They are inserted into a dataset of an in-process platform (SQLite, one worker thread);
then, in interleaved rounds (best of ``--rounds`` kept for each side):

- **job**: a ``cluster`` job (k=K, n_iter=10, n_init=1) submitted to the job engine and
  followed to completion: reading the vectors, k-means, storing the centroids and writing
  the N labels into the documents. Its wall time is the job's ``created_at`` to
  ``finished_at``; its phases come from its progress events. Each round uses a new alias,
  so every round writes all N labels.
- **raw faiss**: ``faiss.Kmeans`` on all points in memory (``niter=10``, ``nredo=1``,
  ``max_points_per_centroid`` high enough not to subsample), plus the search that gives
  each point its label and the inertia.
- **scikit-learn** ``KMeans`` (k-means++, ``n_init=1``, ``max_iter=10``), once.

Targets: job <= 1.3x raw faiss time, >= 5x faster than scikit-learn, inertia within 1% of
scikit-learn's (lower is fine).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from common import row
from sklearn.cluster import KMeans as SkKMeans

from taskloom.config import Settings
from taskloom.runtime import Platform

KEY = "tlk_bench_key_0123456789abcdefghij"
FIELD = "emb_vector_"


def make_data(n: int, dim: int, k: int, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, dim)).astype(np.float32)
    x = centers[rng.integers(0, k, n)]
    x += std * rng.standard_normal((n, dim), dtype=np.float32)
    return x


def raw_faiss(x: np.ndarray, k: int, seed: int) -> tuple[float, float]:
    n, d = x.shape
    t = time.perf_counter()
    km = faiss.Kmeans(
        d,
        k,
        niter=10,
        nredo=1,
        seed=seed,
        spherical=False,
        max_points_per_centroid=math.ceil(n / k) + 1,
    )
    km.train(x)
    dist, _ = km.index.search(x, 1)
    return time.perf_counter() - t, float(np.maximum(dist, 0).sum(dtype=np.float64))


def sklearn(x: np.ndarray, k: int, seed: int) -> tuple[float, float, int]:
    t = time.perf_counter()
    km = SkKMeans(k, init="k-means++", n_init=1, max_iter=10, random_state=seed).fit(x)
    return time.perf_counter() - t, float(km.inertia_), int(km.n_iter_)


class JobRunner:
    """An in-process platform with one worker thread and the vectors in one dataset."""

    def __init__(self, x: np.ndarray) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="taskloom-bench-cluster-")
        settings = Settings(data_dir=Path(self.tmp.name), bootstrap_api_key=KEY)
        self.platform = Platform(settings, workers=1, lock=None).start()
        s = self.platform.services
        self.services = s
        self.scope = s.auth.scope(s.auth.authenticate(KEY))
        s.datasets.create(self.scope, "bench")
        t = time.perf_counter()
        for i in range(0, len(x), 10_000):
            batch = [{"_id": f"d{j}", FIELD: x[j]} for j in range(i, min(len(x), i + 10_000))]
            s.documents.insert(self.scope, "bench", batch)
        self.insert_s = time.perf_counter() - t

    def run(self, k: int, seed: int, alias: str) -> tuple[float, float, dict[str, float], dict]:
        s = self.services
        params = {
            "vector_field": FIELD,
            "n_clusters": k,
            "n_iter": 10,
            "n_init": 1,
            "alias": alias,
            "random_state": seed,
            "refresh": True,
        }
        job, _ = s.jobs.submit(self.scope, "cluster", params, dataset="bench")
        while True:
            job = s.jobs.get(self.scope, job["id"])
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.1)  # the timing comes from the job's own timestamps
        assert job["status"] == "completed", job["error"]
        wall = (job["finished_at"] - job["created_at"]).total_seconds()
        return wall, job["result"]["inertia"], self.phases(job), job["result"]

    def phases(self, job: dict) -> dict[str, float]:
        """Seconds between the job's progress messages: read, k-means, store, labels."""
        marks = [("start", job["started_at"])]
        for e in self.services.jobs.events(self.scope, job["id"]):
            msg = e["message"] or ""
            for name, prefix in [
                ("read", "reading emb"),
                ("k-means", "k-means"),
                ("store", "storing"),
                ("labels", "writing labels 0/"),
            ]:
                if msg.startswith(prefix):
                    marks.append((name, e["at"]))
        marks.append(("end", job["finished_at"]))
        out: dict[str, float] = {}
        for (name, at), (_, nxt) in zip(marks, marks[1:], strict=False):
            out[name] = out.get(name, 0.0) + (nxt - at).total_seconds()
        return out

    def close(self) -> None:
        self.platform.stop()
        self.tmp.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--std", type=float, default=1.0, help="blob standard deviation")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn (slow)")
    args = ap.parse_args()
    n, k = args.n, args.k
    print(
        f"k-means: {n:,} x {args.dim} float32, {k} blobs (std {args.std}), k={k}, "
        f"n_iter=10, n_init=1; faiss threads: {faiss.omp_get_max_threads()}"
    )
    x = make_data(n, args.dim, k, args.std, args.seed)
    runner = JobRunner(x)
    row("loading the dataset (not timed below)", f"{runner.insert_s:.1f} s")
    job_best = faiss_best = math.inf
    job_inertia = faiss_inertia = math.nan
    job_phases: dict[str, float] = {}
    job_result: dict = {}
    try:
        for r in range(args.rounds):
            f_s, f_in = raw_faiss(x, k, args.seed + r)
            j_s, j_in, phases, result = runner.run(k, args.seed + r, f"bench{r}")
            print(f"  round {r + 1}: job {j_s:.2f} s, raw faiss {f_s:.2f} s", flush=True)
            if f_s < faiss_best:
                faiss_best, faiss_inertia = f_s, f_in
            if j_s < job_best:
                job_best, job_inertia, job_phases, job_result = j_s, j_in, phases, result
    finally:
        runner.close()
    row("cluster job (best round), wall", f"{job_best:.2f} s, inertia {job_inertia:,.0f}")
    row(
        "  phases",
        ", ".join(f"{name} {sec:.2f} s" for name, sec in job_phases.items() if sec >= 0.005),
    )
    row("  k-means iterations", str(job_result.get("n_iter")))
    row(
        "raw faiss.Kmeans + assign (best round)",
        f"{faiss_best:.2f} s, inertia {faiss_inertia:,.0f}",
    )
    ratio = job_best / faiss_best
    row(
        "job / raw faiss time",
        f"{ratio:.2f}x (target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})",
    )
    if not args.no_sklearn:
        sk_s, sk_in, sk_iter = sklearn(x, k, args.seed)
        row(
            "scikit-learn KMeans (k-means++)",
            f"{sk_s:.2f} s, inertia {sk_in:,.0f}, {sk_iter} iterations",
        )
        speedup = sk_s / job_best
        row(
            "job speed-up over scikit-learn",
            f"{speedup:.1f}x (target >= 5x: {'met' if speedup >= 5 else 'NOT met'})",
        )
        rel = job_inertia / sk_in - 1
        row(
            "job inertia vs scikit-learn",
            f"{rel * 100:+.2f}% (target within 1%: {'met' if rel <= 0.01 else 'NOT met'})",
        )
        row("raw faiss inertia vs scikit-learn", f"{(faiss_inertia / sk_in - 1) * 100:+.2f}%")


if __name__ == "__main__":
    main()
