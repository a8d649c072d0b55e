"""What the SDK shows while it waits: a rich progress bar when asked for, and deadlines."""

from __future__ import annotations

import time


def past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class Bar:
    """A rich progress bar, or nothing when not asked for."""

    def __init__(self, label: str, enabled: bool, total: float | None = None) -> None:
        self._p = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}" + ("%" if total else "")),
                TimeElapsedColumn(),
                TextColumn("{task.fields[msg]}"),
                transient=False,
            )
            self._p.start()
            self._task = self._p.add_task(label, total=total, msg="")

    def advance(self, n: float) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def update(self, completed: float, message: str | None = None) -> None:
        if self._p is not None:
            self._p.update(self._task, completed=completed, msg=message or "")

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None
