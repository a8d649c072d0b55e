"""encode_image_clip over ``blob://`` references (issue 3: an image field is a URL, a blob
reference, or a path inside an allowed folder), with the tiny random CLIP of the encode tests.

Images uploaded through ``PUT /v1/blobs`` encode to the same vectors as the same images read
from the media folder; a reference resolves in the job's own app only; a missing, malformed or
another app's reference is a per-document failure like a missing file or a refused URL."""

from __future__ import annotations

from pathlib import Path

from . import test_encode_jobs as encode_tests
from .conftest import error_of
from .test_encode_jobs import _png, make_dataset, only_output, run_job, vectors_of

# the tiny random CLIP and the media folder, the encode tests' own fixtures
clip_dir = encode_tests.clip_dir
media = encode_tests.media


def test_images_given_as_blob_refs_encode_like_local_files(
    services, scope, media: Path, http, make_http
) -> None:
    # another app has its own (different) picture at the same path
    bob = make_http(
        http.post("/v1/users", json={"name": "bob", "app_name": "bobs-app"}).json()["api_key"]
    )
    assert bob.put("/v1/blobs/cats/0.png", content=_png(99)).status_code == 201
    assert bob.put("/v1/blobs/only-bobs.png", content=_png(98)).status_code == 201

    refs = []
    for i in range(3):
        (media / f"{i}.png").write_bytes(_png(i))
        r = http.put(
            f"/v1/blobs/cats/{i}.png", content=_png(i), headers={"Content-Type": "image/png"}
        )
        assert r.status_code == 201, r.text
        refs.append(r.json()["ref"])
    assert refs == [f"blob://cats/{i}.png" for i in range(3)]
    http.put("/v1/blobs/broken.png", content=b"not an image")

    make_dataset(
        services, scope, "by-path", [{"_id": f"i{i}", "image": f"{i}.png"} for i in range(3)]
    )
    failing = {
        "missing": "blob://cats/none.png",
        "escape": "blob://../secret.png",
        "encoded-escape": "blob://%2e%2e/secret.png",
        "absolute": "blob:///etc/passwd",
        "empty": "blob://",
        "theirs": "blob://only-bobs.png",
        "broken": "blob://broken.png",
    }
    docs = [{"_id": f"i{i}", "image": ref} for i, ref in enumerate(refs)]
    docs += [{"_id": k, "image": v} for k, v in failing.items()]
    make_dataset(services, scope, "by-blob", docs)

    by_path = only_output(
        run_job(services, scope, "encode_image_clip", {"field": "image"}, "by-path")
    )
    by_blob = only_output(
        run_job(services, scope, "encode_image_clip", {"field": "image"}, "by-blob")
    )
    assert (by_path["encoded"], by_path["failed"]) == (3, 0)
    assert (by_blob["encoded"], by_blob["failed"]) == (3, len(failing))
    assert {f["_id"]: f["code"] for f in by_blob["failures"]} == {
        "missing": "blob_not_found",
        "escape": "invalid_blob_ref",
        "encoded-escape": "blob_not_found",  # taken literally: a file named "%2e%2e" (absent)
        "absolute": "invalid_blob_ref",
        "empty": "invalid_blob_ref",
        "theirs": "blob_not_found",
        "broken": "not_an_image",
    }
    from_blobs = vectors_of(services, scope, "by-blob", "image_default_vector_")
    from_files = vectors_of(services, scope, "by-path", "image_default_vector_")
    assert set(from_blobs) == {"i0", "i1", "i2"}
    assert from_blobs == from_files  # the same bytes, the same vectors: not bob's cats/0.png

    # a blob deleted since: that document fails on a refresh, the others encode again
    assert http.delete("/v1/blobs/cats/2.png").status_code == 204
    error_of(http.get("/v1/blobs/cats/2.png"), 404, "blob_not_found")
    redo = only_output(
        run_job(
            services, scope, "encode_image_clip", {"field": "image", "refresh": True}, "by-blob"
        )
    )
    assert redo["encoded"] == 2
    assert {f["_id"] for f in redo["failures"]} == set(failing) | {"i2"}
