"""The blob store: media, archives, artifacts and (later) buckets, on any fsspec filesystem.

A :class:`BlobStore` sits on one fsspec URL (``Settings.blob_url``; default the folder
``data_dir/blobs``, or ``s3://bucket/prefix`` and the like when scaled out). Every app has
its own namespace under it, so tenants never see each other's blobs::

    <root>/<app_id>/<path>                    the blob's bytes
    <root>/.meta/<app_id>/<h[:2]>/<h>.json    its content type, size and sha256 (h: sha256 of path)
    <root>/.tmp/<uuid>                        uploads in flight
    <root>/.<area>/<app_id>/<path>            an app's internal area (:meth:`BlobStore.area`):
                                              buckets, feature tables, model artifacts

A path is a relative, ``/``-separated key, checked strictly by :func:`check_path` (no empty,
``.`` or ``..`` segments, no backslash or control character, at most 512 bytes): whatever
a caller sends, it names a file inside its app's namespace or it is refused with ``Invalid``.

Uploads stream into a temporary file, hashing and counting as they go, and are moved to
their path only when complete: a failed, cancelled or oversized upload leaves nothing
behind, and a reader sees the old blob or the new one, never half of one. The sidecar keeps
what the filesystem cannot (the content type the uploader gave, the sha256); a blob without
one (put there by other means) still reads, with a content type guessed from its name.

A namespace (:class:`Blobs`) can be narrowed to a sub-prefix with :meth:`Blobs.child`. The
areas (``.buckets``, ``.features``...) start with a dot, which no app id has, so what a user
puts through ``/v1/blobs`` never lands in them, and the reverse.

On S3 (``s3://bucket/prefix``, s3fs) ``Settings.blob_options`` (a JSON object,
``TASKLOOM_BLOB_OPTIONS``) are passed to the filesystem as they are (``key``, ``secret``,
``client_kwargs``...), and ``Settings.blob_s3_endpoint_url`` names an S3-compatible endpoint
(MinIO, Ceph, NCP Object Storage, moto). Without them s3fs finds credentials as boto does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mimetypes
import os
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from taskloom.errors import Conflict, Invalid, NotFound, PayloadTooLarge
from taskloom.store.paging import CursorFormat, check_limit, cursor_error, page

MAX_PATH_BYTES = 512
MAX_SEGMENT_BYTES = 255
MAX_CONTENT_TYPE = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
CHUNK = 1 << 20
REF_SCHEME = "blob://"
_APP_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_META = ".meta"
_TMP = ".tmp"
_AREA = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _bad_path(message: str) -> Invalid:
    return Invalid(message, code="invalid_blob_path", field="path")


def check_path(path: Any, *, prefix: bool = False) -> str:
    """``path`` when it is a valid blob path, else ``Invalid(field="path")``.

    With ``prefix=True`` the empty string and a trailing ``/`` are allowed too (a listing
    prefix: ``"cats/"`` or ``"cats/ta"``)."""
    if not isinstance(path, str):
        raise _bad_path("a blob path is a string")
    if prefix:
        if path == "":
            return path
        check_path(path[:-1] if path.endswith("/") else path)
        return path
    if not path:
        raise _bad_path("a blob path is not empty")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _bad_path(f"a blob path is at most {MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise _bad_path("a blob path is relative: it does not start with '/'")
    if "\\" in path:
        raise _bad_path("a blob path has no backslash; segments are separated by '/'")
    for ch in path:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise _bad_path(f"a blob path has no control character ({ch!r})")
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            raise _bad_path(f"{path!r}: a blob path has no empty, '.' or '..' segment")
        if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _bad_path(f"a segment of a blob path is at most {MAX_SEGMENT_BYTES} bytes")
    return path


def check_content_type(value: str | None) -> str:
    if value is None or not value.strip():
        return DEFAULT_CONTENT_TYPE
    value = value.strip()
    if len(value) > MAX_CONTENT_TYPE or any(unicodedata.category(c) == "Cc" for c in value):
        raise Invalid(
            f"a content type is at most {MAX_CONTENT_TYPE} printable characters",
            code="invalid_content_type",
            field="content_type",
        )
    return value


def ref_of(path: str) -> str:
    """The ``blob://`` reference a document uses for ``path``."""
    return REF_SCHEME + path


