"""Jobs: submit, watch (JSON or server-sent events), list, cancel, start, delete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, dumps, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.common import Deleted
from taskloom.api.schemas.errors import also
from taskloom.api.schemas.jobs import SSE, Job, JobEventList, JobKindList, JobPage
from taskloom.jobs.states import TERMINAL

router = APIRouter(prefix="/v1", tags=["jobs"])


class JobSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    dataset: str | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    queue: bool = Field(default=True, description="false: register only; start it later")
    parent_id: str | None = None


@router.get("/job-kinds", response_model=JobKindList, responses=error_responses())
def job_kinds(request: Request, _scope: ScopeDep) -> FastJSONResponse:
    reg = request.app.state.platform.registry
    kinds = reg.describe()
    return ok({"data": kinds, "count": len(kinds)})


@router.post(
    "/jobs",
    status_code=201,
    response_model=Job,
    responses={
        **also(200, Job, "The job of this idempotency_key, made before"),
        **error_responses(404, 409, body=True),
    },
)
def submit_job(body: JobSubmit, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    job, created = services.jobs.submit(
        scope,
        body.kind,
        body.params,
        dataset=body.dataset,
        idempotency_key=body.idempotency_key,
        max_attempts=body.max_attempts,
        queue=body.queue,
        parent_id=body.parent_id,
    )
    return ok(job, 201 if created else 200)


@router.get("/jobs", response_model=JobPage, responses=error_responses())
def list_jobs(
    scope: ScopeDep,
    services: ServicesDep,
    dataset: str | None = None,
    status: Annotated[list[str] | None, Query()] = None,
    kind: str | None = None,
    active_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> FastJSONResponse:
    page = services.jobs.list(
        scope,
        dataset=dataset,
        status=status,
        kind=kind,
        active_only=active_only,
        limit=limit,
        cursor=cursor,
    )
    return ok(page)


@router.get("/jobs/{job_id}", response_model=Job, responses=error_responses())
def get_job(job_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.jobs.get(scope, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=Job, responses=error_responses(409))
def cancel_job(job_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.jobs.cancel(scope, job_id))


@router.post("/jobs/{job_id}/start", response_model=Job, responses=error_responses(409))
def start_job(job_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    return ok(services.jobs.enqueue(scope, job_id))


@router.delete("/jobs/{job_id}", response_model=Deleted, responses=error_responses(409))
def delete_job(job_id: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    services.jobs.delete(scope, job_id)
    return ok({"deleted": job_id})


@router.get("/jobs/{job_id}/events", response_model=JobEventList, responses=error_responses())
def job_events(
    job_id: str,
    scope: ScopeDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> FastJSONResponse:
    events = services.jobs.events(scope, job_id, after=after, limit=limit)
    return ok({"data": events, "count": len(events)})


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return head.encode() + f"event: {event}\n".encode() + b"data: " + dumps(data) + b"\n\n"


@router.get(
    "/jobs/{job_id}/stream",
    response_class=StreamingResponse,
    responses={200: SSE, **error_responses()},
)
async def stream_job(
    job_id: str,
    request: Request,
    scope: ScopeDep,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """Server-sent events: ``job`` (the job now), then each ``event`` as it is written,
    and ``end`` with the final job once it is completed, failed or cancelled."""
    engine = services.jobs
    notifier = request.app.state.platform.notifier
    job = await run_in_threadpool(engine.get, scope, job_id)  # 404 before streaming starts
    last_event_id = request.headers.get("last-event-id")
    cursor = int(last_event_id) if last_event_id and last_event_id.isdigit() else after

    async def gen() -> AsyncIterator[bytes]:
        nonlocal cursor
        yield _sse("job", job)
        seen = -1
        last_poll = 0.0
        last_ping = time.monotonic()
        while True:
            if await request.is_disconnected():
                return
            now = time.monotonic()
            if notifier.events_seq != seen or now - last_poll > 0.5:
                seen = notifier.events_seq
                last_poll = now
                events = await run_in_threadpool(engine.events, scope, job_id, after=cursor)
                for ev in events:
                    cursor = ev["id"]
                    yield _sse("event", ev, ev["id"])
                if any(e["type"] == "transition" and e["status"] in TERMINAL for e in events) or (
                    not events
                    and (await run_in_threadpool(engine.get, scope, job_id))["status"] in TERMINAL
                ):
                    final = await run_in_threadpool(engine.get, scope, job_id)
                    if final["status"] in TERMINAL:
                        yield _sse("end", final)
                        return
            if now - last_ping > 15:
                last_ping = now
                yield b": ping\n\n"
            await asyncio.sleep(0.02)

    return StreamingResponse(
        gen(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
