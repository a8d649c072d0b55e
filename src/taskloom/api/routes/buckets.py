"""Buckets and their files (``taskloom.services.buckets``), in the caller's app.

    POST   /v1/buckets                              {"name"} -> 201 bucket
    GET    /v1/buckets                              {"data": [bucket], "count"}
    GET    /v1/buckets/{bucket}                     bucket
    DELETE /v1/buckets/{bucket}?force=false         204 (409 bucket_not_empty without force)
    GET    /v1/buckets/{bucket}/files?prefix=&limit=&cursor=     a page of files
    PUT    /v1/buckets/{bucket}/files/{path}        raw body -> 201 {path, size, sha256, ...}
    GET    /v1/buckets/{bucket}/files/{path}        the bytes, streamed
    HEAD   /v1/buckets/{bucket}/files/{path}        the headers of GET
    DELETE /v1/buckets/{bucket}/files/{path}        204

A bucket must exist before files go in it (as in S3). Another app's bucket answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.routes.blobs import receive_upload
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.storage import BYTES, RAW_BODY, Bucket, BucketList, FileInfo, FilePage
from taskloom.errors import PayloadTooLarge

router = APIRouter(prefix="/v1/buckets", tags=["buckets"])


class BucketCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def _headers(info: dict[str, Any]) -> dict[str, str]:
    headers = {
        "Content-Length": str(info["size"]),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if info.get("sha256"):
        headers["ETag"] = f'"{info["sha256"]}"'
    return headers


@router.post("", status_code=201, response_model=Bucket, responses=error_responses(409, body=True))
def create_bucket(body: BucketCreate, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """Create an empty bucket (3-63 lowercase letters, digits, '.' and '-')."""
    return ok(services.buckets.create(scope, body.name), 201)


@router.get("", response_model=BucketList, responses=error_responses())
def list_buckets(scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    data = services.buckets.list(scope)
    return ok({"data": data, "count": len(data)})


@router.get("/{bucket}", response_model=Bucket, responses=error_responses())
def get_bucket(bucket: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.buckets.get_bucket(scope, bucket))


@router.delete("/{bucket}", status_code=204, responses=error_responses(409))
def delete_bucket(
    bucket: str, scope: ScopeDep, services: ServicesDep, force: bool = False
) -> Response:
    """Delete an empty bucket; ``force=true`` deletes its files too."""
    services.buckets.delete(scope, bucket, force=force)
    return Response(status_code=204)


@router.get("/{bucket}/files", response_model=FilePage, responses=error_responses())
def list_files(
    bucket: str,
    scope: ScopeDep,
    services: ServicesDep,
    prefix: Annotated[str, Query(max_length=1024)] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: str | None = None,
) -> FastJSONResponse:
    """The files whose path starts with ``prefix``, in path order, a page at a time."""
    return ok(services.buckets.ls(scope, bucket, prefix, limit=limit, cursor=cursor))


@router.put(
    "/{bucket}/files/{path:path}",
    status_code=201,
    response_model=FileInfo,
    responses=error_responses(409, 413),
    openapi_extra=RAW_BODY,
)
async def put_file(
    bucket: str, path: str, request: Request, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Store the raw request body at ``path`` in the bucket (replacing what was there)."""
    max_bytes = services.blobs.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"a file is at most {max_bytes} bytes", field="body", details={"max_bytes": max_bytes}
        )
    upload = await run_in_threadpool(
        services.buckets.upload, scope, bucket, path, request.headers.get("content-type")
    )
    info = await receive_upload(request, upload)
    out = info.to_dict()
    out.pop("ref", None)
    return ok(out, 201)


@router.get(
    "/{bucket}/files/{path:path}",
    response_class=StreamingResponse,
    responses={200: BYTES, **error_responses()},
)
def get_file(bucket: str, path: str, scope: ScopeDep, services: ServicesDep) -> StreamingResponse:
    """The file's bytes, streamed."""
    info, chunks = services.buckets.reader(scope, bucket, path)
    return StreamingResponse(chunks, media_type=info["content_type"], headers=_headers(info))


@router.head("/{bucket}/files/{path:path}", include_in_schema=False)
def head_file(bucket: str, path: str, scope: ScopeDep, services: ServicesDep) -> Response:
    info = services.buckets.info(scope, bucket, path)
    return Response(status_code=200, media_type=info["content_type"], headers=_headers(info))


@router.delete("/{bucket}/files/{path:path}", status_code=204, responses=error_responses(409))
def delete_file(bucket: str, path: str, scope: ScopeDep, services: ServicesDep) -> Response:
    services.buckets.delete_file(scope, bucket, path)
    return Response(status_code=204)