def path_of_ref(ref: str) -> str:
    """The path of a ``blob://path`` reference (checked), else ``Invalid(field="path")``."""
    if not ref[: len(REF_SCHEME)].lower() == REF_SCHEME:
        raise _bad_path(f"a blob reference is {REF_SCHEME}<path>")
    return check_path(ref[len(REF_SCHEME) :])


def not_found(path: str) -> NotFound:
    return NotFound(f"no blob at {path!r}", code="blob_not_found", field="path")


@dataclass(frozen=True)
class BlobInfo:
    """What is known of one blob. ``sha256`` is None for a blob put there by other means."""

    path: str
    size: int
    content_type: str
    sha256: str | None = None
    modified: str | None = None

    @property
    def ref(self) -> str:
        return ref_of(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "modified": self.modified,
            "ref": self.ref,
        }


def _guess_type(path: str) -> str:
    return mimetypes.guess_type(path, strict=False)[0] or DEFAULT_CONTENT_TYPE


def _modified(info: dict[str, Any]) -> str | None:
    value = next(
        (info[k] for k in ("mtime", "LastModified", "last_modified") if info.get(k) is not None),
        None,
    )
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value) if value else None


_CURSOR = CursorFormat("b", str)  # resumes after a blob's path


def _after(cursor: str | None) -> str:
    """The path a listing cursor resumes after ("" at the start); a cursor holds a blob path."""
    (path,) = _CURSOR.decode(cursor) or ("",)
    if path:
        try:
            check_path(path)
        except Invalid as exc:
            raise cursor_error() from exc
    return str(path)


