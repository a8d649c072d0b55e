"""Workers: claim a job, run its kind with a heartbeat beside it, record the outcome.

``WorkerPool`` runs workers as threads (the in-process default of ``taskloom serve`` and
the embedded client); ``taskloom worker`` runs a pool in its own process. Every worker
also reaps expired leases now and then, so a crashed process's jobs come back by themselves.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from typing import Any

from taskloom.errors import Cancelled, JobFailed, TaskloomError
from taskloom.jobs.context import Interrupted, JobContext, LeaseLost
from taskloom.jobs.engine import JobEngine
from taskloom.jobs.records import Job

log = logging.getLogger("taskloom.worker")


class Worker:
    def __init__(
        self,
        engine: JobEngine,
        *,
        services: Any = None,
        name: str | None = None,
        poll_interval: float = 0.5,
        reaper_interval: float = 5.0,
    ) -> None:
        self.engine = engine
        self.services = services
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_interval = poll_interval
        self.reaper_interval = reaper_interval
        self._next_reap = 0.0
        self._stop = threading.Event()
        self._beat_lock = threading.Lock()
        self._beat_thread: threading.Thread | None = None
        self._current: JobContext | None = None

    def run_forever(self, stop: threading.Event) -> None:
        self._stop = stop
        seen = self.engine.notifier.jobs_seq
        while not stop.is_set():
            try:
                if time.monotonic() >= self._next_reap:
                    self._next_reap = time.monotonic() + self.reaper_interval
                    self.engine.reap()
                if self.run_one():
                    continue
            except Exception:  # the loop must survive a database hiccup
                log.exception("worker %s: loop error", self.id)
                stop.wait(1.0)
                continue
            seen = self.engine.notifier.wait_for_jobs(seen, self.poll_interval)

    def run_one(self) -> bool:
        """Claim and run one job; False when nothing was due."""
        job = self.engine.claim(self.id, self.engine.registry.names())
        if job is None:
            return False
        self.execute(job)
        return True

    def execute(self, job: Job) -> None:
        ctx = JobContext(self.engine, job, self.id, self.services, shutdown=self._stop)
        with self._beat_lock:
            self._current = ctx
            if self._beat_thread is None or not self._beat_thread.is_alive():
                self._beat_thread = threading.Thread(
                    target=self._heartbeat, daemon=True, name=f"taskloom-heartbeat-{self.id}"
                )
                self._beat_thread.start()
        try:
            kind = self.engine.registry.get(job.kind)
            params = kind.validate(job.params)
            result = kind.run(ctx, params)
            self.engine.complete(job.id, self.id, result or {})
        except Cancelled:
            self.engine.mark_cancelled(job.id, self.id)
        except Interrupted:
            self.engine.release(job.id, self.id)
        except LeaseLost:
            log.warning("job %s: lease lost; another worker has it", job.id)
        except (JobFailed, TaskloomError) as exc:
            err = {"code": exc.code.upper(), "message": exc.message, "details": exc.details}
            self.engine.fail(
                job.id,
                self.id,
                err,
                retry=False,
                attempts=job.attempts,
                max_attempts=job.max_attempts,
            )
        except Exception as exc:
            err = {
                "code": "JOB_ERROR",
                "message": f"{type(exc).__name__}: {exc}",
                "details": {"traceback": traceback.format_exc(limit=20)},
            }
            self.engine.fail(
                job.id,
                self.id,
                err,
                retry=True,
                attempts=job.attempts,
                max_attempts=job.max_attempts,
            )
        finally:
            with self._beat_lock:
                self._current = None

    def _heartbeat(self) -> None:
        """One thread per worker (not per job): renews the lease of the job running now
        every lease/3 and passes cancel requests and lost leases to it; leaves after a
        while without a job and is started again with the next one."""
        interval = max(0.05, self.engine.lease_seconds / 3)
        idle = 0
        while not self._stop.wait(interval):
            with self._beat_lock:
                ctx = self._current
                if ctx is None:
                    idle += 1
                    if idle >= 10:
                        self._beat_thread = None
                        return
                    continue
            idle = 0
            self._beat(ctx)

    def _beat(self, ctx: JobContext) -> None:
        try:
            ours, cancel = self.engine.heartbeat(ctx.job_id, self.id)
        except Exception:
            log.exception("heartbeat for %s failed", ctx.job_id)
            return
        if not ours:
            ctx._flag_lost()
        elif cancel:
            ctx._flag_cancel()


class WorkerPool:
    """N worker threads in this process."""

    def __init__(self, engine: JobEngine, size: int, **worker_kwargs: Any) -> None:
        self.engine = engine
        self.size = size
        self.worker_kwargs = worker_kwargs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.workers: list[Worker] = []

    def start(self) -> None:
        for i in range(self.size):
            w = Worker(self.engine, **self.worker_kwargs)
            self.workers.append(w)
            t = threading.Thread(
                target=w.run_forever, args=(self._stop,), daemon=True, name=f"taskloom-worker-{i}"
            )
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.engine.notifier.wake_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wait(self) -> None:
        """Block until stopped (used by ``taskloom worker``)."""
        try:
            while any(t.is_alive() for t in self._threads):
                for t in self._threads:
                    t.join(0.5)
        except KeyboardInterrupt:
            self.stop()
