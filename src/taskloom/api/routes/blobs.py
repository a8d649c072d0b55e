"""Blobs: put (streamed raw body), get (streamed), head, delete and list, in the caller's app.

``PUT /v1/blobs/{path}`` stores the request body as it is, with its Content-Type, and
answers ``201 {path, size, sha256, content_type, modified, ref}``; ``ref`` (``blob://path``)
is what a document's media field names it by. Another app's blob at the same path answers
404: every app has its own namespace (see ``taskloom.blobs``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.storage import BYTES, RAW_BODY, BlobPage
from taskloom.api.schemas.storage import BlobInfo as BlobAnswer
from taskloom.blobs import BlobInfo
from taskloom.errors import PayloadTooLarge

router = APIRouter(prefix="/v1", tags=["blobs"])

WRITE_CHUNK = 1 << 20  # bytes gathered from the request before one write to the store


def _headers(info: BlobInfo) -> dict[str, str]:
    headers = {
        "Content-Length": str(info.size),
        # what a user uploaded is served as data, never run as a page of this origin
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if info.sha256:
        headers["ETag"] = f'"{info.sha256}"'
    return headers


@router.get("/blobs", response_model=BlobPage, responses=error_responses())
def list_blobs(
    scope: ScopeDep,
    services: ServicesDep,
    prefix: Annotated[str, Query(max_length=1024)] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    cursor: str | None = None,
) -> FastJSONResponse:
    """The app's blobs whose path starts with ``prefix``, in path order, a page at a time."""
    page = services.blobs.app(scope.app_id).list(prefix, limit=limit, cursor=cursor)
    return ok(page)


async def receive_upload(request: Request, upload: Any) -> Any:
    """Stream the request body into ``upload`` (written off the event loop in
    ``WRITE_CHUNK`` pieces) and commit it; on any failure (the client went away, the body was
    too large, the store failed) the upload is aborted and leaves nothing."""
    try:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= WRITE_CHUNK:
                await run_in_threadpool(upload.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(upload.write, bytes(pending))
        return await run_in_threadpool(upload.commit)
    except BaseException:
        upload.abort()
        raise


@router.put(
    "/blobs/{path:path}",
    status_code=201,
    response_model=BlobAnswer,
    responses=error_responses(409, 413),
    openapi_extra=RAW_BODY,
)
async def put_blob(
    path: str, request: Request, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Store the raw request body at ``path`` (replacing what was there)."""
    store = services.blobs
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > store.max_bytes:
        raise PayloadTooLarge(
            f"a blob is at most {store.max_bytes} bytes",
            field="body",
            details={"max_bytes": store.max_bytes},
        )
    blobs = store.app(scope.app_id)
    upload = await run_in_threadpool(blobs.upload, path, request.headers.get("content-type"))
    info = await receive_upload(request, upload)
    return ok(info.to_dict(), 201)


@router.get(
    "/blobs/{path:path}",
    response_class=StreamingResponse,
    responses={200: BYTES, **error_responses()},
)
def get_blob(path: str, scope: ScopeDep, services: ServicesDep) -> StreamingResponse:
    """The blob's bytes, streamed, with the content type it was stored with."""
    info, chunks = services.blobs.app(scope.app_id).reader(path)
    return StreamingResponse(chunks, media_type=info.content_type, headers=_headers(info))


# not in the OpenAPI schema: HEAD is GET without the body, and an answer to HEAD carries no
# error envelope either, which is what the schema promises for every 4xx
@router.head("/blobs/{path:path}", include_in_schema=False)
def head_blob(path: str, scope: ScopeDep, services: ServicesDep) -> Response:
    """The headers of GET (size, content type, ETag = sha256), without the bytes."""
    info = services.blobs.app(scope.app_id).info(path)
    return Response(status_code=200, media_type=info.content_type, headers=_headers(info))


@router.delete("/blobs/{path:path}", status_code=204, responses=error_responses(409))
def delete_blob(path: str, scope: ScopeDep, services: ServicesDep) -> Response:
    services.blobs.app(scope.app_id).delete(path)
    return Response(status_code=204)
