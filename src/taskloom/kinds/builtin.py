"""``noop`` and ``sleep``: the engine's own kinds, for checks, demos and benchmarks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskloom.jobs.context import JobContext
from taskloom.jobs.registry import JobKind, Registry
from taskloom.services.container import Services


class NoopParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=86_400, description="How long to sleep.")
    steps: int = Field(default=10, ge=1, le=10_000, description="Progress updates on the way.")


def run_noop(ctx: JobContext[Services], params: NoopParams) -> dict[str, Any]:
    """Does nothing and completes."""
    return {"ok": True}


def run_sleep(ctx: JobContext[Services], params: SleepParams) -> dict[str, Any]:
    """Sleeps, reporting progress; cancellable at any moment."""
    step = params.seconds / params.steps
    for i in range(params.steps):
        ctx.sleep(step)
        ctx.progress(100.0 * (i + 1) / params.steps, f"slept {step * (i + 1):.2f}s")
    return {"slept": params.seconds}


def register(registry: Registry) -> None:
    registry.register(JobKind("noop", NoopParams, run_noop, "Does nothing and completes."))
    registry.register(
        JobKind("sleep", SleepParams, run_sleep, "Sleeps with progress; cancellable.")
    )
