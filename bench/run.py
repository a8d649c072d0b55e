"""``make bench``: every benchmark, each against its baseline in the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script, *extra in [
    ("bench_insert.py",),
    ("bench_jobs.py",),
    ("bench_search.py",),
    ("bench_mixed.py",),  # searches, gets, inserts and job polls against a real server
    ("bench_encode.py",),
    ("bench_cluster.py",),
    ("bench_crowd.py",),
    ("bench_crowd_issuing.py",),
    ("bench_train.py", "--job"),  # the whole training job beside scikit-learn
]:
    print(f"\n== {script}", flush=True)
    cmd = [sys.executable, str(HERE / script), *extra, *sys.argv[1:]]
    subprocess.run(cmd, check=True, cwd=HERE)
