"""``make bench``: every benchmark, each against its baseline in the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script in [
    "bench_insert.py",
    "bench_jobs.py",
    "bench_search.py",
    "bench_encode.py",
    "bench_cluster.py",
    "bench_crowd.py",
    "bench_crowd_issuing.py",
]:
    print(f"\n== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=True, cwd=HERE)
