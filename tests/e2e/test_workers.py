"""Acceptance: real ``taskloom worker`` processes against a real server, killed for real.

The server runs with ``--workers 0``, so every job here is run (and every expired lease
reaped) by the worker processes the tests start and stop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_URL, ServerProcess, reset_postgres
from taskloom import Client

pytestmark = pytest.mark.e2e

LEASE_SECONDS = 2.0
FAST_ENV = {
    "TASKLOOM_LEASE_SECONDS": str(LEASE_SECONDS),
    "TASKLOOM_REAPER_INTERVAL": "0.5",
    "TASKLOOM_POLL_INTERVAL": "0.2",
}


class WorkerProcess:
    """A real ``taskloom worker`` process; its output goes to a log file beside the data."""

    def __init__(self, data_dir: Path, env: dict[str, str], *, concurrency: int = 1) -> None:
        self.log_path = data_dir.parent / f"worker-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "taskloom.cli.main",
                "worker",
                "--data-dir",
                str(data_dir),
                "--concurrency",
                str(concurrency),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> WorkerProcess:
        """Wait for the line ``taskloom worker`` logs once its threads run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "taskloom worker:" in self.output():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            time.sleep(0.05)
        raise RuntimeError(f"worker did not start:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def workerless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with no worker threads of its own."""
    if PG_URL:
        reset_postgres(PG_URL)
    s = ServerProcess(tmp_path_factory.mktemp("workers") / "data", workers=0, env=FAST_ENV)
    yield s
    s.stop()


@pytest.fixture
def spawn_worker(workerless_server: ServerProcess) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker processes on the server's data folder and database; all killed after."""
    started: list[WorkerProcess] = []

    def spawn(concurrency: int = 1, *, ready: bool = True) -> WorkerProcess:
        w = WorkerProcess(
            workerless_server.data_dir, workerless_server.env, concurrency=concurrency
        )
        started.append(w)
        return w.wait_ready() if ready else w

    yield spawn
    for w in started:
        w.stop()


@pytest.fixture
def client(workerless_server: ServerProcess) -> Iterator[Client]:
    with Client(url=workerless_server.url, api_key=workerless_server.api_key) as c:
        yield c


def wait_for(what: Callable[[], Any], timeout: float, message: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def transitions(events: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "transition" and e["status"] == status]


def claims(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return transitions(events, "in_progress")


def owned_by(event: dict[str, Any], worker: WorkerProcess) -> bool:
    """Worker ids are ``host:pid:suffix``."""
    return event["data"]["worker"].split(":")[1] == str(worker.pid)


def two_workers(spawn: Callable[..., WorkerProcess]) -> list[WorkerProcess]:
    """Two idle worker processes (started side by side to save time)."""
    pair = [spawn(ready=False), spawn(ready=False)]
    return [w.wait_ready() for w in pair]


def running_on(job: Any, workers: list[WorkerProcess]) -> tuple[WorkerProcess, dict[str, Any]]:
    """Wait until one of ``workers`` has claimed the job and reported progress (it is
    mid-run); returns that worker and the claim event."""

    def mid_run() -> dict[str, Any] | None:
        events = job.events()
        got = claims(events)
        if got and any(e["type"] == "progress" for e in events):
            return got[-1]
        return None

    claim = wait_for(mid_run, 20, f"job {job.id} to be claimed")
    owner = [w for w in workers if owned_by(claim, w)]
    assert len(owner) == 1, f"claimed by {claim['data']['worker']}, not one of our workers"
    assert claim["message"].startswith(f"claimed by {claim['data']['worker']}")
    return owner[0], claim


def kill9(worker: WorkerProcess) -> float:
    os.kill(worker.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert worker.proc.returncode == -signal.SIGKILL
    return time.time()


def at(event: dict[str, Any]) -> float:
    stamp = datetime.fromisoformat(event["at"])
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def test_killed_worker_job_is_run_again_by_another_worker_and_completes_once(
    client: Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    workers = two_workers(spawn_worker)
    job = client.jobs.submit("sleep", params={"seconds": 3, "steps": 6})
    a, claim_a = running_on(job, workers)
    (b,) = (w for w in workers if w is not a)

    time.sleep(0.5)  # b polls and reaps meanwhile, and must leave a live lease alone
    job.refresh()
    assert (job.status, job.attempts) == ("in_progress", 1)
    assert len(claims(job.events())) == 1
    killed_at = kill9(a)

    job.wait(timeout=30)
    assert job.status == "completed", job.data
    assert job.attempts == 2
    assert job.result == {"slept": 3.0}
    assert job.error is None

    events = job.events()
    assert len(transitions(events, "completed")) == 1
    assert [owned_by(c, a) for c in claims(events)] == [True, False]
    claim_b = claims(events)[1]
    assert owned_by(claim_b, b)
    assert claim_b["data"]["attempt"] == 2

    requeued = transitions(events, "pending")[1:]  # the first is "submitted"
    assert len(requeued) == 1, requeued
    lost = requeued[0]
    assert "lease expired" in lost["message"] and "worker lost" in lost["message"]
    assert lost["data"]["worker"] == claim_a["data"]["worker"]
    assert claim_a["id"] < lost["id"] < claim_b["id"] < transitions(events, "completed")[0]["id"]
    # b was reaping all along; a heartbeats every lease/3, so its lease ran for at least
    # two thirds of LEASE_SECONDS after the kill, and b must not have taken the job sooner.
    assert at(lost) >= killed_at + LEASE_SECONDS * 2 / 3 - 0.25
    assert not transitions(events, "failed")


def test_killed_worker_with_no_attempts_left_fails_the_job_as_worker_lost(
    client: Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    workers = two_workers(spawn_worker)
    job = client.jobs.submit("sleep", params={"seconds": 3, "steps": 6}, max_attempts=1)
    a, _ = running_on(job, workers)
    (b,) = (w for w in workers if w is not a)
    kill9(a)

    job.wait(timeout=30, raise_on_failure=False)  # b's reaper finds the expired lease
    assert job.status == "failed", job.data
    assert job.error["code"] == "WORKER_LOST"
    assert job.attempts == 1
    assert job.result is None

    events = job.events()
    assert len(claims(events)) == 1  # b never ran it
    assert not transitions(events, "completed")
    (failed,) = transitions(events, "failed")
    assert "lease expired" in failed["message"] and "no attempts left" in failed["message"]
    assert owned_by(failed, a)
    assert b.proc.poll() is None


def test_two_worker_processes_run_each_job_exactly_once(
    client: Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    workers = [spawn_worker(concurrency=2, ready=False) for _ in range(2)]
    for w in workers:
        w.wait_ready()
    jobs = [client.jobs.submit("noop") for _ in range(16)]
    jobs += [client.jobs.submit("sleep", params={"seconds": 0.6, "steps": 2}) for _ in range(4)]

    pids: set[int] = set()
    for job in jobs:
        job.wait(timeout=60)
        assert job.status == "completed", job.data
        assert job.attempts == 1, job.data
        events = job.events()
        (claim,) = claims(events)
        assert len(transitions(events, "completed")) == 1
        assert len(transitions(events, "pending")) == 1  # submitted, never re-queued
        pids.add(int(claim["data"]["worker"].split(":")[1]))
    # The sleep jobs keep two threads of one process busy: the other process takes part.
    assert pids == {w.pid for w in workers}
    assert all(w.proc.poll() is None for w in workers)


def test_sigterm_stops_workers_cleanly_and_a_busy_one_gives_its_job_back(
    client: Client, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    workers = two_workers(spawn_worker)
    job = client.jobs.submit("sleep", params={"seconds": 1.5, "steps": 3})
    busy, _ = running_on(job, workers)
    (idle,) = (w for w in workers if w is not busy)

    busy.proc.send_signal(signal.SIGTERM)
    assert busy.proc.wait(15) == 0, busy.output()

    job.wait(timeout=30)  # the idle worker takes it from the queue at once, no lease to wait for
    assert job.status == "completed", job.data
    assert job.attempts == 1  # the interrupted attempt does not count
    events = job.events()
    (released,) = transitions(events, "pending")[1:]
    assert released["message"] == "worker shut down; re-queued"
    assert owned_by(released, busy)
    assert [owned_by(c, idle) for c in claims(events)] == [False, True]
    assert len(transitions(events, "completed")) == 1

    idle.proc.send_signal(signal.SIGTERM)
    assert idle.proc.wait(15) == 0, idle.output()
    for w in workers:
        assert "Traceback" not in w.output()


def test_sigterm_to_serve_gives_its_running_job_back_and_exits_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    serve = ServerProcess(data, workers=1, env=FAST_ENV)
    try:
        with Client(url=serve.url, api_key=serve.api_key) as c:
            job = c.jobs.submit("sleep", params={"seconds": 1.5, "steps": 3})
            wait_for(lambda: any(e["type"] == "progress" for e in job.events()), 20, "job progress")
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(20) == 0, serve.output()
    finally:
        serve.stop()

    # Open the same folder (and database) in this process and look, then finish the job.
    if PG_URL:
        monkeypatch.setenv("TASKLOOM_DATABASE_URL", PG_URL)
    with Client(path=data, api_key=serve.api_key, workers=0) as c:
        job = c.jobs.get(job.id)
        assert (job.status, job.attempts) == ("pending", 0), job.data
        (released,) = transitions(job.events(), "pending")[1:]
        assert released["message"] == "worker shut down; re-queued"
    with Client(path=data, api_key=serve.api_key, workers=1) as c:
        job = c.jobs.get(job.id).wait(timeout=30)
        assert (job.status, job.attempts) == ("completed", 1), job.data
