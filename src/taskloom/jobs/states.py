"""Job states and the edges between them: the one place they are written down."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    REGISTERED = "registered"  # accepted, not queued yet
    PENDING = "pending"  # queued
    IN_PROGRESS = "in_progress"  # leased by a worker
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.REGISTERED: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    # back to PENDING: a retry after an error, or a lease that expired with attempts left
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.PENDING}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
ACTIVE = frozenset({S.REGISTERED, S.PENDING, S.IN_PROGRESS})


def sources(target: JobStatus) -> frozenset[JobStatus]:
    """The states from which ``target`` may be entered."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)
