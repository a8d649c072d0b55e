"""In-process wake-ups: new jobs for idle workers, new events for open streams.

Across processes nothing is pushed: workers poll every ``poll_interval`` and streams
re-read the events table, so these signals only make the common single-process case fast.
"""

from __future__ import annotations

import threading


class Notifier:
    def __init__(self) -> None:
        self._jobs = threading.Condition()
        self._jobs_seq = 0
        self._events_seq = 0
        self._lock = threading.Lock()

    def jobs_available(self, n: int = 1) -> None:
        """Wake ``n`` idle workers (one per new job; the others keep sleeping)."""
        with self._jobs:
            self._jobs_seq += 1
            self._jobs.notify(n)

    def wake_all(self) -> None:
        with self._jobs:
            self._jobs_seq += 1
            self._jobs.notify_all()

    def wait_for_jobs(self, seen: int, timeout: float) -> int:
        """Block until the jobs sequence moves past ``seen`` or ``timeout``; return it."""
        with self._jobs:
            if self._jobs_seq == seen:
                self._jobs.wait(timeout)
            return self._jobs_seq

    @property
    def jobs_seq(self) -> int:
        return self._jobs_seq

    def events_written(self) -> None:
        with self._lock:
            self._events_seq += 1

    @property
    def events_seq(self) -> int:
        return self._events_seq
