"""The blob store on a real folder (and on fsspec's memory filesystem, as a stand-in for
object stores): paths that escape are refused, apps are walled off, uploads are atomic."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskloom.blobs import BlobStore, check_path, path_of_ref
from taskloom.errors import Conflict, Invalid, NotFound, PayloadTooLarge


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", max_bytes=1000)


@pytest.fixture(params=["folder", "memory"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "folder":
        yield BlobStore(tmp_path / "blobs", max_bytes=1000)
        return
    url = f"memory://taskloom-test-{uuid.uuid4().hex}"
    s = BlobStore(url, max_bytes=1000)
    yield s
    s.fs.rm(s.root, recursive=True)


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


BAD_PATHS = [
    "",
    "/etc/passwd",
    "../x",
    "a/../../x",
    "a/./b",
    ".",
    "..",
    "a//b",
    "a/",
    "a\\..\\b",
    "a\x00b",
    "a\nb",
    "x" * 256,
    "a/" * 300 + "b",
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_bad_paths_are_refused_before_anything_is_touched(store: BlobStore, bad: str) -> None:
    blobs = store.app("app1")
    for op in (
        lambda: blobs.put(bad, b"x"),
        lambda: blobs.read(bad),
        lambda: blobs.info(bad),
        lambda: blobs.delete(bad),
    ):
        with pytest.raises(Invalid) as ei:
            op()
        assert ei.value.field == "path" and ei.value.code == "invalid_blob_path"
    assert not (Path(store.root) / "app1").exists()


@pytest.mark.parametrize("good", ["a", "cats/1.png", ".hidden", "a..b/c...d", "ünï cödé/ø.txt"])
def test_good_paths(good: str) -> None:
    assert check_path(good) == good
    assert path_of_ref(f"blob://{good}") == good


def test_refs_must_be_blob_urls() -> None:
    assert path_of_ref("BLOB://a/b") == "a/b"
    for bad in ("blob:a", "blob:///a", "blob://../a", "s3://a"):
        with pytest.raises(Invalid):
            path_of_ref(bad)


def test_put_read_info_list_delete(any_store: BlobStore) -> None:
    blobs = any_store.app("app1")
    got = blobs.put("cats/1.png", b"\x89PNG...", "image/png")
    assert (got.path, got.size, got.content_type, got.ref) == (
        "cats/1.png",
        7,
        "image/png",
        "blob://cats/1.png",
    )
    assert got.sha256 == hashlib.sha256(b"\x89PNG...").hexdigest()
    assert blobs.read("cats/1.png") == b"\x89PNG..."
    assert blobs.info("cats/1.png").sha256 == got.sha256
    assert blobs.info("cats/1.png").content_type == "image/png"
    info, chunks = blobs.reader("cats/1.png", chunk_size=3)
    assert info.size == 7 and list(chunks) == [b"\x89PN", b"G..", b"."]
    blobs.put("cats/2.png", io.BytesIO(b"two"))
    blobs.put("dogs/1.png", iter([b"d", b"o", b"g"]))
    assert blobs.info("cats/2.png").content_type == "application/octet-stream"
    assert [b["path"] for b in blobs.list()["data"]] == ["cats/1.png", "cats/2.png", "dogs/1.png"]
    assert [b["path"] for b in blobs.list("cats/")["data"]] == ["cats/1.png", "cats/2.png"]
    assert [b["path"] for b in blobs.list("do")["data"]] == ["dogs/1.png"]
    assert blobs.list("nothing/here/")["data"] == []
    # replacing keeps one blob with the new bytes and type
    blobs.put("cats/1.png", b"new", "image/jpeg")
    assert blobs.read("cats/1.png") == b"new"
    assert blobs.info("cats/1.png").content_type == "image/jpeg"
    blobs.delete("cats/1.png")
    with pytest.raises(NotFound) as ei:
        blobs.read("cats/1.png")
    assert ei.value.code == "blob_not_found"
    with pytest.raises(NotFound):
        blobs.delete("cats/1.png")
    with pytest.raises(NotFound):
        blobs.info("cats")  # a folder is not a blob
    assert not blobs.exists("cats/1.png") and blobs.exists("cats/2.png")


def test_listing_pages_with_cursors(any_store: BlobStore) -> None:
    blobs = any_store.app("app1")
    names = [f"p/{i:03d}" for i in range(25)]
    for n in names:
        blobs.put(n, n.encode())
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = blobs.list("p/", limit=10, cursor=cursor)
        seen += [b["path"] for b in page["data"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
    assert seen == names and pages == 3
    for bad in ("%%%", "Yjo", "eDpmb28"):  # not base64; "b:" with no path; another tag
        with pytest.raises(Invalid) as ei:
            blobs.list(cursor=bad)
        assert ei.value.code == "invalid_cursor"
    with pytest.raises(Invalid):
        blobs.list("../")


def test_apps_never_see_each_other(any_store: BlobStore) -> None:
    mine, theirs = any_store.app("app1"), any_store.app("app2")
    mine.put("same/path.txt", b"mine")
    with pytest.raises(NotFound):
        theirs.read("same/path.txt")
    with pytest.raises(NotFound):
        theirs.delete("same/path.txt")
    assert theirs.list()["data"] == []
    theirs.put("same/path.txt", b"theirs")
    assert mine.read("same/path.txt") == b"mine"
    with pytest.raises(Invalid):
        theirs.read("../app1/same/path.txt")
    with pytest.raises(ValueError):
        any_store.app("../app1")


def test_sub_namespaces(store: BlobStore) -> None:
    blobs = store.app("app1")
    bucket = blobs.child("buckets/raw")
    bucket.put("a.txt", b"a")
    assert blobs.read("buckets/raw/a.txt") == b"a"
    assert [b["path"] for b in bucket.list()["data"]] == ["a.txt"]
    with pytest.raises(Invalid):
        blobs.child("../app2")


def test_an_oversized_upload_leaves_nothing(any_store: BlobStore) -> None:
    blobs = any_store.app("app1")
    blobs.put("keep", b"old")
    with pytest.raises(PayloadTooLarge) as ei:
        blobs.put("big", b"x" * 1001)
    assert ei.value.status_code == 413 and ei.value.details["max_bytes"] == 1000
    with pytest.raises(PayloadTooLarge):
        blobs.put("keep", iter([b"x" * 600, b"x" * 600]))  # found out mid-stream
    assert blobs.read("keep") == b"old"
    assert not blobs.exists("big")
    assert [b["path"] for b in blobs.list()["data"]] == ["keep"]
    assert any_store.fs.find(any_store.root + "/.tmp") == []
    blobs.put("exact", b"x" * 1000)  # the limit itself is allowed


def test_a_failed_upload_leaves_nothing(store: BlobStore) -> None:
    blobs = store.app("app1")
    blobs.put("a", b"old")

    def broken() -> Iterator[bytes]:
        yield b"new "
        raise ConnectionError("the client went away")

    with pytest.raises(ConnectionError):
        blobs.put("a", broken())
    with pytest.raises(ConnectionError):
        blobs.put("b", broken())
    assert blobs.read("a") == b"old" and not blobs.exists("b")
    up = blobs.upload("c", "text/plain")
    up.write(b"half")
    up.abort()
    assert not blobs.exists("c")
    root = Path(store.root)
    assert files_under(root / ".tmp") == []
    assert files_under(root / "app1") == ["a"]


def test_a_blob_and_a_folder_cannot_share_a_path(store: BlobStore) -> None:
    blobs = store.app("app1")
    blobs.put("a/b", b"1")
    with pytest.raises(Conflict):
        blobs.put("a", b"2")
    with pytest.raises(Conflict):
        blobs.put("a/b/c", b"3")
    assert blobs.read("a/b") == b"1"
    assert files_under(Path(store.root) / ".tmp") == []


def test_links_planted_in_the_folder_lead_nowhere(store: BlobStore, tmp_path: Path) -> None:
    blobs = store.app("app1")
    blobs.put("ok", b"ok")
    (tmp_path / "secret").write_text("secret")
    os.symlink(tmp_path, Path(store.root) / "app1" / "out")
    with pytest.raises(Invalid):
        blobs.read("out/secret")


def test_a_blob_without_a_sidecar_still_reads(store: BlobStore) -> None:
    """Put there by other means (a copy into the folder): the type is guessed, no sha256."""
    folder = Path(store.root) / "app1" / "imgs"
    folder.mkdir(parents=True)
    (folder / "x.png").write_bytes(b"png")
    info = store.app("app1").info("imgs/x.png")
    assert (info.size, info.content_type, info.sha256) == (3, "image/png", None)


def test_put_from_a_local_file_guesses_its_type(store: BlobStore, tmp_path: Path) -> None:
    f = tmp_path / "photo.jpg"
    f.write_bytes(b"jpeg bytes")
    info = store.app("app1").put("p.jpg", f)
    assert (info.size, info.content_type) == (10, "image/jpeg")


def test_read_with_a_limit(store: BlobStore) -> None:
    blobs = store.app("app1")
    blobs.put("a", b"12345")
    assert blobs.read("a", max_bytes=5) == b"12345"
    with pytest.raises(PayloadTooLarge):
        blobs.read("a", max_bytes=4)


def test_content_types_are_checked(store: BlobStore) -> None:
    with pytest.raises(Invalid) as ei:
        store.app("app1").put("a", b"", "x" * 300)
    assert ei.value.field == "content_type"
    assert store.app("app1").put("empty", b"", " ").content_type == "application/octet-stream"


def test_abandoned_uploads_are_swept(store: BlobStore) -> None:
    """An upload whose process was killed leaves a temporary file; the sweep removes old ones."""
    blobs = store.app("app1")
    stale = blobs.upload("a")
    stale.write(b"half")
    fresh = blobs.upload("b")
    tmp = Path(store.root) / ".tmp"
    (old,) = [p for p in tmp.iterdir() if p.name == Path(stale._tmp).name]
    os.utime(old, (0, 0))
    assert store.sweep_uploads(older_than=3600) == 1
    assert [p.name for p in tmp.iterdir()] == [Path(fresh._tmp).name]
    fresh.abort()
    assert not blobs.exists("a") and not blobs.exists("b")
