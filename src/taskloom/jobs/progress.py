"""What a long service operation reports to, whatever runs it: a job's context, or a
test's recorder. Services that work for a job take this protocol, not the job context, so
they do not depend on the engine's internals."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    """Progress, log lines and cancellation of the job a service works for."""

    def progress(self, pct: float, message: str | None = None) -> None:
        """Report ``pct`` (0 to 100) done; raises when the job was cancelled or taken over."""

    def log(self, message: str, **data: Any) -> None:
        """Add a line (with structured ``data``) to the job's event log."""

    def check_cancelled(self) -> None:
        """Raise when the job was cancelled or taken over; call it often in long loops."""
