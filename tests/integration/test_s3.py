"""The blob store, buckets and feature tables on S3: s3fs against moto's S3 server (a real
HTTP peer on a free port), configured as a user would (TASKLOOM_BLOB_URL=s3://..., endpoint,
key and secret). The same tests as on a folder, re-run here."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import boto3
import moto.server as moto_server
import pytest
import s3fs  # noqa: F401  (the store's S3 path needs it; fail here, not in a test)

from taskloom.config import Settings

from . import test_buckets, test_features, test_task_models
from .conftest import error_of

KEY, SECRET, REGION = "testing", "testing", "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def settings(settings: Settings, s3_endpoint: str, monkeypatch) -> Settings:
    """The usual test settings with blobs on a fresh S3 bucket (one per test)."""
    name = f"tl-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name=REGION,
    )
    s3.create_bucket(Bucket=name)
    # as a user configures it: environment variables read by Settings
    monkeypatch.setenv("TASKLOOM_BLOB_URL", f"s3://{name}/taskloom")
    monkeypatch.setenv("TASKLOOM_BLOB_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv(
        "TASKLOOM_BLOB_OPTIONS",
        f'{{"key": "{KEY}", "secret": "{SECRET}", "client_kwargs": {{"region_name": "{REGION}"}}}}',
    )
    s = Settings(
        data_dir=settings.data_dir,
        database_url=settings.database_url,
        bootstrap_api_key=settings.bootstrap_api_key,
    )
    assert s.blob_url == f"s3://{name}/taskloom"
    return s


@pytest.fixture
def s3(settings: Settings):
    """A boto3 view of the S3 bucket, to see what taskloom wrote there."""
    name = settings.resolved_blob_url.split("/")[2]
    client = boto3.client(
        "s3",
        endpoint_url=settings.blob_s3_endpoint_url,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name=REGION,
    )

    def keys(prefix: str = "") -> list[str]:
        got = client.list_objects_v2(Bucket=name, Prefix=prefix)
        return sorted(o["Key"] for o in got.get("Contents", []))

    return keys


def test_the_store_is_on_s3(platform) -> None:
    store = platform.services.blobs
    assert not store.local
    assert type(store.fs).__name__ == "S3FileSystem"


# the same tests as on a folder
test_bucket_lifecycle = test_buckets.test_bucket_lifecycle
test_put_get_ls_delete = test_buckets.test_put_get_ls_delete
test_a_bucket_must_exist_before_a_put = test_buckets.test_a_bucket_must_exist_before_a_put
test_bad_paths_are_422_and_write_nothing = test_buckets.test_bad_paths_are_422_and_write_nothing
test_sdk_buckets = test_buckets.test_sdk_buckets
test_service_put_get_and_tenancy = test_buckets.test_service_put_get_and_tenancy
test_another_app_gets_404 = test_buckets.test_another_app_gets_404
test_from_file_equals_pandas = test_features.test_from_file_equals_pandas
test_lookup = test_features.test_lookup
test_delete_and_tenancy = test_features.test_delete_and_tenancy
bucket = test_features.bucket
# task models: training reads its files from the bucket, the artifact goes to the store
data = test_task_models.data
feature_id = test_task_models.feature_id
test_lifecycle_and_quality_on_a_held_out_split = (
    test_task_models.test_lifecycle_and_quality_on_a_held_out_split
)
test_predict_keys_rows_and_batch = test_task_models.test_predict_keys_rows_and_batch
# the stored table is read in batches through an S3 file object
test_the_job_trains_the_model_the_in_memory_path_trains = (
    test_task_models.test_the_job_trains_the_model_the_in_memory_path_trains
)
test_failures_carry_their_reason_and_are_not_retried = (
    test_task_models.test_failures_carry_their_reason_and_are_not_retried
)


def test_blobs_put_get_list_delete_on_s3(http, platform, scope, s3) -> None:
    body = bytes(range(256)) * 4000  # 1 MB, more than one write chunk
    r = http.put("/v1/blobs/cats/1.bin", content=body, headers={"Content-Type": "x/y"})
    assert r.status_code == 201, r.text
    assert http.get("/v1/blobs/cats/1.bin").content == body
    assert http.head("/v1/blobs/cats/1.bin").headers["content-type"] == "x/y"
    assert [b["path"] for b in http.get("/v1/blobs").json()["data"]] == ["cats/1.bin"]
    # the object is where the layout says, and no upload is left in flight
    app_keys = s3(f"taskloom/{scope.app_id}/")
    assert app_keys == [f"taskloom/{scope.app_id}/cats/1.bin"]
    assert s3("taskloom/.tmp/") == []
    assert http.delete("/v1/blobs/cats/1.bin").status_code == 204
    error_of(http.get("/v1/blobs/cats/1.bin"), 404, "blob_not_found")
    assert s3(f"taskloom/{scope.app_id}/") == []


def test_failed_uploads_leave_nothing_on_s3(services, scope, s3) -> None:
    files = services.buckets
    files.create(scope, "atomic")
    files.put(scope, "atomic", "a.txt", b"old")
    up = files.upload(scope, "atomic", "a.txt")
    up.write(b"half of the new")
    up.abort()
    assert files.get(scope, "atomic", "a.txt") == b"old"

    def chunks():
        yield b"new bytes"
        raise OSError("the client went away")

    with pytest.raises(OSError):
        files.put(scope, "atomic", "a.txt", chunks())
    assert files.get(scope, "atomic", "a.txt") == b"old"
    assert s3("taskloom/.tmp/") == []
    small = services.blobs.max_bytes
    services.blobs.max_bytes = 4
    try:
        with pytest.raises(Exception) as ei:
            files.put(scope, "atomic", "b.txt", b"too large")
        assert getattr(ei.value, "code", "") == "payload_too_large"
    finally:
        services.blobs.max_bytes = small
    assert not files.exists(scope, "atomic", "b.txt")
    assert s3("taskloom/.tmp/") == []
    # the bucket's objects live in the app's .buckets area
    assert any(k.startswith(f"taskloom/.buckets/{scope.app_id}/") for k in s3())
    files.delete(scope, "atomic", force=True)
    assert s3(f"taskloom/.buckets/{scope.app_id}/") == []
