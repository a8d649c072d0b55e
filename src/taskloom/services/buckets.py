"""Buckets: named areas of the blob store per app, with object-storage rules.

A bucket is a row (``buckets``: id, app, name) and a namespace of the blob store,
``.buckets/<app_id>/<bucket_id>/`` (see ``taskloom.blobs``). As in S3, a bucket must be
created before files are put in it, and only an empty bucket is deleted unless the caller
asks for ``force`` (which deletes its files too).

Names follow the object-storage rules (S3, NCP): 3-63 lowercase letters, digits, dots and
hyphens, starting and ending with a letter or digit, no ``..``, not shaped like an IP
address. File paths follow NCLUE's rules, checked by :func:`check_file_path`, which the
NCLUE front door reuses for its ``train_file_path`` / ``test_file_path``.

Another app's bucket answers ``NotFound`` as if it did not exist.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from taskloom.blobs import BlobInfo, Blobs, BlobStore, Upload, check_path
from taskloom.errors import Conflict, Invalid, NotFound
from taskloom.scope import Scope
from taskloom.store.engine import Store
from taskloom.store.model_tables import buckets
from taskloom.store.types import utcnow

BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IP_LIKE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

#: The characters NCLUE refuses in a file path (besides codes 0-31 and 128-255).
FORBIDDEN_PATH_CHARS = frozenset("&$@=;:+,?*\\{}^%`[]<>~#|\"'")
MAX_FILE_PATH_BYTES = 512
MAX_SEGMENT_BYTES = 255


def check_bucket_name(name: Any, field: str = "name") -> str:
    """``name`` when it is a valid bucket name, else ``Invalid(code="invalid_bucket_name")``."""
    if (
        not isinstance(name, str)
        or not BUCKET_NAME_RE.match(name)
        or ".." in name
        or ".-" in name
        or "-." in name
        or _IP_LIKE.match(name)
    ):
        raise Invalid(
            "a bucket name is 3-63 lowercase letters, digits, '.' or '-', starting and "
            "ending with a letter or digit, without '..' and not shaped like an IP address",
            code="invalid_bucket_name",
            field=field,
        )
    return name


def _bad_file_path(message: str, field: str) -> Invalid:
    return Invalid(message, code="invalid_file_path", field=field)


def _check_path_chars(path: str, field: str) -> None:
    for ch in path:
        o = ord(ch)
        if ch in FORBIDDEN_PATH_CHARS:
            raise _bad_file_path(f"a file path may not contain {ch!r}", field)
        # NCLUE: codes 0-31 and 128-255; DEL (127) is a control character too; surrogates
        # are no characters at all. Letters beyond U+00FF (Korean, ...) are allowed.
        if o < 32 or 127 <= o <= 255 or 0xD800 <= o <= 0xDFFF:
            raise _bad_file_path(
                f"a file path may not contain the character U+{o:04X} (codes 0-31 and 127-255 "
                "are refused)",
                field,
            )


def check_file_path(path: Any, field: str = "path") -> str:
    """``path`` when it names a file inside a bucket, else ``Invalid(code="invalid_file_path",
    field=field)``.

    Refused: anything but a non-empty string; the characters ``&$@=;:+,?*\\{}^%`[]<>~#|"'``;
    codes 0-31 and 127-255; a leading ``/`` (absolute); empty, ``.`` or ``..`` segments
    (``a//b``, ``./a``, ``a/../b``) or a trailing ``/``; more than 512 UTF-8 bytes or a
    segment over 255. ``%`` being refused, no percent-encoded form (``%2e%2e``) can sneak
    an escape past the check either."""
    if not isinstance(path, str):
        raise _bad_file_path("a file path is a string", field)
    if not path:
        raise _bad_file_path("a file path is not empty", field)
    _check_path_chars(path, field)
    if len(path.encode("utf-8")) > MAX_FILE_PATH_BYTES:
        raise _bad_file_path(f"a file path is at most {MAX_FILE_PATH_BYTES} bytes", field)
    if path.startswith("/"):
        raise _bad_file_path("a file path is relative to its bucket: no leading '/'", field)
    for seg in path.split("/"):
        if seg in ("", ".", ".."):
            raise _bad_file_path(
                f"{path!r}: a file path has no empty, '.' or '..' segment (it stays in its bucket)",
                field,
            )
        if len(seg.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise _bad_file_path(
                f"a segment of a file path is at most {MAX_SEGMENT_BYTES} bytes", field
            )
    try:  # the blob store's own rules, which these imply; kept as a second lock
        check_path(path)
    except Invalid as exc:
        raise _bad_file_path(exc.message, field) from exc
    return path


def check_file_prefix(prefix: Any, field: str = "prefix") -> str:
    """A listing prefix: empty, or the start of a valid path (``"data/"``, ``"data/tr"``)."""
    if prefix == "":
        return prefix
    if not isinstance(prefix, str):
        raise _bad_file_path("a prefix is a string", field)
    check_file_path(prefix[:-1] if prefix.endswith("/") else prefix, field)
    return prefix


def public(row: Any) -> dict[str, Any]:
    return {"name": row.name, "app_id": row.app_id, "created_at": row.created_at}


def _not_found(name: str, field: str) -> NotFound:
    return NotFound(f"bucket {name!r} not found", code="bucket_not_found", field=field)


def _file_not_found(bucket: str, path: str, field: str) -> NotFound:
    return NotFound(f"no file {path!r} in bucket {bucket!r}", code="file_not_found", field=field)


class BucketService:
    """Buckets and their files. Every method takes the caller's :class:`Scope`."""

    def __init__(self, store: Store, blobs: BlobStore) -> None:
        self.store = store
        self.blobs = blobs

    # -- buckets -------------------------------------------------------------------------

    def _row(self, conn: Connection, scope: Scope, name: Any, field: str = "bucket") -> Any:
        if not isinstance(name, str) or not BUCKET_NAME_RE.match(name):
            raise _not_found(str(name)[:100], field)
        row = conn.execute(
            select(buckets).where(buckets.c.app_id == scope.app_id, buckets.c.name == name)
        ).first()
        if row is None:
            raise _not_found(name, field)
        return row

    def _files_of(self, scope: Scope, bucket_id: str) -> Blobs:
        return self.blobs.area("buckets", scope.app_id).child(bucket_id)

    def create(self, scope: Scope, name: str) -> dict[str, Any]:
        """A new empty bucket; ``Conflict(code="bucket_exists")`` if the app has one so named."""
        check_bucket_name(name)
        row = {"id": str(uuid.uuid4()), "app_id": scope.app_id, "name": name}
        try:
            with self.store.write() as conn:
                if conn.execute(
                    select(buckets.c.id).where(
                        buckets.c.app_id == scope.app_id, buckets.c.name == name
                    )
                ).first():
                    raise Conflict(f"bucket {name!r} exists", code="bucket_exists", field="name")
                conn.execute(insert(buckets).values(**row, created_at=utcnow()))
                return public(self._row(conn, scope, name))
        except IntegrityError as exc:  # a concurrent create of the same name
            raise Conflict(f"bucket {name!r} exists", code="bucket_exists", field="name") from exc

    def get_bucket(self, scope: Scope, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return public(self._row(conn, scope, name, "name"))

    def list(self, scope: Scope) -> list[dict[str, Any]]:
        q = select(buckets).where(buckets.c.app_id == scope.app_id).order_by(buckets.c.name)
        with self.store.read() as conn:
            return [public(r) for r in conn.execute(q)]

    def delete(self, scope: Scope, name: str, *, force: bool = False) -> None:
        """Delete an empty bucket; with ``force`` its files go too. A bucket with files and no
        ``force`` is ``Conflict(code="bucket_not_empty")``."""
        with self.store.write() as conn:
            row = self._row(conn, scope, name, "name")
            files = self._files_of(scope, row.id)
            if not force and files.list("", limit=1)["count"]:
                raise Conflict(
                    f"bucket {name!r} is not empty; delete its files or pass force",
                    code="bucket_not_empty",
                    field="name",
                )
            conn.execute(delete(buckets).where(buckets.c.id == row.id))
        # after the row: a file put meanwhile lands in a namespace nothing reaches any more
        files.clear()

    # -- files ---------------------------------------------------------------------------

    def files(self, scope: Scope, bucket: str, field: str = "bucket") -> Blobs:
        """The blob namespace of an existing bucket (``NotFound`` otherwise): for services
        that read a bucket's files themselves (features, training, batch prediction). Check
        paths with :func:`check_file_path` before use."""
        with self.store.read() as conn:
            row = self._row(conn, scope, bucket, field)
        return self._files_of(scope, row.id)

    def upload(
        self, scope: Scope, bucket: str, path: str, content_type: str | None = None
    ) -> Upload:
        """A streamed upload to ``path``: ``write`` chunks, then ``commit`` (or ``abort``)."""
        check_file_path(path)
        return self.files(scope, bucket).upload(path, content_type)

    def put(
        self,
        scope: Scope,
        bucket: str,
        path: str,
        data: bytes | IO[bytes] | Iterable[bytes] | Path,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """Store ``data`` at ``path`` (replacing the file there); atomic: a reader sees the
        old file or the new one. Returns ``{path, size, sha256, content_type, modified}``."""
        check_file_path(path)
        return _file_public(self.files(scope, bucket).put(path, data, content_type))

    def info(self, scope: Scope, bucket: str, path: str) -> dict[str, Any]:
        check_file_path(path)
        files = self.files(scope, bucket)
        try:
            return _file_public(files.info(path))
        except NotFound as exc:
            raise _file_not_found(bucket, path, "path") from exc

    def exists(self, scope: Scope, bucket: str, path: str) -> bool:
        try:
            self.info(scope, bucket, path)
        except NotFound as exc:
            if exc.code == "bucket_not_found":
                raise
            return False
        return True

    def open(self, scope: Scope, bucket: str, path: str, field: str = "path") -> IO[bytes]:
        """The file as a binary file to read (close it)."""
        check_file_path(path, field)
        files = self.files(scope, bucket)
        try:
            return files.open(path)
        except NotFound as exc:
            raise _file_not_found(bucket, path, field) from exc

    def get(self, scope: Scope, bucket: str, path: str, max_bytes: int | None = None) -> bytes:
        """The file's bytes (all in memory; ``PayloadTooLarge`` beyond ``max_bytes``)."""
        check_file_path(path)
        files = self.files(scope, bucket)
        try:
            return files.read(path, max_bytes)
        except NotFound as exc:
            raise _file_not_found(bucket, path, "path") from exc

    def reader(
        self, scope: Scope, bucket: str, path: str
    ) -> tuple[dict[str, Any], Iterator[bytes]]:
        """What the file is and its bytes in chunks (opened now: a missing file raises here)."""
        check_file_path(path)
        files = self.files(scope, bucket)
        try:
            info, chunks = files.reader(path)
        except NotFound as exc:
            raise _file_not_found(bucket, path, "path") from exc
        return _file_public(info), chunks

    def ls(
        self,
        scope: Scope,
        bucket: str,
        prefix: str = "",
        *,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of the files whose path starts with ``prefix``, in path order:
        ``{"data": [{path, size, modified}], "count", "cursor"}`` (cursor None at the end)."""
        check_file_prefix(prefix)
        page = self.files(scope, bucket).list(prefix, limit=limit, cursor=cursor)
        for item in page["data"]:
            item.pop("ref", None)  # a blob:// reference means the /v1/blobs namespace
        return page

    def delete_file(self, scope: Scope, bucket: str, path: str) -> None:
        check_file_path(path)
        files = self.files(scope, bucket)
        try:
            files.delete(path)
        except NotFound as exc:
            raise _file_not_found(bucket, path, "path") from exc


def _file_public(info: BlobInfo) -> dict[str, Any]:
    out = info.to_dict()
    out.pop("ref", None)
    return out
