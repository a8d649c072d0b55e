"""Jobs, their events and the job kinds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from taskloom.api.schemas.common import Open, listing


class JobError(Open):
    code: str
    message: str


class Job(BaseModel):
    id: str
    app_id: str
    dataset: str | None
    kind: str
    params: dict[str, Any] = Field(description="The kind's validated params.")
    status: str = Field(
        description="registered, pending, in_progress, completed, failed or cancelled"
    )
    progress: float = Field(description="0 to 100")
    message: str | None
    result: dict[str, Any] | None = Field(description="What the kind returned, once completed.")
    error: JobError | None
    attempts: int
    max_attempts: int
    idempotency_key: str | None
    cancel_requested: bool
    parent_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class JobEvent(BaseModel):
    id: int = Field(description="Increasing; `after` of the next read.")
    job_id: str
    at: datetime
    type: str = Field(description="transition, progress or log")
    status: str | None
    progress: float | None
    message: str | None
    data: dict[str, Any] | None


class JobKind(Open):
    name: str
    description: str
    needs_dataset: bool
    params_schema: dict[str, Any] = Field(description="The JSON schema of the kind's params.")


JobPage = listing("JobPage", Job, count=False, cursor=True)
JobEventList = listing("JobEventList", JobEvent)
JobKindList = listing("JobKindList", JobKind)

# one server-sent event (before OpenAPI 3.2, the schema of an event stream is one event's):
# `job` (the job now), then each `event` as it is written (its `id` is the event's), and
# `end` with the final job; `data` is JSON
SSE = {
    "description": "Server-sent events: `job`, then each `event`, and `end` with the final job",
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"type": "string", "enum": ["job", "event", "end"]},
                    "id": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/Job"},
                                {"$ref": "#/components/schemas/JobEvent"},
                            ]
                        },
                    },
                },
            }
        }
    },
}
