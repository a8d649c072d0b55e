"""Jobs from the SDK: ``c.jobs.submit(kind, ...)``, ``c.jobs.get(id)``, ``c.jobs.list()``, and a
``Job`` to watch (``wait`` follows the server's event stream, with a progress bar if asked),
cancel, start or delete.
"""

from __future__ import annotations

import builtins
import itertools
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from taskloom import errors
from taskloom.errors import TaskloomError, error_for_status
from taskloom.sdk.progress import Bar, past

if TYPE_CHECKING:
    from taskloom.sdk.client import Client

TERMINAL = ("completed", "failed", "cancelled")


class JobFailed(errors.JobFailed):
    """The job ended ``failed``: ``code`` and ``message`` are the job's error, ``job`` the job.

    Raised by :meth:`Job.wait` unless it is given ``raise_on_failure=False``. A subclass of
    :class:`taskloom.errors.JobFailed`, what a job kind raises to fail its job.
    """

    def __init__(self, job: Job) -> None:
        error = job.data.get("error") or {}
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = error.get("code") or "job_failed"
        reason = error.get("message") or "no reason given"
        super().__init__(
            f"job {job.id} ({job.kind}) failed: {code}: {reason}",
            code=code,
            details={"job_id": job.id, **(error.get("details") or {})},
        )
        self.job = job
        self.reason = reason


class Job:
    """A job's last known state; ``refresh()``, ``wait()`` and ``cancel()`` update it."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        return f"Job({self.id!r}, kind={self.kind!r}, status={self.status!r})"

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data") or {}
        if name in data:
            return data[name]
        raise AttributeError(name)

    @property
    def done(self) -> bool:
        return self.data["status"] in TERMINAL

    def refresh(self) -> Job:
        self.data = self.client.request("GET", f"/v1/jobs/{self.id}")
        return self

    def cancel(self) -> Job:
        self.data = self.client.request("POST", f"/v1/jobs/{self.id}/cancel")
        return self

    def start(self) -> Job:
        """Queue a job submitted with ``queue=False``."""
        self.data = self.client.request("POST", f"/v1/jobs/{self.id}/start")
        return self

    def delete(self) -> None:
        self.client.request("DELETE", f"/v1/jobs/{self.id}")

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        return self.client.request("GET", f"/v1/jobs/{self.id}/events", params={"after": after})[
            "data"
        ]

    def wait(
        self,
        timeout: float | None = None,
        *,
        progress: bool = False,
        poll_interval: float = 0.5,
        raise_on_failure: bool = True,
    ) -> Job:
        """Block until the job is completed, failed or cancelled; returns the job.

        Follows the job's event stream (server-sent events) when the transport can stream,
        else polls. ``progress=True`` shows a progress bar. Raises :class:`JobFailed` (with
        the job's error code and message) when the job failed, unless
        ``raise_on_failure=False``; a cancelled job is returned. Raises ``TimeoutError``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = Bar(f"{self.kind} {self.id[:8]}", progress, total=100.0)
        try:
            if self.client._can_stream:
                try:
                    self._follow(deadline, bar)
                except (httpx.TransportError, TaskloomError) as exc:
                    if isinstance(exc, httpx.TimeoutException) and past(deadline):
                        raise TimeoutError(f"job {self.id} still {self.status}") from exc
            delay = 0.02
            while not self.done:
                self.refresh()
                bar.update(self.data.get("progress") or 0.0, self.data.get("message"))
                if self.done:
                    break
                if past(deadline):
                    raise TimeoutError(f"job {self.id} still {self.status} after {timeout}s")
                time.sleep(delay)
                delay = min(delay * 1.5, poll_interval)
            bar.update(self.data.get("progress") or 0.0, self.status)
        finally:
            bar.close()
        if raise_on_failure and self.data["status"] == "failed":
            raise JobFailed(self)
        return self

    def _follow(self, deadline: float | None, bar: Bar) -> None:
        left = None if deadline is None else max(0.1, deadline - time.monotonic())
        timeout = httpx.Timeout(10.0, read=left if left is not None else 60.0)
        with self.client._http.stream("GET", f"/v1/jobs/{self.id}/stream", timeout=timeout) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise error_for_status(resp.status_code, orjson.loads(resp.content))
            for event, data in _sse_events(resp.iter_lines()):
                if event in ("job", "end"):
                    self.data = data
                    bar.update(data.get("progress") or 0.0, data.get("message"))
                    if event == "end":
                        return
                elif event == "event":
                    if data.get("progress") is not None:
                        bar.update(data["progress"], data.get("message"))
                    elif data.get("status"):
                        self.data["status"] = data["status"]
                if past(deadline):
                    return


class Jobs:
    """``client.jobs``: submit, get, list and inspect jobs."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def submit(
        self,
        kind: str,
        *,
        dataset: str | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        queue: bool = True,
    ) -> Job:
        """Submit a job. Without an ``idempotency_key`` one is made up for this call, so a
        retried request never creates a second job."""
        body = {
            "kind": kind,
            "params": params or {},
            "dataset": dataset,
            "idempotency_key": idempotency_key or f"sdk-{uuid.uuid4().hex}",
            "max_attempts": max_attempts,
            "queue": queue,
        }
        return Job(self.client, self.client.request("POST", "/v1/jobs", json=body))

    def get(self, job_id: str) -> Job:
        return Job(self.client, self.client.request("GET", f"/v1/jobs/{job_id}"))

    def iter(
        self,
        *,
        dataset: str | None = None,
        status: str | builtins.list[str] | None = None,
        kind: str | None = None,
        active_only: bool = False,
        page_size: int = 200,
    ) -> Iterator[Job]:
        """Jobs newest first, fetched a page at a time as the loop goes."""
        params: dict[str, Any] = {"active_only": active_only, "limit": page_size}
        if dataset:
            params["dataset"] = dataset
        if status:
            params["status"] = [status] if isinstance(status, str) else status
        if kind:
            params["kind"] = kind
        cursor = None
        while True:
            page = self.client.request(
                "GET", "/v1/jobs", params={**params, **({"cursor": cursor} if cursor else {})}
            )
            for d in page["data"]:
                yield Job(self.client, d)
            cursor = page["cursor"]
            if cursor is None:
                return

    def list(
        self,
        *,
        dataset: str | None = None,
        status: str | builtins.list[str] | None = None,
        kind: str | None = None,
        active_only: bool = False,
        limit: int | None = None,
    ) -> builtins.list[Job]:
        """Jobs newest first as a list (all of them unless ``limit``): :meth:`iter`, kept."""
        jobs = self.iter(
            dataset=dataset,
            status=status,
            kind=kind,
            active_only=active_only,
            page_size=200 if limit is None else max(1, min(limit, 200)),
        )
        return builtins.list(itertools.islice(jobs, limit))

    def kinds(self) -> builtins.list[dict[str, Any]]:
        return self.client.request("GET", "/v1/job-kinds")["data"]


def _sse_events(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, orjson.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
