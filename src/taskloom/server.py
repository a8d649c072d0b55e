"""Run the platform as processes: ``serve`` (API + in-process workers) and ``worker``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from taskloom.config import Settings
from taskloom.runtime import Platform

log = logging.getLogger("taskloom")


def serve(settings: Settings, *, log_level: str = "info", on_ready: Any = None) -> None:
    """Start the API server with ``settings.workers`` worker threads; blocks until stopped."""
    import uvicorn

    from taskloom.api.app import create_app

    # Request threads, the event loop and worker threads share one GIL: hand it over
    # every millisecond rather than every 5, so a short request is not stuck behind a job.
    sys.setswitchinterval(0.001)
    platform = Platform(settings, lock="shared").start()
    try:
        if on_ready is not None:
            on_ready(platform)
        app = create_app(platform)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        if threading.current_thread() is threading.main_thread():
            # uvicorn shuts down on SIGINT/SIGTERM and then raises the signal again for the
            # handler it found; the default one would kill the process here, before the
            # workers below give their running jobs back.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: None)
        uvicorn.Server(config).run()
    finally:
        platform.stop()


def work(settings: Settings, *, concurrency: int = 1) -> None:
    """Run ``concurrency`` worker threads against the shared database; blocks until a signal."""
    platform = Platform(settings, workers=concurrency, lock="shared", bootstrap=False).start()
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("taskloom worker: %d thread(s) on %s", concurrency, settings.resolved_database_url)
    try:
        stop.wait()
    finally:
        platform.stop()
