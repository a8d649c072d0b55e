"""``Client.models`` (the registry, ``/v1/models``) and ``Client.task_models``
(``/v1/task-models``).

tm = c.task_models.create("buyers", feature["id"], "training", "labels.tsv")
tm = c.task_models.wait(tm["id"])          # completed or failed, with metrics or error
c.task_models.predict(tm["id"], keys=["u1", "u2"])
c.task_models.predict(tm["id"], rows=[[0.1, 3.0, None]])
job = c.task_models.batch_predict(tm["id"], "out", "scores.tsv"); job.wait()
c.task_models.list(); c.task_models.delete(tm["id"])   # delete: only while registered
c.models.list(); c.models.get(tm["id"]); c.models.versions(tm["id"])
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from taskloom.sdk.client import Client
    from taskloom.sdk.jobs import Job

FINISHED = frozenset({"completed", "failed", "cancelled"})


def _q(value: str) -> str:
    return quote(value, safe="")


class Models:
    """The models of the client's app (every kind) and their versions."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Models({self.client.url!r})"

    def list(self) -> builtins.list[dict[str, Any]]:
        return self.client.request("GET", "/v1/models")["data"]

    def get(self, model_id: str) -> dict[str, Any]:
        return self.client.request("GET", f"/v1/models/{_q(model_id)}")

    def versions(self, model_id: str) -> builtins.list[dict[str, Any]]:
        return self.client.request("GET", f"/v1/models/{_q(model_id)}/versions")["data"]


class TaskModels:
    """Task models: classifiers trained by a job from a labelled file and a feature table."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"TaskModels({self.client.url!r})"

    def create(
        self,
        name: str,
        train_feature_id: str,
        train_bucket: str,
        train_file_path: str,
        *,
        test_feature_id: str | None = None,
        test_bucket: str | None = None,
        test_file_path: str | None = None,
        queue: bool = True,
        hyperparameters: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Register a task model; its training job is queued unless ``queue=False``."""
        body: dict[str, Any] = {
            "name": name,
            "train_feature_id": train_feature_id,
            "train_bucket": train_bucket,
            "train_file_path": train_file_path,
            "test_feature_id": test_feature_id,
            "test_bucket": test_bucket,
            "test_file_path": test_file_path,
            "queue": queue,
        }
        if hyperparameters is not None:
            body["hyperparameters"] = hyperparameters
        if description is not None:
            body["description"] = description
        return self.client.request("POST", "/v1/task-models", json=body)

    def get(self, model_id: str) -> dict[str, Any]:
        return self.client.request("GET", f"/v1/task-models/{_q(model_id)}")

    def page(self, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        """One page, newest first: ``{"data", "count", "cursor"}``."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self.client.request("GET", "/v1/task-models", params=params)

    def list(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every task model, newest first, fetched page by page."""
        cursor: str | None = None
        while True:
            page = self.page(limit=page_size, cursor=cursor)
            yield from page["data"]
            cursor = page.get("cursor")
            if not cursor:
                return

    def delete(self, model_id: str) -> None:
        """Delete a task model that is still ``registered`` (a ``Conflict`` afterwards)."""
        self.client.request("DELETE", f"/v1/task-models/{_q(model_id)}")

    def start(self, model_id: str) -> dict[str, Any]:
        """Queue the training of a task model created with ``queue=False``."""
        return self.client.request("POST", f"/v1/task-models/{_q(model_id)}/start")

    def wait(
        self,
        model_id: str,
        timeout: float | None = 600.0,
        *,
        poll_interval: float = 0.1,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the training is completed, failed or cancelled; returns the task model.
        ``on_status`` sees each state read. Raises ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            tm = self.get(model_id)
            if on_status is not None:
                on_status(tm)
            if tm["status"] in FINISHED:
                return tm
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"task model {model_id} still {tm['status']} after {timeout}s")
            time.sleep(poll_interval)

    def predict(
        self,
        model_id: str,
        *,
        keys: builtins.list[str | int] | None = None,
        rows: builtins.list[builtins.list[float | None]] | None = None,
        feature_id: str | None = None,
    ) -> dict[str, Any]:
        """``{"predictions": [{"key"?, "label", "probabilities"}], "missing_keys", "classes"}``
        for ``keys`` (looked up in ``feature_id``, default the training table) or ``rows``."""
        body: dict[str, Any] = {}
        if keys is not None:
            body["keys"] = keys
        if rows is not None:
            body["rows"] = rows
        if feature_id is not None:
            body["feature_id"] = feature_id
        return self.client.request("POST", f"/v1/task-models/{_q(model_id)}/predict", json=body)

    def batch_predict(
        self, model_id: str, bucket: str, output_path: str, *, feature_id: str | None = None
    ) -> Job:
        """A job writing every row's prediction to ``output_path`` in ``bucket`` (a TSV)."""
        from taskloom.sdk.jobs import Job

        body: dict[str, Any] = {"bucket": bucket, "output_path": output_path}
        if feature_id is not None:
            body["feature_id"] = feature_id
        data = self.client.request(
            "POST", f"/v1/task-models/{_q(model_id)}/batch-predictions", json=body
        )
        return Job(self.client, data)
