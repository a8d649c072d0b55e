"""Task-model training: ``TabularClassifier`` (with the label join from keys) against calling
scikit-learn's ``HistGradientBoostingClassifier`` directly, same arrays, same run.

Data (seeded): a feature table of N keys x D float32 features and a correct-answer file
that labels every key ("yes"/"no", a logistic function of a few features plus noise),
in shuffled order, with 1% extra keys the table does not have.

Each side runs in its own subprocess, so the two never share a memory peak; both build the
same data first, then only the measured phase differs:

- **taskloom**: ``join_labels(keys, X, file_keys, file_labels)`` (hash join, rows gathered
  into float64) then ``TabularClassifier(...).fit``;
- **scikit-learn**: ``HistGradientBoostingClassifier(**same params).fit(X, y)`` on X with
  the labels already aligned to its rows (what a caller who had them would pass).
- **job** (``--job``): the whole ``train_task_model`` job of an in-process platform
  (SQLite, one worker thread): the feature table (built from a Parquet file in a bucket,
  not timed) and the correct-answer TSV in a bucket, plus a small separate test file so that
  every row of the table trains; timed from the job's creation to its end: reading the TSV
  from the bucket, reading the table's keys and matching them, reading the matched rows
  (straight into float64), the fit, evaluating on the test file and storing the skops
  artifact. A small job runs first, untimed (its time is
  reported apart): the first job of a fresh process imports scikit-learn and skops, which
  the direct side has imported before its timed phase too.

Reported per side: wall time of the phase, the phase's peak memory above the RSS it started
from (Linux: VmHWM reset through /proc/self/clear_refs, else a 5 ms RSS sampler), the
process's ru_maxrss, and boosting iterations. Early stopping is off by default so both
sides run the same number of trees. Target: taskloom <= 1.2x the direct call.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import row

MiB = 1024 * 1024


def make_data(n: int, d: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 2] * X[:, 3] + 0.5 * np.abs(X[:, 4]) - 0.4
    interested = rng.random(n) < 1 / (1 + np.exp(-logit))
    y = np.where(interested, "yes", "no").astype(object)
    keys = np.array([f"user-{i:07d}" for i in range(n)], dtype=object)
    order = rng.permutation(n)
    extra = max(1, n // 100)
    file_keys = np.concatenate([keys[order], [f"stranger-{i}" for i in range(extra)]])
    file_labels = np.concatenate([y[order], np.full(extra, "yes", dtype=object)])
    shuffle = rng.permutation(len(file_keys))
    return {
        "X": X,
        "y": y,
        "keys": keys,
        "file_keys": file_keys[shuffle],
        "file_labels": file_labels[shuffle],
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


class PeakMemory:
    """The peak RSS of a phase: VmHWM reset at its start where Linux allows, else sampled."""

    def __enter__(self) -> PeakMemory:
        self.start = _rss_bytes()
        self.exact = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.exact = _vm_hwm_bytes() <= self.start + 16 * MiB
        except OSError:
            pass
        self._stop = threading.Event()
        self.sampled = self.start
        if not self.exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.sampled = max(self.sampled, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            self.peak = _vm_hwm_bytes()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.sampled, _rss_bytes())


def run_job_side(n: int, d: int, seed: int, max_iter: int, early: bool | str) -> dict[str, Any]:
    """The ``train_task_model`` job end to end on an in-process platform."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from taskloom.config import Settings
    from taskloom.jobs.worker import Worker
    from taskloom.runtime import Platform

    data = make_data(n, d, seed)
    key = "tlk_bench_key_0123456789abcdefghij"
    out: dict[str, Any] = {"side": "job"}
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-train-") as tmp:
        folder = Path(tmp)
        cols = {"key": pa.array(data["keys"].astype(str))}
        cols.update({f"f{j}": pa.array(data["X"][:, j]) for j in range(d)})
        pq.write_table(pa.table(cols), folder / "features.parquet")
        # the warm-up job's data: the first 2,000 rows
        pq.write_table(pa.table(cols).slice(0, 2_000), folder / "warm.parquet")
        with open(folder / "warm.tsv", "w") as f:
            f.write("key\tlabel\n")
            f.writelines(
                f"{k}\t{v}\n" for k, v in zip(data["keys"][:2_000], data["y"][:2_000], strict=True)
            )
        with open(folder / "labels.tsv", "w") as f:
            f.write("key\tlabel\n")
            f.writelines(
                f"{k}\t{v}\n" for k, v in zip(data["file_keys"], data["file_labels"], strict=True)
            )
        with open(folder / "test.tsv", "w") as f:
            f.write("key\tlabel\n")
            f.writelines(
                f"{k}\t{v}\n"
                for k, v in zip(data["keys"][:10_000], data["y"][:10_000], strict=True)
            )
        del data, cols
        p = Platform(
            Settings(data_dir=folder / "data", bootstrap_api_key=key), workers=0, lock=None
        ).start()
        try:
            s = p.services
            scope = s.auth.scope(s.auth.authenticate(key))
            s.buckets.create(scope, "bench")
            for name in ("features.parquet", "labels.tsv", "test.tsv", "warm.parquet", "warm.tsv"):
                with open(folder / name, "rb") as f:
                    s.buckets.put(scope, "bench", name, f.read())
            table = s.features.create_from_file(scope, "users", "bench", "features.parquet", "key")
            body = {
                "name": "bench",
                "train_feature_id": table["id"],
                "train_bucket": "bench",
                "train_file_path": "labels.tsv",
                "test_bucket": "bench",
                "test_file_path": "test.tsv",
            }
            hp = {"max_iter": max_iter, "early_stopping": early if early is False else None}
            worker = Worker(s.jobs, services=s)
            # A first job on 2,000 rows, as a running server has done before: it pays the
            # one-time imports (scikit-learn, skops), which the direct side has also done
            # before its timed phase. Its time is reported apart.
            warm = s.features.create_from_file(scope, "warm", "bench", "warm.parquet", "key")
            t0 = time.perf_counter()
            s.models.create_task_model(
                scope,
                {
                    "name": "warm",
                    "train_feature_id": warm["id"],
                    "train_bucket": "bench",
                    "train_file_path": "warm.tsv",
                },
                hyperparameters={"max_iter": 5},
            )
            while worker.run_one():
                pass
            out["first_job_seconds"] = time.perf_counter() - t0
            with PeakMemory() as mem:
                t0 = time.perf_counter()
                tm = s.models.create_task_model(scope, body, hyperparameters=hp)
                while worker.run_one():
                    pass
                out["seconds"] = time.perf_counter() - t0
            tm = s.models.get_task_model(scope, tm["id"])
            assert tm["status"] == "completed", tm.get("error")
            job = s.jobs.get(scope, tm["job_id"])
            out.update(
                job_seconds=(job["finished_at"] - job["created_at"]).total_seconds(),
                roc_auc=tm["metrics"].get("roc_auc"),
                n_iter=tm["metrics"].get("n_iter", max_iter),
                peak_above_start_mib=(mem.peak - mem.start) / MiB,
                start_rss_mib=mem.start / MiB,
                peak_exact=mem.exact,
                ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            )
        finally:
            p.stop()
    return out


