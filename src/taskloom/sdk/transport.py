"""Transports: the network (httpx's own) or the app in this process (embedded mode).

The embedded transport runs the FastAPI app on an event loop in a background thread and
hands it each request through ``httpx.ASGITransport``: the same code path as a server,
without a socket. Responses are read whole, so the embedded client polls jobs instead of
streaming their events.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx


class EmbeddedTransport(httpx.BaseTransport):
    can_stream = False

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="taskloom-embedded"
        )
        self._thread.start()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            req = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            resp = await self._asgi.handle_async_request(req)
            content = await resp.aread()
            return resp.status_code, resp.headers.raw, content

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
