"""``Client.buckets``: named areas of the blob store (``/v1/buckets``).

    c.buckets.create("training")
    c.buckets.put("training", "2024/labels.tsv", Path("labels.tsv"))   # bytes, a file or a Path
    c.buckets.ls("training", "2024/")        # [{path, size, modified, sha256?}], all pages
    c.buckets.get("training", "2024/labels.tsv")                        # the bytes
    c.buckets.files("training").download("2024/labels.tsv", "out.tsv")  # streamed to a file

A bucket must be created before files are put in it (as in S3).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from taskloom.sdk.blobs import Blobs

if TYPE_CHECKING:
    from taskloom.sdk.client import Client


def _segments(path: str) -> str:
    # "." and ".." go percent-encoded so that no client normalises them away: the server
    # sees them and refuses the path
    out = []
    for seg in path.split("/"):
        q = quote(seg, safe="")
        out.append(q.replace(".", "%2E") if seg in (".", "..") else q)
    return "/".join(out)


class BucketFiles(Blobs):
    """The files of one bucket, with the methods of ``Client.blobs`` (put, get, download,
    info, exists, delete, page, list)."""

    def __init__(self, client: Client, bucket: str) -> None:
        super().__init__(client)
        if not isinstance(bucket, str):
            raise TypeError("a bucket name is a str")
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"BucketFiles({self.client.url!r}, {self.bucket!r})"

    def _url(self, path: str) -> str:
        if not isinstance(path, str):
            raise TypeError("a file path is a str")
        return f"/v1/buckets/{quote(self.bucket, safe='')}/files/{_segments(path)}"

    def page(
        self, prefix: str = "", *, limit: int = 1000, cursor: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        res = self.client.request(
            "GET", f"/v1/buckets/{quote(self.bucket, safe='')}/files", params=params
        )
        return res["data"], res["cursor"]

    def info(self, path: str) -> dict[str, Any]:
        out = super().info(path)
        out.pop("ref", None)
        return out


class Buckets:
    """The buckets of the client's app."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Buckets({self.client.url!r})"

    def _b(self, bucket: str) -> str:
        return f"/v1/buckets/{quote(bucket, safe='')}"

    # -- buckets -------------------------------------------------------------------------

    def create(self, name: str) -> dict[str, Any]:
        """A new empty bucket: ``{name, app_id, created_at}``."""
        return self.client.request("POST", "/v1/buckets", json={"name": name})

    def list(self) -> builtins.list[dict[str, Any]]:
        return self.client.request("GET", "/v1/buckets")["data"]

    def get_bucket(self, name: str) -> dict[str, Any]:
        return self.client.request("GET", self._b(name))

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete an empty bucket; ``force=True`` deletes its files too."""
        self.client.request("DELETE", self._b(name), params={"force": str(force).lower()})

    # -- files ---------------------------------------------------------------------------

    def files(self, bucket: str) -> BucketFiles:
        """The files of ``bucket``, with every method of ``Client.blobs``."""
        return BucketFiles(self.client, bucket)

    def put(
        self,
        bucket: str,
        path: str,
        data: bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str] | str,
        *,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Store bytes, a binary file, or a local file (its path as a ``str`` or ``Path``,
        streamed) at ``path``."""
        if isinstance(data, str):
            data = Path(data)
        return self.files(bucket).put(path, data, content_type=content_type)

    def get(self, bucket: str, path: str) -> bytes:
        return self.files(bucket).get(path)

    def download(self, bucket: str, path: str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        return self.files(bucket).download(path, dest)

    def exists(self, bucket: str, path: str) -> bool:
        return self.files(bucket).exists(path)

    def delete_file(self, bucket: str, path: str) -> None:
        self.files(bucket).delete(path)

    def ls(self, bucket: str, prefix: str = "") -> builtins.list[dict[str, Any]]:
        """Every file whose path starts with ``prefix``, in path order (:meth:`iter` pages
        without holding them all)."""
        return builtins.list(self.iter(bucket, prefix))

    def iter(self, bucket: str, prefix: str = "", *, page_size: int = 1000) -> Iterator[dict]:
        return self.files(bucket).list(prefix, page_size=page_size)
