"""Blobs through HTTP and the SDK: put/get/head/delete/list, paths that try to escape,
apps walled off, uploads that fail or are too large leave nothing."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskloom.api.app import create_app
from taskloom.errors import Invalid, NotFound, PayloadTooLarge
from taskloom.runtime import Platform
from taskloom.sdk.client import Client
from taskloom.sdk.transport import EmbeddedTransport

from .conftest import BASE_URL, error_of


def blob_files(platform: Platform) -> list[str]:
    """Every file in the blob folder (data, sidecars, uploads in flight), relative."""
    root = Path(platform.services.blobs.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_get_head_delete(http, platform, scope) -> None:
    body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    r = http.put("/v1/blobs/cats/1.png", content=body, headers={"Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    out = r.json()
    sha = hashlib.sha256(body).hexdigest()
    assert {k: out[k] for k in ("path", "size", "sha256", "content_type", "ref")} == {
        "path": "cats/1.png",
        "size": len(body),
        "sha256": sha,
        "content_type": "image/png",
        "ref": "blob://cats/1.png",
    }
    r = http.get("/v1/blobs/cats/1.png")
    assert r.status_code == 200 and r.content == body
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"
    r = http.head("/v1/blobs/cats/1.png")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == str(len(body))
    assert r.headers["etag"] == f'"{sha}"'
    # the blob is a file in the app's namespace of the blob folder
    stored = Path(platform.services.blobs.root) / scope.app_id / "cats" / "1.png"
    assert stored.read_bytes() == body

    r = http.put("/v1/blobs/cats/1.png", content=b"replaced")  # no content type given
    assert r.status_code == 201 and r.json()["content_type"] == "application/octet-stream"
    assert http.get("/v1/blobs/cats/1.png").content == b"replaced"

    assert http.delete("/v1/blobs/cats/1.png").status_code == 204
    error_of(http.get("/v1/blobs/cats/1.png"), 404, "blob_not_found")
    error_of(http.delete("/v1/blobs/cats/1.png"), 404, "blob_not_found")
    assert http.head("/v1/blobs/cats/1.png").status_code == 404
    assert http.get("/v1/blobs").json() == {"data": [], "count": 0, "cursor": None}


def test_list_pages_with_a_prefix(http) -> None:
    for name in ["a/1", "a/2", "a/3", "b/1", "ab"]:
        assert http.put(f"/v1/blobs/{name}", content=name.encode()).status_code == 201
    r = http.get("/v1/blobs", params={"prefix": "a/", "limit": 2})
    page = r.json()
    assert [b["path"] for b in page["data"]] == ["a/1", "a/2"] and page["count"] == 2
    r = http.get("/v1/blobs", params={"prefix": "a/", "limit": 2, "cursor": page["cursor"]})
    assert [b["path"] for b in r.json()["data"]] == ["a/3"] and r.json()["cursor"] is None
    assert [b["path"] for b in http.get("/v1/blobs?prefix=a").json()["data"]] == [
        "a/1",
        "a/2",
        "a/3",
        "ab",
    ]
    first = http.get("/v1/blobs").json()["data"][0]
    assert first["size"] == 3 and first["ref"] == "blob://a/1"
    error_of(http.get("/v1/blobs?cursor=nope"), 422, "invalid_cursor")
    error_of(http.get("/v1/blobs?prefix=../"), 422, "invalid_blob_path")
    error_of(http.get("/v1/blobs?limit=0"), 422)


ESCAPES = [
    "%2e%2e/secret",
    "%2E%2E/%2E%2E/etc/passwd",
    "a/%2e%2e/%2e%2e/secret",
    "%2e/x",
    "%2Fetc%2Fpasswd",  # an absolute path, its slashes encoded
    "/etc/passwd",  # //etc/passwd: an empty first segment
    "a%5C..%5Cx",  # backslashes
    "a%00b",
    "a//b",
    "",
]


def test_paths_that_try_to_escape_are_refused(http, platform, tmp_path) -> None:
    before = blob_files(platform)
    for path in ESCAPES:
        for method in ("PUT", "GET", "HEAD", "DELETE"):
            r = http.request(method, f"/v1/blobs/{path}", content=b"x" if method == "PUT" else None)
            assert r.status_code == 422, (method, path, r.status_code, r.text)
            if method != "HEAD":
                assert error_of(r, 422, "invalid_blob_path")["details"]["field"] == "path"
    assert blob_files(platform) == before
    # nothing was written next to the blob folder either
    assert not (Path(platform.services.blobs.root).parent / "secret").exists()


def test_another_app_gets_404_for_the_same_path(http, make_http) -> None:
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    bob = make_http(r.json()["api_key"])
    assert http.put("/v1/blobs/shared/name.txt", content=b"admin's").status_code == 201
    error_of(bob.get("/v1/blobs/shared/name.txt"), 404, "blob_not_found")
    assert bob.head("/v1/blobs/shared/name.txt").status_code == 404
    error_of(bob.delete("/v1/blobs/shared/name.txt"), 404, "blob_not_found")
    assert bob.get("/v1/blobs").json()["data"] == []
    # bob's blob at the same path is another blob
    assert bob.put("/v1/blobs/shared/name.txt", content=b"bob's").status_code == 201
    assert http.get("/v1/blobs/shared/name.txt").content == b"admin's"
    assert bob.get("/v1/blobs/shared/name.txt").content == b"bob's"
    assert [b["path"] for b in http.get("/v1/blobs").json()["data"]] == ["shared/name.txt"]
    # an app of the same user is another namespace too
    other = http.post("/v1/apps", json={"name": "second"}).json()["id"]
    second = make_http(app_id=other)
    error_of(second.get("/v1/blobs/shared/name.txt"), 404, "blob_not_found")
    error_of(make_http(None).get("/v1/blobs/shared/name.txt"), 401)


@pytest.fixture
def small(platform: Platform, admin_key: str) -> Iterator[tuple[Platform, httpx.Client]]:
    """An app on the same data folder whose blobs are at most 1000 bytes."""
    settings = platform.settings.model_copy(update={"blob_max_bytes": 1000})
    other = Platform(settings, workers=0, lock=None).start()
    t = EmbeddedTransport(create_app(other))
    c = httpx.Client(
        base_url=BASE_URL, transport=t, headers={"Authorization": f"Bearer {admin_key}"}
    )
    yield other, c
    c.close()
    t.close()
    other.stop()


def test_oversized_uploads_are_413_and_leave_nothing(small) -> None:
    platform, http = small
    assert http.put("/v1/blobs/keep", content=b"old").status_code == 201
    before = blob_files(platform)
    err = error_of(http.put("/v1/blobs/big", content=b"x" * 1001), 413, "payload_too_large")
    assert err["details"] == {"field": "body", "max_bytes": 1000}
    error_of(http.put("/v1/blobs/keep", content=b"x" * 5000), 413, "payload_too_large")
    assert http.put("/v1/blobs/exact", content=b"x" * 1000).status_code == 201
    http.delete("/v1/blobs/exact")
    assert blob_files(platform) == before
    assert http.get("/v1/blobs/keep").content == b"old"


def test_chunked_oversized_uploads_are_cut_off_and_leave_nothing(small, admin_key) -> None:
    """No Content-Length: the upload is refused as the bytes arrive, and nothing of it stays."""
    platform, _ = small
    before = blob_files(platform)

    async def chunks():
        for _ in range(10):
            yield b"y" * 300

    async def go() -> httpx.Response:
        app = create_app(platform)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {admin_key}"},
        ) as c:
            return await c.put("/v1/blobs/streamed", content=chunks())

    r = asyncio.run(go())
    assert "content-length" not in {k.lower() for k in r.request.headers}
    error_of(r, 413, "payload_too_large")
    assert blob_files(platform) == before


def test_blob_uploads_follow_the_blob_limit_not_the_body_limit(platform, admin_key) -> None:
    """Uploads are streamed to disk, so the server-wide body limit (max_body_bytes) does not
    cap them; the blob limit (blob_max_bytes) does, cutting a stream off mid-way with nothing
    left behind."""
    settings = platform.settings.model_copy(update={"max_body_bytes": 2000, "blob_max_bytes": 4000})
    other = Platform(settings, workers=0, lock=None).start()
    try:
        before = blob_files(other)

        def chunks(n: int):
            async def gen():
                for _ in range(n):
                    yield b"z" * 500

            return gen()

        async def go(path: str, n: int) -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(other)),
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {admin_key}"},
            ) as c:
                return await c.put(f"/v1/blobs/{path}", content=chunks(n))

        # 3,000 bytes: past the body limit, within the blob limit
        r = asyncio.run(go("fits", 6))
        assert r.status_code == 201, r.text
        assert r.json()["size"] == 3000
        # 5,000 bytes: past the blob limit, refused mid-stream
        error_of(asyncio.run(go("cut", 10)), 413, "payload_too_large")
        new = set(blob_files(other)) - set(before)
        assert any(f.endswith("/fits") for f in new), new
        assert not any(f.endswith("/cut") or f.startswith(".tmp/") for f in new), new

        # a JSON body elsewhere still meets the body limit
        async def big_json() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(other)),
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {admin_key}"},
            ) as c:
                return await c.post("/v1/datasets", json={"name": "x" * 3000})

        error_of(asyncio.run(big_json()), 413, "payload_too_large")
    finally:
        other.stop()


# -- the SDK --------------------------------------------------------------------------------------


def test_sdk_blobs(sdk, tmp_path: Path) -> None:
    info = sdk.blobs.put("docs/a.txt", b"hello", content_type="text/plain")
    assert info["ref"] == "blob://docs/a.txt" and info["size"] == 5
    assert sdk.blobs.get("docs/a.txt") == b"hello"
    assert sdk.blobs.put("docs/b.bin", io.BytesIO(b"from a file"))["size"] == 11
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG fake")
    got = sdk.blobs.put("docs/photo.png", photo)
    assert got["content_type"] == "image/png"
    assert got["sha256"] == hashlib.sha256(b"\x89PNG fake").hexdigest()
    head = sdk.blobs.info("docs/photo.png")
    assert (head["size"], head["content_type"], head["sha256"]) == (9, "image/png", got["sha256"])
    dest = tmp_path / "out" / "copy.png"
    dest.parent.mkdir()
    assert sdk.blobs.download("docs/photo.png", dest) == 9 and dest.read_bytes() == b"\x89PNG fake"
    buf = io.BytesIO()
    sdk.blobs.download("docs/a.txt", buf)
    assert buf.getvalue() == b"hello"
    names = [f"many/{i:02d}" for i in range(7)]
    for n in names:
        sdk.blobs.put(n, n.encode())
    listed = sdk.blobs.list("many/", page_size=3)
    assert not isinstance(listed, list)  # a generator: pages are fetched as it goes
    assert [b["path"] for b in listed] == names
    assert sdk.blobs.exists("docs/a.txt")
    sdk.blobs.delete("docs/a.txt")
    assert not sdk.blobs.exists("docs/a.txt")
    with pytest.raises(NotFound) as ei:
        sdk.blobs.get("docs/a.txt")
    assert ei.value.code == "blob_not_found"
    with pytest.raises(TypeError):
        sdk.blobs.put("x", "text is ambiguous")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["../escape", "a/../../b", "./x", "a/.", "/abs", "a//b"])
def test_sdk_sends_dot_segments_as_they_are(sdk, bad: str) -> None:
    """The SDK encodes '.' and '..' so no client normalises them into another path."""
    with pytest.raises(Invalid) as ei:
        sdk.blobs.put(bad, b"x")
    assert ei.value.field == "path"
    with pytest.raises(Invalid):
        sdk.blobs.get(bad)


def test_sdk_oversized_file_is_refused(small, admin_key, tmp_path: Path) -> None:
    platform, http = small
    c = Client(url=BASE_URL, api_key=admin_key, transport=http._transport, retries=0)
    big = tmp_path / "big.bin"
    big.write_bytes(b"b" * 2000)
    with pytest.raises(PayloadTooLarge):
        c.blobs.put("big.bin", big)
    assert not c.blobs.exists("big.bin")


def test_embedded_client_keeps_blobs_in_its_data_folder(tmp_path: Path) -> None:
    with Client(path=tmp_path / "data", workers=0) as c:
        c.blobs.put("x/y.txt", b"embedded")
        assert c.blobs.get("x/y.txt") == b"embedded"
        assert [b["path"] for b in c.blobs.list()] == ["x/y.txt"]
    assert any(p.name == "y.txt" for p in (tmp_path / "data" / "blobs").rglob("*"))
