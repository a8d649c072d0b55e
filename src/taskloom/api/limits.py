"""Refuse request bodies over the configured size before reading them into memory."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException

from taskloom.api.errors import error_body
from taskloom.api.responses import dumps


class BodyLimitMiddleware:
    """Refuses request bodies past ``max_bytes`` (413). Blob and bucket-file uploads are
    streamed to the store by their routes, which apply the blob store's own (larger) limit."""

    # paths whose handlers stream the body and enforce their own limit
    STREAMED_PREFIXES = ("/v1/blobs/", "/v1/buckets/")

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (
            scope.get("method") == "PUT"
            and scope.get("path", "").startswith(self.STREAMED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        rejected = False

        async def limited_receive() -> dict:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    raise _TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = dumps(
            error_body(
                "payload_too_large",
                f"the request body is larger than {self.max_bytes} bytes",
                {"field": "body", "max_bytes": self.max_bytes},
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised from ``receive`` while the app reads the body. An HTTPException, because
    FastAPI passes those through its body parsing (any other error there becomes a 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")
        self.details = {"field": "body", "max_bytes": max_bytes}
