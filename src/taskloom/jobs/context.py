"""What a running job kind sees: its job, progress and logs, cancellation, the services."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from taskloom.errors import Cancelled
from taskloom.scope import Scope

if TYPE_CHECKING:
    from taskloom.jobs.engine import JobEngine
    from taskloom.jobs.records import Job


class LeaseLost(Exception):
    """Another worker owns this job now (our lease expired); stop without writing."""


class Interrupted(Exception):
    """This worker is shutting down; the job goes back to the queue."""


ServicesT = TypeVar("ServicesT")


class JobContext(Generic[ServicesT]):
    """One running job, as its kind sees it. ``services`` is whatever the worker was given
    (the platform's ``services.container.Services``: kinds annotate ``JobContext[Services]``).
    It is a :class:`~taskloom.jobs.progress.Progress`: services that work for a job take it
    as that."""

    def __init__(
        self,
        engine: JobEngine,
        job: Job,
        worker_id: str,
        services: ServicesT,
        *,
        check_every: float = 0.25,
        shutdown: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.job = job
        self.job_id: str = job.id
        self.worker_id = worker_id
        self.services = services
        self.scope = Scope(app_id=job.app_id, user_id="")
        self.dataset: str | None = job.dataset
        self.attempt: int = job.attempts
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._shutdown = shutdown or threading.Event()
        self._check_every = check_every
        self._last_check = 0.0

    # set by the heartbeat thread
    def _flag_cancel(self) -> None:
        self._cancel.set()

    def _flag_lost(self) -> None:
        self._lost.set()

    def check_cancelled(self) -> None:
        """Raise if the job was cancelled or taken over; call it often in long loops."""
        now = time.monotonic()
        if now - self._last_check >= self._check_every:
            self._last_check = now
            ours, cancel = self.engine.cancel_requested(self.job_id, self.worker_id)
            if not ours:
                self._lost.set()
            if cancel:
                self._cancel.set()
        if self._lost.is_set():
            raise LeaseLost(self.job_id)
        if self._cancel.is_set():
            raise Cancelled()
        if self._shutdown.is_set():
            raise Interrupted(self.job_id)

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) when the job is cancelled."""
        deadline = time.monotonic() + seconds
        while True:
            self.check_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._shutdown.is_set():
                continue  # check_cancelled raises Interrupted
            self._cancel.wait(min(left, self._check_every))

    def progress(self, pct: float, message: str | None = None) -> None:
        self.check_cancelled()
        if not self.engine.progress(self.job_id, self.worker_id, pct, message):
            self._lost.set()
            raise LeaseLost(self.job_id)

    def log(self, message: str, **data: Any) -> None:
        self.engine.log(self.job_id, message, data or None)
