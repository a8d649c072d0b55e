"""Relevance AI's ``TasksClient`` and ``Centroids``, on a taskloom server.

    from taskloom.sdk.compat.relevance import Centroids, TasksClient

    tasks = TasksClient(project=APP_ID, api_key=KEY, base_url="http://127.0.0.1:8000")
    tasks.create_numeric_encoder_task("people", fields=["person_characteristics"])
    centroids = Centroids(APP_ID, KEY, base_url="http://127.0.0.1:8000")
    centroids.list("people", vector_field="person_characteristics_vector_")

The methods, parameters and defaults are those of relevanceai 0.22-0.26; the requests go
to the server's ``/relevance`` front door (``taskloom.api.dialects.relevance``) with the
SDK's own request shapes. The project is a taskloom app id.

Two differences, both deliberate: waiting for a task (``status_checker=True``) ends when
the task fails or is cancelled too, raising :class:`TaskFailed` (the original polls a
failed task forever), and it returns the task's final status instead of ``None``. With
``verbose`` it shows a progress bar. ``wait_timeout`` bounds the wait (none by default).
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from typing import Any, Self

import httpx
import orjson

from taskloom.errors import TaskloomError, Unavailable
from taskloom.sdk.client import DEFAULT_URL
from taskloom.sdk.progress import Bar

__all__ = ["APIError", "Centroids", "TaskFailed", "TasksClient"]

PREFIX = "/relevance"
DONE_WORDS = ("Finished", "success")
FAILED_WORDS = ("Failed", "Cancelled")

log = logging.getLogger("taskloom.compat.relevance")


class APIError(TaskloomError):
    """The Relevance front door refused the request (``relevanceai.errors.APIError``)."""

    code = "api_error"


class TaskFailed(APIError):
    """The task failed or was cancelled."""

    code = "task_failed"

    def __init__(self, message: str, task: dict[str, Any]) -> None:
        super().__init__(message, code="task_failed", details={"task": task})
        self.task = task


class _Base:
    """The connection: ``Authorization: project:api_key`` to ``{base_url}/relevance``."""

    def __init__(
        self,
        project: str,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.project = project
        self.api_key = api_key
        self.base_url = (base_url or os.environ.get("TASKLOOM_URL") or DEFAULT_URL).rstrip("/")
        self.retries = retries
        self._transport = transport
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._http = self._client(self.base_url)

    def _client(self, base_url: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url.rstrip("/") + PREFIX,
            headers={"Authorization": f"{self.project}:{self.api_key}"},
            timeout=self._timeout,
            transport=self._transport,
        )

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"{self.project}:{self.api_key}"}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def make_http_request(
        self,
        endpoint: str,
        method: str = "GET",
        parameters: dict[str, Any] | None = None,
        base_url: str | None = None,
    ) -> Any:
        """One request as the SDK sends it: GET parameters in the query string (lists as
        repeated keys, ``None`` left out), POST parameters as a JSON body."""
        parameters = parameters or {}
        http = self._http if base_url is None else self._client(base_url)
        kw: dict[str, Any] = {}
        if method.upper() == "GET":
            kw["params"] = {k: v for k, v in parameters.items() if v is not None}
        else:
            kw["content"] = orjson.dumps(parameters, option=orjson.OPT_SERIALIZE_NUMPY)
            kw["headers"] = {"Content-Type": "application/json"}
        try:
            delay = 0.2
            for attempt in range(self.retries + 1):
                try:
                    resp = http.request(method.upper(), endpoint, **kw)
                except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                    if attempt >= self.retries:
                        raise Unavailable(f"cannot reach taskloom at {self.base_url}") from exc
                    time.sleep(delay)
                    delay *= 2
                    continue
                return _answer(resp)
            raise AssertionError("unreachable")
        finally:
            if http is not self._http:
                http.close()


def _answer(resp: httpx.Response) -> Any:
    if resp.status_code == 200:
        return orjson.loads(resp.content) if resp.content else None
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        body = {"message": resp.text[:500]}
    body = body if isinstance(body, dict) else {"message": str(body)}
    exc = APIError(
        body.get("message") or f"HTTP {resp.status_code}",
        code=body.get("code") or "api_error",
        details=body.get("details") or {},
    )
    exc.status_code = resp.status_code
    raise exc


class TasksClient(_Base):
    """Relevance tasks (taskloom jobs) on a dataset: create, status, list, and the
    ``create_*_task`` shortcuts that wait for the task unless ``status_checker=False``."""

    def __init__(
        self,
        project: str,
        api_key: str,
        base_url: str | None = None,
        *,
        wait_timeout: float | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(project, api_key, base_url, timeout=timeout, transport=transport)
        self.wait_timeout = wait_timeout

    def create(self, dataset_id: str, task_name: str, task_parameters: dict[str, Any]) -> Any:
        """Start a task; returns ``{"task_id": ...}``."""
        return self.make_http_request(
            f"/datasets/{dataset_id}/tasks/create",
            "POST",
            {"task_name": task_name, **task_parameters},
        )

    def status(self, dataset_id: str, task_id: str) -> Any:
        """The task's status: ``Pending``, ``Running``, ``Finished``, ``Failed``…"""
        return self.make_http_request(f"/datasets/{dataset_id}/tasks/{task_id}/status", "GET")

    def list(self, dataset_id: str, show_active_only: bool = True) -> Any:
        """The dataset's tasks, newest first."""
        return self.make_http_request(
            f"/datasets/{dataset_id}/tasks/list", "GET", {"show_active_only": show_active_only}
        )

    def _loop_status_until_finish(
        self,
        dataset_id: str,
        task_id: str,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """Poll until the task is finished (returns its status) or failed/cancelled
        (raises :class:`TaskFailed`)."""
        deadline = None if self.wait_timeout is None else time.monotonic() + self.wait_timeout
        bar = Bar(f"task {task_id[:8]}", verbose, total=100.0)
        try:
            while True:
                task = self.status(dataset_id, task_id)
                word = task.get("status")
                bar.update(task.get("progress") or 0.0, word)
                if word in DONE_WORDS:
                    log.info("task %s is %s", task_id, word)
                    return task
                if word in FAILED_WORDS:
                    reason = task.get("error") or task.get("message") or "no reason given"
                    raise TaskFailed(f"task {task_id} {word.lower()}: {reason}", task)
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"task {task_id} is still {word} after {self.wait_timeout}s")
                time.sleep(time_between_ping)
        finally:
            bar.close()

    def _check_status_until_finish(
        self,
        dataset_id: str,
        task_id: str,
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        if status_checker:
            log.info("Task_ID: %s", task_id)
            return self._loop_status_until_finish(
                dataset_id, task_id, verbose=verbose, time_between_ping=time_between_ping
            )
        return {"task_id": task_id}

    def _run(
        self,
        dataset_id: str,
        parameters: dict[str, Any],
        status_checker: bool,
        verbose: bool,
        time_between_ping: float,
    ) -> dict[str, Any]:
        task = self.make_http_request(f"/datasets/{dataset_id}/tasks/create", "POST", parameters)
        return self._check_status_until_finish(
            dataset_id,
            task["task_id"],
            status_checker=status_checker,
            verbose=verbose,
            time_between_ping=time_between_ping,
        )

    def create_cluster_task(
        self,
        dataset_id: str,
        vector_field: str,
        n_clusters: int,
        alias: str = "default",
        refresh: bool = False,
        n_iter: int = 10,
        n_init: int = 5,
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """k-means on a vector field; labels go to ``_cluster_.{vector_field}.{alias}``."""
        return self._run(
            dataset_id,
            {
                "task_name": "Clusterer",
                "vector_field": vector_field,
                "n_clusters": n_clusters,
                "alias": alias,
                "refresh": refresh,
                "n_iter": n_iter,
                "n_init": n_init,
            },
            status_checker,
            verbose,
            time_between_ping,
        )

    def create_numeric_encoder_task(
        self,
        dataset_id: str,
        fields: builtins.list[str],
        vector_name: str = "_vector_",
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """Dict fields of numbers -> ``{field}{vector_name}``, one column per key."""
        return self._run(
            dataset_id,
            {"task_name": "NumericEncoder", "fields": fields, "vector_name": vector_name},
            status_checker,
            verbose,
            time_between_ping,
        )

    def create_encode_categories_task(
        self,
        dataset_id: str,
        fields: builtins.list[str],
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """Array fields -> multi-hot ``{field}_vector_`` over the union of categories."""
        return self._run(
            dataset_id,
            {"task_name": "CategoriesEncoder", "fields": fields},
            status_checker,
            verbose,
            time_between_ping,
        )

    def _encode(
        self,
        task_name: str,
        dataset_id: str,
        field: str,
        alias: str,
        refresh: bool,
        status_checker: bool,
        verbose: bool,
        time_between_ping: float,
    ) -> dict[str, Any]:
        return self._run(
            dataset_id,
            {
                "task_name": task_name,
                "dataset_id": dataset_id,
                "field": field,
                "alias": alias,
                "refresh": refresh,
            },
            status_checker,
            verbose,
            time_between_ping,
        )

    def create_encode_text_task(
        self,
        dataset_id: str,
        field: str,
        alias: str = "default",
        refresh: bool = False,
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """A text field -> sentence embedding in ``{field}_{alias}_vector_``."""
        return self._encode(
            "TextEncoder",
            dataset_id,
            field,
            alias,
            refresh,
            status_checker,
            verbose,
            time_between_ping,
        )

    def create_encode_textimage_task(
        self,
        dataset_id: str,
        field: str,
        alias: str = "default",
        refresh: bool = False,
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """A text field -> CLIP text embedding, comparable with image embeddings."""
        return self._encode(
            "TextImageEncoder",
            dataset_id,
            field,
            alias,
            refresh,
            status_checker,
            verbose,
            time_between_ping,
        )

    def create_encode_imagetext_task(
        self,
        dataset_id: str,
        field: str,
        alias: str = "default",
        refresh: bool = False,
        status_checker: bool = True,
        verbose: bool = True,
        time_between_ping: float = 10,
    ) -> dict[str, Any]:
        """An image field -> CLIP image embedding, comparable with text embeddings."""
        return self._encode(
            "ImageTextEncoder",
            dataset_id,
            field,
            alias,
            refresh,
            status_checker,
            verbose,
            time_between_ping,
        )


class Centroids(_Base):
    """A clustering's centroids: list, get, insert your own, their documents, metadata.
    ``vector_field`` is sent as 0.24+ does, ``vector_fields: [vector_field]``."""

    _ENDPOINT = "/services/cluster/centroids"

    def list(
        self,
        dataset_id: str,
        vector_field: str,
        alias: str = "default",
        page_size: int = 5,
        cursor: str | None = None,
        include_vector: bool = False,
        base_url: str | None = None,
    ) -> Any:
        """A page of centroids (``base_url``: another taskloom server, if given)."""
        return self.make_http_request(
            f"{self._ENDPOINT}/list",
            "POST",
            {
                "dataset_id": dataset_id,
                "vector_fields": [vector_field],
                "alias": alias,
                "page_size": page_size,
                "cursor": cursor,
                "include_vector": include_vector,
            },
            base_url=base_url,
        )

    def get(
        self,
        dataset_id: str,
        cluster_ids: builtins.list[str],
        vector_field: str,
        alias: str = "default",
        page_size: int = 5,
        cursor: str | None = None,
    ) -> Any:
        """The centroids with these ids."""
        return self.make_http_request(
            f"{self._ENDPOINT}/get",
            "GET",
            {
                "dataset_id": dataset_id,
                "cluster_ids": cluster_ids,
                "vector_fields": [vector_field],
                "alias": alias,
                "page_size": page_size,
                "cursor": cursor,
            },
        )

    def insert(
        self,
        dataset_id: str,
        cluster_centers: builtins.list[dict[str, Any]],
        vector_field: str,
        alias: str = "default",
    ) -> Any:
        """Your own centers (``[{"_id": "cluster-0", vector_field: [...]}, ...]``)."""
        return self.make_http_request(
            f"{self._ENDPOINT}/insert",
            "POST",
            {
                "dataset_id": dataset_id,
                "cluster_centers": cluster_centers,
                "vector_fields": [vector_field],
                "alias": alias,
            },
        )

    def documents(
        self,
        dataset_id: str,
        cluster_ids: builtins.list[str],
        vector_field: str,
        alias: str = "default",
        page_size: int = 5,
        cursor: str | None = None,
        page: int = 1,
        include_vector: bool = False,
        similarity_metric: str = "cosine",
    ) -> Any:
        """Each cluster's documents, most similar to its centroid first."""
        return self.make_http_request(
            f"{self._ENDPOINT}/documents",
            "POST",
            {
                "dataset_id": dataset_id,
                "cluster_ids": cluster_ids,
                "vector_fields": [vector_field],
                "alias": alias,
                "page_size": page_size,
                "cursor": cursor,
                "page": page,
                "include_vector": include_vector,
                "similarity_metric": similarity_metric,
            },
        )

    def metadata(
        self,
        dataset_id: str,
        vector_field: str,
        alias: str = "default",
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        """Read the clustering's metadata, or replace it when ``metadata`` is given."""
        parameters: dict[str, Any] = {
            "dataset_id": dataset_id,
            "vector_fields": [vector_field],
            "alias": alias,
        }
        if metadata is not None:
            parameters["metadata"] = metadata
        return self.make_http_request(f"{self._ENDPOINT}/metadata", "POST", parameters)
