"""``Client.blobs``: the app's blob store (``/v1/blobs``).

    info = c.blobs.put("cats/1.png", Path("1.png"))     # bytes, a binary file or a Path
    c.dataset("pics").insert([{"_id": "1", "image": info["ref"]}])   # "blob://cats/1.png"
    c.blobs.get("cats/1.png")                            # the bytes
    for b in c.blobs.list("cats/"): ...                  # pages with cursors

Uploads stream from files; downloads can stream to a file (:meth:`Blobs.download`).
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import orjson

from taskloom.errors import NotFound, Unavailable, error_for_status

if TYPE_CHECKING:
    from taskloom.sdk.client import Client

_RETRY_ON = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)


def blob_url(path: str) -> str:
    """The URL path of a blob. ``.`` and ``..`` segments are sent percent-encoded, so no
    client normalises them away: the server sees them and refuses the path."""
    if not isinstance(path, str):
        raise TypeError("a blob path is a string")
    segments = []
    for seg in path.split("/"):
        q = quote(seg, safe="")
        segments.append(q.replace(".", "%2E") if seg in (".", "..") else q)
    return "/v1/blobs/" + "/".join(segments)


class Blobs:
    """Blobs of the client's app. Paths are relative, ``/``-separated keys."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Blobs({self.client.url!r})"

    # -- plumbing ------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return blob_url(path)

    def _send(self, method: str, path: str, *, stream: bool = False, **kw: Any) -> httpx.Response:
        """One request, retried like ``Client.request`` (the body must be re-readable:
        ``put`` passes bytes or rewinds its file); an error status raises the typed error."""
        http = self.client._http
        delay = 0.2
        body: Any = kw.get("content")
        start = body.tell() if hasattr(body, "tell") and hasattr(body, "seek") else None
        rewindable = body is None or isinstance(body, bytes) or start is not None
        for attempt in range(self.client.retries + 1):
            if start is not None and attempt:
                body.seek(start)
            try:
                req = http.build_request(method, self._url(path), **kw)
                resp = http.send(req, stream=stream)
            except _RETRY_ON as exc:
                if attempt >= self.client.retries or not rewindable:
                    raise Unavailable(f"cannot reach taskloom at {self.client.url}: {exc}") from exc
            else:
                if resp.status_code == 503 and attempt < self.client.retries:
                    resp.close()
                elif resp.status_code >= 400:
                    content = resp.read()
                    resp.close()
                    try:
                        err = orjson.loads(content) if content else None
                    except orjson.JSONDecodeError:
                        err = {"error": {"message": content[:500].decode("utf-8", "replace")}}
                    raise error_for_status(resp.status_code, err)
                else:
                    return resp
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise Unavailable(f"taskloom at {self.client.url} is unavailable")

    # -- operations ----------------------------------------------------------------------

    def put(
        self,
        path: str,
        data: bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str],
        *,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Store ``data`` at ``path`` (replacing what is there); returns
        ``{path, size, sha256, content_type, modified, ref}``. A file (or a Path, opened
        here) is streamed, not read into memory. A ``str`` is refused: give bytes for
        content, a ``Path`` for a file."""
        if isinstance(data, str):
            raise TypeError("give bytes, a binary file or a pathlib.Path, not a str")
        if isinstance(data, os.PathLike):
            file = Path(data)
            ct = content_type or mimetypes.guess_type(file.name)[0]
            with open(file, "rb") as f:
                return self.put(path, f, content_type=ct)
        headers = {"Content-Type": content_type or "application/octet-stream"}
        content: Any = bytes(data) if isinstance(data, bytearray | memoryview) else data
        if hasattr(content, "read"):
            size = _remaining(content)
            if size is not None:  # a length lets the server refuse an oversized file at once
                headers["Content-Length"] = str(size)
        resp = self._send("PUT", path, content=content, headers=headers)
        return orjson.loads(resp.content)

    def get(self, path: str) -> bytes:
        """The blob's bytes (all in memory; :meth:`download` streams to a file)."""
        return self._send("GET", path).content

    def download(self, path: str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Stream the blob into ``dest`` (a file path or a binary file); returns its size."""
        resp = self._send("GET", path, stream=True)
        size = 0
        try:
            if hasattr(dest, "write"):
                for chunk in resp.iter_bytes():
                    dest.write(chunk)
                    size += len(chunk)
            else:
                target = Path(dest)
                tmp = target.with_name(f".{target.name}.part")
                try:
                    with open(tmp, "wb") as f:
                        for chunk in resp.iter_bytes():
                            f.write(chunk)
                            size += len(chunk)
                    os.replace(tmp, target)
                finally:
                    tmp.unlink(missing_ok=True)
        finally:
            resp.close()
        return size

    def info(self, path: str) -> dict[str, Any]:
        """``{path, size, content_type, sha256, ref}`` from the blob's headers (no bytes)."""
        resp = self._send("HEAD", path)
        etag = resp.headers.get("etag")
        return {
            "path": path,
            "size": int(resp.headers.get("content-length") or 0),
            "content_type": resp.headers.get("content-type"),
            "sha256": etag.strip('"') if etag else None,
            "ref": f"blob://{path}",
        }

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
        except NotFound:
            return False
        return True

    def delete(self, path: str) -> None:
        self._send("DELETE", path)

    def page(
        self, prefix: str = "", *, limit: int = 1000, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of blobs whose path starts with ``prefix``, and the next page's cursor."""
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        res = self.client.request("GET", "/v1/blobs", params=params)
        return res["data"], res["cursor"]

    def list(self, prefix: str = "", *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every blob whose path starts with ``prefix`` (``{path, size, modified, ref}``),
        in path order, one page in memory at a time."""
        cursor: str | None = None
        while True:
            data, cursor = self.page(prefix, limit=page_size, cursor=cursor)
            yield from data
            if cursor is None:
                return


def _remaining(f: Any) -> int | None:
    """Bytes left in a seekable file, or None."""
    try:
        pos = f.tell()
        end = f.seek(0, os.SEEK_END)
        f.seek(pos)
        return int(end - pos)
    except (AttributeError, OSError, ValueError):
        return None
