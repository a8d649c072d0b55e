"""Run the platform as processes: ``serve`` (API + in-process workers) and ``worker``."""

from __future__ import annotations

import errno
import gc
import logging
import signal
import socket
import sys
import threading
from typing import Any

from taskloom.config import Settings
from taskloom.runtime import Platform

log = logging.getLogger("taskloom")


class AddressInUse(OSError):
    """Another process listens on the address ``serve`` was asked to bind."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(
            errno.EADDRINUSE,
            f"{host}:{port} is already in use (another taskloom serve?). Stop that process, "
            f"or choose another port: --port {port + 1}, TASKLOOM_PORT={port + 1}, "
            f"or make run PORT={port + 1}",
        )
        self.host = host
        self.port = port


def bind(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound before anything else happens, so that a busy
    port is refused before the data folder is touched. Raises :class:`AddressInUse`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as uvicorn does: a port left in TIME_WAIT by the previous server can be bound again
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(host, port) from exc
        raise
    return sock


def serve(settings: Settings, *, log_level: str = "info", on_ready: Any = None) -> None:
    """Start the API server with ``settings.workers`` worker threads; blocks until stopped.
    Raises :class:`AddressInUse` (having written nothing) when the port is taken."""
    import uvicorn

    from taskloom.api.app import create_app
    from taskloom.api.dialects.clarifai import server as clarifai

    sock = bind(settings.host, settings.port)
    grpc_server = None
    if settings.grpc:
        try:
            grpc_server, grpc_port = clarifai.bind(settings.host, settings.grpc_port)
        except BaseException:
            sock.close()
            raise
    # Request threads, the event loop and worker threads share one GIL: hand it over
    # every millisecond rather than every 5, so a short request is not stuck behind a job.
    sys.setswitchinterval(0.001)
    try:
        platform = Platform(settings, lock="shared").start()
    except BaseException:
        sock.close()
        if grpc_server is not None:
            grpc_server.stop(None)
        raise
    try:
        if grpc_server is not None:
            clarifai.start(grpc_server, platform.services)
            platform.grpc_port = grpc_port
        if on_ready is not None:
            on_ready(platform)
        app = create_app(platform)
        # What the imports and the start made lives until the process ends: keep the
        # collector off it. Besides sparing full collections while serving, this is what
        # makes an idle server exit at once on SIGTERM: without it the interpreter's last
        # collection walks every object of numpy, sklearn, pandas, pyarrow... (2-3 s).
        gc.freeze()
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
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if grpc_server is not None:
            # calls in flight get 2 s to finish; the platform stops after them
            grpc_server.stop(2).wait(3)
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
