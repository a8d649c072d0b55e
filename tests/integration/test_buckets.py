"""Buckets through HTTP, the SDK and the CLI: create/list/delete, put/get/ls/delete files,
path rules at the door, S3-like existence rules, apps walled off.

test_s3.py runs some of these again on an S3 blob store (moto)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskloom.errors import Conflict, Invalid, NotFound

from .conftest import error_of


def test_bucket_lifecycle(http) -> None:
    r = http.post("/v1/buckets", json={"name": "training"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "training"
    error_of(http.post("/v1/buckets", json={"name": "training"}), 409, "bucket_exists")
    assert http.post("/v1/buckets", json={"name": "alpha.data"}).status_code == 201
    names = [b["name"] for b in http.get("/v1/buckets").json()["data"]]
    assert names == ["alpha.data", "training"]
    assert http.get("/v1/buckets/training").json()["name"] == "training"
    error_of(http.get("/v1/buckets/nope"), 404, "bucket_not_found")
    assert http.delete("/v1/buckets/alpha.data").status_code == 204
    error_of(http.get("/v1/buckets/alpha.data"), 404, "bucket_not_found")


@pytest.mark.parametrize("name", ["ab", "Upper", "under_score", "a..b", "10.0.0.1", "x" * 64])
def test_bad_bucket_names_are_422(http, name) -> None:
    err = error_of(http.post("/v1/buckets", json={"name": name}), 422, "invalid_bucket_name")
    assert err["details"]["field"] == "name"


def test_put_get_ls_delete(http) -> None:
    assert http.post("/v1/buckets", json={"name": "data"}).status_code == 201
    body = b"user_id\tlabel\nu1\t1\nu2\t0\n"
    r = http.put(
        "/v1/buckets/data/files/train/labels.tsv",
        content=body,
        headers={"Content-Type": "text/tab-separated-values"},
    )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["path"] == "train/labels.tsv" and out["size"] == len(body)
    assert out["sha256"] == hashlib.sha256(body).hexdigest()
    assert "ref" not in out
    r = http.get("/v1/buckets/data/files/train/labels.tsv")
    assert r.status_code == 200 and r.content == body
    assert r.headers["content-type"].startswith("text/tab-separated-values")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert http.head("/v1/buckets/data/files/train/labels.tsv").headers["content-length"] == str(
        len(body)
    )
    for p in ("train/a.csv", "test/b.csv", "train/sub/c.csv"):
        assert http.put(f"/v1/buckets/data/files/{p}", content=p.encode()).status_code == 201
    ls = http.get("/v1/buckets/data/files", params={"prefix": "train/"}).json()
    assert [f["path"] for f in ls["data"]] == ["train/a.csv", "train/labels.tsv", "train/sub/c.csv"]
    assert ls["cursor"] is None
    page = http.get("/v1/buckets/data/files", params={"limit": 2}).json()
    assert [f["path"] for f in page["data"]] == ["test/b.csv", "train/a.csv"]
    rest = http.get("/v1/buckets/data/files", params={"cursor": page["cursor"]}).json()
    assert [f["path"] for f in rest["data"]] == ["train/labels.tsv", "train/sub/c.csv"]
    # replacing is atomic and whole
    assert http.put("/v1/buckets/data/files/train/a.csv", content=b"v2").status_code == 201
    assert http.get("/v1/buckets/data/files/train/a.csv").content == b"v2"
    assert http.delete("/v1/buckets/data/files/train/a.csv").status_code == 204
    error_of(http.get("/v1/buckets/data/files/train/a.csv"), 404, "file_not_found")
    error_of(http.delete("/v1/buckets/data/files/train/a.csv"), 404, "file_not_found")
    # a bucket with files is deleted only with force, and its files go with it
    error_of(http.delete("/v1/buckets/data"), 409, "bucket_not_empty")
    assert http.delete("/v1/buckets/data", params={"force": "true"}).status_code == 204
    assert http.post("/v1/buckets", json={"name": "data"}).status_code == 201
    assert http.get("/v1/buckets/data/files").json()["data"] == []


def test_a_bucket_must_exist_before_a_put(http) -> None:
    err = error_of(http.put("/v1/buckets/missing/files/a.tsv", content=b"x"), 404)
    assert err["code"] == "bucket_not_found" and err["details"]["field"] == "bucket"
    error_of(http.get("/v1/buckets/missing/files"), 404, "bucket_not_found")
    error_of(http.get("/v1/buckets/missing/files/a.tsv"), 404, "bucket_not_found")


BAD_PATHS = [
    "a%26b.tsv",  # &
    "a%24b",  # $
    "a@b",
    "a=b",
    "a;b",
    "a:b",
    "a+b",
    "a,b",
    "a%3Fb",  # ?
    "a*b",
    "a%5Cb",  # backslash
    "a%7Bb",
    "a%7Db",
    "a%5Eb",
    "a%25b",  # %
    "a%60b",
    "a%5Bb",
    "a%5Db",
    "a%3Cb",
    "a%3Eb",
    "a~b",
    "a%23b",  # #
    "a%7Cb",
    "a%22b",
    "a'b",
    "a%01b",
    "a%1Fb",
    "a%7Fb",
    "a%C3%A9b",  # é (U+00E9)
    "a%C3%BFb",  # ÿ (U+00FF)
    "%2E%2E/etc/passwd",
    "a/%2E%2E/%2E%2E/b",
    "a%2F..%2F..%2Fb",
    "%2Fetc%2Fpasswd",
    "a//b",
]


def test_bad_paths_are_422_and_write_nothing(http) -> None:
    assert http.post("/v1/buckets", json={"name": "data"}).status_code == 201
    for p in BAD_PATHS:
        for method in ("PUT", "GET", "DELETE"):
            r = http.request(method, f"/v1/buckets/data/files/{p}", content=b"x")
            err = error_of(r, 422, "invalid_file_path")
            assert err["details"]["field"] == "path", (p, err)
    error_of(http.get("/v1/buckets/data/files", params={"prefix": "../"}), 422, "invalid_file_path")
    assert http.get("/v1/buckets/data/files").json()["data"] == []


def test_sdk_buckets(sdk, tmp_path: Path) -> None:
    sdk.buckets.create("sdk-bucket")
    assert [b["name"] for b in sdk.buckets.list()] == ["sdk-bucket"]
    local = tmp_path / "labels.tsv"
    local.write_bytes(b"k\tlabel\na\t1\n" * 1000)
    info = sdk.buckets.put("sdk-bucket", "train/labels.tsv", local)
    assert info["size"] == local.stat().st_size
    sdk.buckets.put("sdk-bucket", "raw.bin", b"\x00\x01")
    sdk.buckets.put("sdk-bucket", "io.bin", io.BytesIO(b"from a file object"))
    assert sdk.buckets.get("sdk-bucket", "train/labels.tsv") == local.read_bytes()
    assert sdk.buckets.get("sdk-bucket", "io.bin") == b"from a file object"
    assert [f["path"] for f in sdk.buckets.ls("sdk-bucket")] == [
        "io.bin",
        "raw.bin",
        "train/labels.tsv",
    ]
    assert [f["path"] for f in sdk.buckets.ls("sdk-bucket", "train/")] == ["train/labels.tsv"]
    assert sdk.buckets.exists("sdk-bucket", "raw.bin")
    out = tmp_path / "out.tsv"
    assert sdk.buckets.download("sdk-bucket", "train/labels.tsv", out) == local.stat().st_size
    sdk.buckets.delete_file("sdk-bucket", "raw.bin")
    assert not sdk.buckets.exists("sdk-bucket", "raw.bin")
    with pytest.raises(Invalid) as ei:
        sdk.buckets.put("sdk-bucket", "../escape", b"x")
    assert ei.value.code == "invalid_file_path"
    with pytest.raises(Invalid):
        sdk.buckets.put("sdk-bucket", "a/./b", b"x")
    with pytest.raises(NotFound):
        sdk.buckets.put("no-such-bucket", "a", b"x")
    with pytest.raises(Conflict):
        sdk.buckets.delete("sdk-bucket")
    sdk.buckets.delete("sdk-bucket", force=True)
    assert sdk.buckets.list() == []


def test_service_put_get_and_tenancy(services, scope, admin) -> None:
    b = services.buckets
    b.create(scope, "shared")
    b.put(scope, "shared", "a/b.txt", b"admin's")
    assert b.get(scope, "shared", "a/b.txt") == b"admin's"
    assert b.exists(scope, "shared", "a/b.txt") and not b.exists(scope, "shared", "a/c.txt")
    bob = services.auth.create_user(admin, "bob", "bobs-app")
    bob_scope = services.auth.scope(services.auth.authenticate(bob["api_key"]))
    with pytest.raises(NotFound) as ei:
        b.get(bob_scope, "shared", "a/b.txt")
    assert ei.value.code == "bucket_not_found"
    with pytest.raises(NotFound):
        b.put(bob_scope, "shared", "a/b.txt", b"bob's")
    assert b.list(bob_scope) == []
    b.create(bob_scope, "shared")  # the same name in another app is another bucket
    b.put(bob_scope, "shared", "a/b.txt", b"bob's")
    assert b.get(scope, "shared", "a/b.txt") == b"admin's"
    assert b.get(bob_scope, "shared", "a/b.txt") == b"bob's"
    with pytest.raises(NotFound):
        b.delete(bob_scope, "nope")
    # the bucket area is apart from /v1/blobs
    assert services.blobs.app(scope.app_id).list()["data"] == []


def test_another_app_gets_404(http, make_http) -> None:
    r = http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"})
    bob = make_http(r.json()["api_key"])
    assert http.post("/v1/buckets", json={"name": "mine"}).status_code == 201
    assert http.put("/v1/buckets/mine/files/x.txt", content=b"secret").status_code == 201
    error_of(bob.get("/v1/buckets/mine"), 404, "bucket_not_found")
    error_of(bob.get("/v1/buckets/mine/files/x.txt"), 404, "bucket_not_found")
    error_of(bob.get("/v1/buckets/mine/files"), 404, "bucket_not_found")
    error_of(bob.put("/v1/buckets/mine/files/x.txt", content=b"bob"), 404, "bucket_not_found")
    error_of(bob.delete("/v1/buckets/mine", params={"force": "true"}), 404, "bucket_not_found")
    assert bob.get("/v1/buckets").json()["data"] == []
    assert http.get("/v1/buckets/mine/files/x.txt").content == b"secret"


def test_cli_buckets(server, tmp_path: Path) -> None:
    from taskloom.cli.main import app

    runner = CliRunner()
    conn = ["--url", server.url, "--api-key", server.api_key]
    r = runner.invoke(app, ["buckets", "create", "cli-data", *conn])
    assert r.exit_code == 0, r.output
    f = tmp_path / "f.csv"
    f.write_text("k,x\na,1\n")
    r = runner.invoke(app, ["buckets", "put", "cli-data", "in/f.csv", str(f), *conn])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["buckets", "ls", "cli-data", "in/", "--json", *conn])
    assert r.exit_code == 0, r.output
    assert '"in/f.csv"' in r.output
    out = tmp_path / "back.csv"
    r = runner.invoke(app, ["buckets", "get", "cli-data", "in/f.csv", "-o", str(out), *conn])
    assert r.exit_code == 0, r.output
    assert out.read_text() == "k,x\na,1\n"
    r = runner.invoke(app, ["buckets", "list", *conn])
    assert r.exit_code == 0 and "cli-data" in r.output
    r = runner.invoke(app, ["buckets", "put", "cli-data", "a:b", str(f), *conn])
    assert r.exit_code == 1 and "invalid_file_path" in r.output


def test_file_uploads_follow_the_blob_limit_not_the_body_limit(platform, admin_key) -> None:
    """Bucket files stream to the store like blobs: past the JSON body limit is fine, past
    the blob limit is 413 with nothing stored."""
    import asyncio

    import httpx

    from taskloom.api.app import create_app
    from taskloom.runtime import Platform

    from .conftest import BASE_URL

    settings = platform.settings.model_copy(update={"max_body_bytes": 2000, "blob_max_bytes": 4000})
    other = Platform(settings, workers=0, lock=None).start()
    try:

        async def go() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(other)),
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {admin_key}"},
            ) as c:
                made = await c.post("/v1/buckets", json={"name": "big-files"})
                fits = await c.put("/v1/buckets/big-files/files/a.tsv", content=b"x" * 3000)
                cut = await c.put("/v1/buckets/big-files/files/b.tsv", content=b"x" * 5000)
                listed = await c.get("/v1/buckets/big-files/files")
                return [made, fits, cut, listed]

        made, fits, cut, listed = asyncio.run(go())
        assert made.status_code == 201, made.text
        assert fits.status_code == 201 and fits.json()["size"] == 3000, fits.text
        error_of(cut, 413, "payload_too_large")
        assert [f["path"] for f in listed.json()["data"]] == ["a.tsv"]
    finally:
        other.stop()