class BlobStore:
    """Blobs on one fsspec URL; :meth:`app` gives one app's namespace."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        max_bytes: int = 512 * 1024 * 1024,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = os.fspath(url)
        self.max_bytes = max_bytes
        self.fs, root = url_to_fs(self.url, **(storage_options or {}))
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            root = os.path.realpath(root)
        self.root: str = root.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Any) -> BlobStore:
        return cls(
            settings.resolved_blob_url,
            max_bytes=settings.blob_max_bytes,
            storage_options=settings.blob_storage_options,
        )

    def app(self, app_id: str) -> Blobs:
        """The namespace of one app."""
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise ValueError(f"not an app id: {app_id!r}")
        return Blobs(self, app_id)

    def area(self, area: str, app_id: str, *, max_bytes: int | None = None) -> Blobs:
        """One app's namespace in an internal ``area`` (``"buckets"``, ``"features"``...),
        apart from its ``/v1/blobs`` namespace. ``max_bytes`` overrides the upload limit
        (artifacts that taskloom itself writes are not bound by the users' limit)."""
        if not isinstance(area, str) or not _AREA.match(area) or area in ("meta", "tmp"):
            raise ValueError(f"not an area name: {area!r}")
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise ValueError(f"not an app id: {app_id!r}")
        return Blobs(self, f".{area}/{app_id}", max_bytes=max_bytes)

    def drop_app(self, app_id: str) -> None:
        """Remove every blob of a deleted app: its namespace, their metadata and its areas."""
        if not isinstance(app_id, str) or not _APP_ID.match(app_id):
            raise ValueError(f"not an app id: {app_id!r}")
        paths = [self._join(app_id), self._join(_META, app_id)]
        with contextlib.suppress(FileNotFoundError, OSError):
            for entry in self.fs.ls(self.root, detail=False):
                name = str(entry).rstrip("/").rsplit("/", 1)[-1]
                if name.startswith(".") and name not in (_META, _TMP) and _AREA.match(name[1:]):
                    paths += [self._join(name, app_id), self._join(_META, name, app_id)]
        for path in paths:
            with contextlib.suppress(FileNotFoundError, OSError):
                if self.fs.exists(path):
                    self.fs.rm(path, recursive=True)

    # -- the layout ----------------------------------------------------------------------

    def _join(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _tmp_path(self) -> str:
        return self._join(_TMP, uuid.uuid4().hex)

    def _makedirs(self, path: str) -> None:
        try:
            self.fs.makedirs(path, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise Conflict(
                "a blob path cannot run through another blob", code="blob_path_conflict"
            ) from exc

    def _parent(self, path: str) -> str:
        return path.rsplit("/", 1)[0]

    def _rm_quietly(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            self.fs.rm_file(path)

    def sweep_uploads(self, older_than: float = 24 * 3600.0) -> int:
        """Remove uploads abandoned (by a killed process) more than ``older_than`` seconds
        ago; returns how many."""
        now = datetime.now(UTC).timestamp()
        removed = 0
        for path, info in self.fs.find(self._join(_TMP), detail=True).items():
            stamp = next(
                (info[k] for k in ("mtime", "LastModified", "created") if info.get(k) is not None),
                None,
            )
            if isinstance(stamp, datetime):
                stamp = stamp.timestamp()
            if isinstance(stamp, int | float) and now - stamp > older_than:
                self._rm_quietly(path)
                removed += 1
        return removed


class Blobs:
    """One namespace of a :class:`BlobStore` (an app's, or a sub-prefix of it)."""

    def __init__(self, store: BlobStore, prefix: str, *, max_bytes: int | None = None) -> None:
        self.store = store
        self.prefix = prefix
        self.max_bytes = store.max_bytes if max_bytes is None else max_bytes
        self.fs = store.fs
        self.base = store._join(prefix)
        self._meta_base = store._join(_META, prefix)

    def __repr__(self) -> str:
        return f"Blobs({self.store.url!r}, {self.prefix!r})"

    def child(self, prefix: str) -> Blobs:
        """The namespace under ``prefix`` (a path) inside this one."""
        return Blobs(self.store, f"{self.prefix}/{check_path(prefix)}", max_bytes=self.max_bytes)

    # -- paths ---------------------------------------------------------------------------

    def full_path(self, path: str) -> str:
        """Where ``path`` lives on the filesystem; refuses anything outside the namespace."""
        full = f"{self.base}/{check_path(path)}"
        if self.store.local:
            # a link planted inside the folder (not possible through the API) goes nowhere
            real = os.path.realpath(full)
            if not real.startswith(os.path.realpath(self.base) + os.sep):
                raise _bad_path(f"{path!r} leads outside the blob store")
        return full

    def _meta_path(self, path: str) -> str:
        h = hashlib.sha256(path.encode()).hexdigest()
        return f"{self._meta_base}/{h[:2]}/{h}.json"

    # -- writing -------------------------------------------------------------------------

    def upload(self, path: str, content_type: str | None = None) -> Upload:
        """An upload to ``path``: ``write`` chunks, then ``commit`` (or ``abort``)."""
        return Upload(self, path, content_type)

    def put(
        self,
        path: str,
        data: bytes | IO[bytes] | Iterable[bytes] | Path,
        content_type: str | None = None,
    ) -> BlobInfo:
        """Store ``data`` (bytes, a binary file, chunks, or a local file's Path) at ``path``."""
        if isinstance(data, Path) and content_type is None:
            content_type = _guess_type(data.name)
        with self.upload(path, content_type) as up:
            if isinstance(data, bytes | bytearray | memoryview):
                up.write(bytes(data))
            elif isinstance(data, Path):
                with open(data, "rb") as f:
                    while chunk := f.read(CHUNK):
                        up.write(chunk)
            elif hasattr(data, "read"):
                while chunk := data.read(CHUNK):
                    up.write(chunk)
            else:
                for chunk in data:
                    up.write(chunk)
            return up.commit()

    def delete(self, path: str) -> None:
        full = self.full_path(path)
        try:
            if not self.fs.isfile(full):
                raise not_found(path)
            self.fs.rm_file(full)
        except FileNotFoundError as exc:
            raise not_found(path) from exc
        meta = self._meta_path(path)
        self.store._rm_quietly(meta)
        if self.store.local:  # folders that held only this blob go with it
            with contextlib.suppress(OSError):
                os.rmdir(self.store._parent(meta))
            parent = self.store._parent(full)
            while parent.startswith(self.base + "/"):
                try:
                    os.rmdir(parent)
                except OSError:
                    break
                parent = self.store._parent(parent)

    def clear(self) -> None:
        """Remove every blob of this namespace (and their sidecars)."""
        for top in (self.base, self._meta_base):
            with contextlib.suppress(FileNotFoundError):
                if self.fs.exists(top):
                    self.fs.rm(top, recursive=True)

    # -- reading -------------------------------------------------------------------------

    def info(self, path: str) -> BlobInfo:
        full = self.full_path(path)
        try:
            got = self.fs.info(full)
        except FileNotFoundError as exc:
            raise not_found(path) from exc
        if got.get("type") != "file":
            raise not_found(path)
        size = int(got.get("size") or 0)
        meta = self._read_meta(path)
        if meta is not None and meta.get("size") == size:
            return BlobInfo(path, size, meta["content_type"], meta.get("sha256"), _modified(got))
        # no sidecar, or one left by a racing upload of other bytes: say only what we know
        return BlobInfo(path, size, _guess_type(path), None, _modified(got))

    def _read_meta(self, path: str) -> dict[str, Any] | None:
        try:
            meta = json.loads(self.fs.cat_file(self._meta_path(path)))
        except (FileNotFoundError, ValueError, OSError):
            return None
        if not isinstance(meta, dict) or meta.get("path") != path:
            return None
        return meta

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
        except NotFound:
            return False
        return True

    def open(self, path: str) -> IO[bytes]:
        """The blob as a binary file to read (close it)."""
        full = self.full_path(path)
        try:
            if not self.fs.isfile(full):
                raise not_found(path)
            f: IO[bytes] = self.fs.open(full, "rb")
        except FileNotFoundError as exc:
            raise not_found(path) from exc
        return f

    def read(self, path: str, max_bytes: int | None = None) -> bytes:
        """The blob's bytes; ``PayloadTooLarge`` if it is over ``max_bytes``."""
        with self.open(path) as f:
            if max_bytes is None:
                return f.read()
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise PayloadTooLarge(
                f"the blob {path!r} is over the limit of {max_bytes} bytes",
                code="blob_too_large",
                field="path",
            )
        return data

    def reader(self, path: str, chunk_size: int = CHUNK) -> tuple[BlobInfo, Iterator[bytes]]:
        """What the blob is and its bytes in chunks. The file is opened now (a missing blob
        raises here, not while iterating), and the size is the opened file's, so a blob
        replaced meanwhile still streams whole and as announced."""
        f = self.open(path)
        try:
            info = self.info(path)
            if self.store.local:
                size = os.fstat(f.fileno()).st_size
                if size != info.size:  # replaced between open and info: describe ours
                    info = BlobInfo(path, size, _guess_type(path), None, info.modified)
        except BaseException:
            f.close()
            raise

        def chunks() -> Iterator[bytes]:
            with f:
                while chunk := f.read(chunk_size):
                    yield chunk

        return info, chunks()

    def list(
        self, prefix: str = "", *, limit: int = 1000, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the blobs whose path starts with ``prefix``, in path order:
        ``{"data": [{path, size, modified, ref}], "count", "cursor"}``; the cursor is None
        on the last page."""
        check_path(prefix, prefix=True)
        check_limit(limit, most=10_000)
        after = _after(cursor)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = f"{self.base}/{folder}" if folder else self.base
        try:
            found = self.fs.find(top, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            found = {}
        start = len(self.base) + 1
        rows = []
        for full, got in found.items():
            name = str(full)[start:]
            if not str(full).startswith(self.base + "/") or got.get("type") != "file":
                continue
            if name.startswith(prefix) and name > after:
                rows.append((name, got))
        rows.sort(key=lambda r: r[0])
        found_page, nxt = page(rows, limit, _CURSOR, lambda r: (r[0],))
        data = [
            {
                "path": name,
                "size": int(got.get("size") or 0),
                "modified": _modified(got),
                "ref": ref_of(name),
            }
            for name, got in found_page
        ]
        return {"data": data, "count": len(data), "cursor": nxt}


class Upload:
    """A blob being written: chunks go to a temporary file, hashed and counted as they come;
    ``commit`` moves it into place, ``abort`` (or any exception inside ``with``) removes it."""

    def __init__(self, blobs: Blobs, path: str, content_type: str | None = None) -> None:
        self.blobs = blobs
        self.path = path
        self.full = blobs.full_path(path)  # checks the path before anything is written
        self.content_type = check_content_type(content_type)
        self.max_bytes = blobs.max_bytes
        self.size = 0
        self._sha = hashlib.sha256()
        store = blobs.store
        self._tmp = store._tmp_path()
        store._makedirs(store._parent(self._tmp))
        self._f: IO[bytes] | None = blobs.fs.open(self._tmp, "wb")
        self._done = False

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None or not self._done:
            self.abort()

    def too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"a blob is at most {self.max_bytes} bytes",
            field="body",
            details={"max_bytes": self.max_bytes},
        )

    def write(self, chunk: bytes) -> None:
        if self._f is None:
            raise RuntimeError("this upload is closed")
        self.size += len(chunk)
        if self.size > self.max_bytes:
            self.abort()
            raise self.too_large()
        self._sha.update(chunk)
        self._f.write(chunk)

    def commit(self) -> BlobInfo:
        """Put the blob in place (replacing the one there) and return what it is."""
        if self._f is None:
            raise RuntimeError("this upload is closed")
        store, fs = self.blobs.store, self.blobs.fs
        try:
            self._f.close()
            self._f = None
            if fs.isdir(self.full):
                raise Conflict(
                    f"{self.path!r} is a folder of other blobs", code="blob_path_conflict"
                )
            store._makedirs(store._parent(self.full))
            # the old sidecar goes first: if writing the new one fails, the blob reads
            # without a sha256 rather than with the one of the bytes it replaced
            store._rm_quietly(self.blobs._meta_path(self.path))
            if store.local:
                # os.replace: atomic, and never moves into a folder the way mv would
                os.replace(self._tmp, self.full)
            else:
                fs.mv(self._tmp, self.full)
        except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
            self.abort()
            raise Conflict(
                "a blob path cannot run through another blob", code="blob_path_conflict"
            ) from exc
        except BaseException:
            self.abort()
            raise
        self._done = True
        info = BlobInfo(self.path, self.size, self.content_type, self._sha.hexdigest(), _now_iso())
        meta = {
            "path": self.path,
            "size": self.size,
            "sha256": info.sha256,
            "content_type": self.content_type,
        }
        meta_path = self.blobs._meta_path(self.path)
        tmp = store._tmp_path()
        try:
            fs.pipe_file(tmp, json.dumps(meta).encode())
            store._makedirs(store._parent(meta_path))
            if store.local:
                os.replace(tmp, meta_path)
            else:
                fs.mv(tmp, meta_path)
        except BaseException:
            store._rm_quietly(tmp)
            raise
        return info

    def abort(self) -> None:
        """Throw the upload away; nothing of it stays."""
        if self._f is not None:
            with contextlib.suppress(Exception):
                self._f.close()
            self._f = None
        self.blobs.store._rm_quietly(self._tmp)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()
