"""Helpers shared by the benchmarks: a real server process on a free port, timing, output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BENCH_KEY = "tlk_bench_key_0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``taskloom serve`` on a fresh data folder (SQLite unless TASKLOOM_DATABASE_URL is set)."""

    def __init__(self, workers: int = 2, **env: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="taskloom-bench-")
        self.data_dir = Path(self.tmp.name) / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_key = BENCH_KEY
        full_env = {**os.environ, "TASKLOOM_BOOTSTRAP_API_KEY": BENCH_KEY, **env}
        self.log = open(Path(self.tmp.name) / "server.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskloom.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(self.log.read())
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()
        self.tmp.cleanup()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def row(name: str, value: str) -> None:
    print(f"  {name:<48} {value}")
