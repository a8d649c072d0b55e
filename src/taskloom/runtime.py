"""The platform in one object: settings, store, services, job engine and in-process workers.

``taskloom serve``, ``taskloom worker`` and the embedded client each build one. They share
a data folder through the database; the folder lock below keeps an embedded client from
opening a folder that a server or another embedded client is using.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, Any

from taskloom.config import Settings
from taskloom.errors import Conflict
from taskloom.jobs.engine import JobEngine
from taskloom.jobs.notifier import Notifier
from taskloom.jobs.registry import Registry
from taskloom.jobs.worker import WorkerPool
from taskloom.kinds import default_registry
from taskloom.services.container import Services
from taskloom.store import migrate
from taskloom.store.engine import Store

__all__ = ["DataDirLock", "Platform", "Services", "read_credentials"]

log = logging.getLogger("taskloom")


class DataDirLock:
    """``shared`` for serve/worker processes, ``exclusive`` for an embedded client."""

    def __init__(self, data_dir: Path, *, exclusive: bool) -> None:
        self.path = Path(data_dir) / ".taskloom.lock"
        self.exclusive = exclusive
        self._f: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(f, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            f.close()
            who = "an embedded client" if not self.exclusive else "a server or another client"
            raise Conflict(
                f"the data folder {self.path.parent} is in use by {who}; "
                "connect with Client(url=...) instead",
                code="data_dir_in_use",
                field="path",
            ) from exc
        self._f = f

    def release(self) -> None:
        if self._f is not None:
            fcntl.flock(self._f, fcntl.LOCK_UN)
            self._f.close()
            self._f = None


class Platform:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        workers: int | None = None,
        registry: Registry | None = None,
        lock: str | None = "shared",
        bootstrap: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        self.workers = self.settings.workers if workers is None else workers
        self.registry = registry or default_registry()
        self.notifier = Notifier()
        self._lock = (
            DataDirLock(self.settings.data_dir, exclusive=lock == "exclusive") if lock else None
        )
        self._bootstrap = bootstrap
        self.store: Store | None = None
        self.pool: WorkerPool | None = None
        self.credentials: dict[str, Any] | None = None
        # the port of the Clarifai door (gRPC) when `serve` runs it
        self.grpc_port: int | None = None
        self.started = False

    def start(self) -> Platform:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        if self._lock:
            self._lock.acquire()
        try:
            self.store = Store(s.resolved_database_url, query_timeout=s.query_timeout)
            migrate.upgrade(self.store)
            self.store.start_checkpointer()
            self.engine = JobEngine(
                self.store,
                self.registry,
                self.notifier,
                lease_seconds=s.lease_seconds,
                default_max_attempts=s.default_max_attempts,
            )
            self.services = Services(self.store, s, self.engine)
            if self._bootstrap:
                self.credentials = self.services.auth.bootstrap(
                    s.credentials_path, s.bootstrap_api_key
                )
            if self.workers > 0:
                self.pool = WorkerPool(
                    self.engine,
                    self.workers,
                    services=self.services,
                    poll_interval=s.poll_interval,
                    reaper_interval=s.reaper_interval,
                )
                self.pool.start()
        except BaseException:
            self.stop()
            raise
        self.started = True
        return self

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
            self.pool = None
        if self.store is not None:
            self.store.dispose()
            self.store = None
        if self._lock:
            self._lock.release()
        self.started = False

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_credentials(data_dir: Path) -> dict[str, Any] | None:
    path = Path(data_dir) / "credentials.json"
    if not path.exists():
        return None
    import json

    return json.loads(path.read_text())