def run_side(
    side: str, n: int, d: int, seed: int, max_iter: int, early: bool | str
) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from taskloom.ml.join import join_labels
    from taskloom.ml.tabular import TabularClassifier, load, save

    if side == "job":
        return run_job_side(n, d, seed, max_iter, early)
    data = make_data(n, d, seed)
    params: dict[str, Any] = {"max_iter": max_iter, "early_stopping": early, "random_state": seed}
    out: dict[str, Any] = {"side": side}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        if side == "taskloom":
            joined = join_labels(data["keys"], data["X"], data["file_keys"], data["file_labels"])
            t_join = time.perf_counter() - t0
            model = TabularClassifier(**params).fit(joined.X, joined.y)
            out.update(join_s=t_join, rows=len(joined.y), unmatched=len(joined.unmatched))
            n_iter = model.n_iter_
        else:
            est = HistGradientBoostingClassifier(
                **TabularClassifier(**params).estimator_params()
            ).fit(data["X"], data["y"])
            out.update(rows=len(data["y"]))
            n_iter = int(est.n_iter_)
        out["seconds"] = time.perf_counter() - t0
    out.update(
        n_iter=n_iter,
        peak_above_start_mib=(mem.peak - mem.start) / MiB,
        start_rss_mib=mem.start / MiB,
        peak_exact=mem.exact,
        ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    if side == "taskloom":
        t = time.perf_counter()
        blob = save(model)
        out["save_s"] = time.perf_counter() - t
        out["artifact_mib"] = len(blob) / MiB
        t = time.perf_counter()
        again = load(blob)
        out["load_s"] = time.perf_counter() - t
        sample = data["X"][:100_000]
        out["reload_identical"] = bool(
            np.array_equal(again.predict_proba(sample), model.predict_proba(sample))
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=50)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--early-stopping", action="store_true", help="as in production (auto)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OpenMP threads for both sides (0: the library default, every core); 1 gives "
        "steady numbers on a shared machine",
    )
    ap.add_argument("--job", action="store_true", help="also time the whole train_task_model job")
    ap.add_argument("--side", choices=["taskloom", "sklearn", "job"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    early: bool | str = "auto" if args.early_stopping else False
    if args.side:
        result = run_side(args.side, args.n, args.features, args.seed, args.max_iter, early)
        print(json.dumps(result))
        return

    print(
        f"training on {args.n:,} rows x {args.features} features, max_iter={args.max_iter}, "
        f"early stopping {'auto' if args.early_stopping else 'off'}, "
        f"{os.cpu_count()} cores, OpenMP threads: {args.threads or 'default'}",
        flush=True,
    )
    results = {}
    for side in ("sklearn", "taskloom", "job") if args.job else ("sklearn", "taskloom"):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side]
        cmd += ["-n", str(args.n), "--features", str(args.features)]
        cmd += ["--max-iter", str(args.max_iter), "--seed", str(args.seed)]
        if args.early_stopping:
            cmd.append("--early-stopping")
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
        results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[side]
        if side == "job":
            row(
                "job: the first in a fresh process (2,000 rows; imports)",
                f"{r['first_job_seconds']:.2f} s (not in the timed job below)",
            )
            row(
                "train_task_model job (read files, join, fit, evaluate, store)",
                f"{r['seconds']:.2f} s, peak +{r['peak_above_start_mib']:.0f} MiB "
                f"(process max {r['ru_maxrss_mib']:.0f} MiB), ROC AUC {r['roc_auc']:.3f}",
            )
            continue
        row(
            f"{side}: fit" + (" incl. join" if side == "taskloom" else ""),
            f"{r['seconds']:.2f} s, peak +{r['peak_above_start_mib']:.0f} MiB "
            f"(process max {r['ru_maxrss_mib']:.0f} MiB), {r['n_iter']} iterations",
        )
    ours, theirs = results["taskloom"], results["sklearn"]
    row("taskloom: of which label join", f"{ours['join_s']:.2f} s")
    row("taskloom: rows trained / file keys unmatched", f"{ours['rows']:,} / {ours['unmatched']:,}")
    row(
        "taskloom: artifact (skops)",
        f"{ours['artifact_mib']:.1f} MiB, save {ours['save_s']:.2f} s, load {ours['load_s']:.2f} s,"
        f" predictions identical after load: {ours['reload_identical']}",
    )
    row("time ratio taskloom / scikit-learn", f"{ours['seconds'] / theirs['seconds']:.3f}x")
    mem_ratio = ours["peak_above_start_mib"] / max(theirs["peak_above_start_mib"], 1e-9)
    row("phase peak memory ratio", f"{mem_ratio:.3f}x")
    row(
        "process peak memory ratio (ru_maxrss)",
        f"{ours['ru_maxrss_mib'] / theirs['ru_maxrss_mib']:.3f}x",
    )
    if "job" in results:
        job = results["job"]
        row("time ratio job / scikit-learn", f"{job['seconds'] / theirs['seconds']:.3f}x")
        row(
            "job phase peak memory ratio",
            f"{job['peak_above_start_mib'] / max(theirs['peak_above_start_mib'], 1e-9):.3f}x",
        )
    row("memory measured by", "VmHWM reset" if ours["peak_exact"] else "5 ms RSS sampling")


if __name__ == "__main__":
    main()
