"""``client.crowd``: crowd labelling from Python, the requester's and the worker's side.

    crowd = c.crowd
    project = crowd.create_project("Cats", input_spec={"image": {"type": "url"}},
                                   output_spec={"label": {"type": "string",
                                                          "allowed_values": ["cat", "dog"]}})
    pool = crowd.create_pool(project.id, private_name="batch 1", reward_per_assignment=0.01,
                             assignment_max_duration_seconds=600,
                             will_expire="2030-01-01T00:00:00Z")
    batch = crowd.create_tasks([{"pool_id": pool.id, "input_values": {...}, "overlap": 3}],
                               skip_invalid_items=True)
    pool.open()

    w = crowd.register_worker(name="ann")          # or crowd.worker("worker-id")
    a = w.request_assignment(pool.id)              # None when nothing is left for ann
    w.submit(a.id, [{"label": "cat"}])             # one output_values dict per task

    for a in crowd.list_assignments(pool_id=pool.id, status="SUBMITTED"):
        a.accept()
    results = crowd.aggregate_pool(pool.id, method="dawid_skene").wait().results()

Objects are thin views on the server's JSON: ``obj.id``, ``obj["pool_id"]``, ``obj.data``.
Listing methods are generators that page with cursors.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from taskloom.sdk.jobs import Job

if TYPE_CHECKING:
    from taskloom.sdk.client import Client

BASE = "/v1/crowd"
T = TypeVar("T", bound="CrowdObject")


class CrowdObject:
    """A crowd object's last known fields, by attribute (``pool.status``) or key."""

    resource: ClassVar[str] = ""

    def __init__(self, crowd: Crowd, data: dict[str, Any]) -> None:
        self.crowd = crowd
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data.get('id')!r})"

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data") or {}
        if name in data:
            return data[name]
        raise AttributeError(name)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def _path(self) -> str:
        return f"{BASE}/{self.resource}/{self.data['id']}"

    def _set(self, data: dict[str, Any]) -> Any:
        self.data = data
        return self

    def refresh(self: T) -> T:
        return self._set(self.crowd._request("GET", self._path))


class Project(CrowdObject):
    resource = "projects"

    def update(self, **changes: Any) -> Project:
        return self._set(self.crowd._request("PATCH", self._path, json=changes))

    def archive(self) -> Project:
        return self._set(self.crowd._request("POST", f"{self._path}/archive"))


class Pool(CrowdObject):
    """A pool. ``open()``, ``close()`` and ``archive()`` set ``changed`` false when the pool
    already was in that state."""

    resource = "pools"

    def update(self, **changes: Any) -> Pool:
        return self._set(self.crowd._request("PATCH", self._path, json=changes))

    def open(self) -> Pool:
        return self._set(self.crowd._request("POST", f"{self._path}/open"))

    def close(self) -> Pool:
        return self._set(self.crowd._request("POST", f"{self._path}/close"))

    def archive(self) -> Pool:
        return self._set(self.crowd._request("POST", f"{self._path}/archive"))

    def tasks(self, *, page_size: int = 100) -> Iterator[Task]:
        return self.crowd.list_tasks(pool_id=self.data["id"], page_size=page_size)

    def assignments(self, *, status: str | None = None) -> Iterator[Assignment]:
        return self.crowd.list_assignments(pool_id=self.data["id"], status=status)


class Skill(CrowdObject):
    resource = "skills"


class Task(CrowdObject):
    resource = "tasks"

    def update(self, **changes: Any) -> Task:
        """Change ``overlap``, ``infinite_overlap`` or ``baseline_solutions``."""
        return self._set(self.crowd._request("PATCH", self._path, json=changes))

    def set_overlap_or_min(self, overlap: int) -> Task:
        body = {"overlap": overlap}
        return self._set(
            self.crowd._request("PATCH", f"{self._path}/set-overlap-or-min", json=body)
        )


class TaskSuite(CrowdObject):
    resource = "task-suites"

    def update(self, *, open_pool: bool = False, **changes: Any) -> TaskSuite:
        """Change ``overlap``, ``infinite_overlap`` or ``issuing_order_override``."""
        params = {"open_pool": open_pool}
        return self._set(self.crowd._request("PATCH", self._path, json=changes, params=params))

    def set_overlap_or_min(self, overlap: int) -> TaskSuite:
        body = {"overlap": overlap}
        return self._set(
            self.crowd._request("PATCH", f"{self._path}/set-overlap-or-min", json=body)
        )


class Assignment(CrowdObject):
    """One worker's copy of a task suite: ``tasks``, ``solutions``, ``status``."""

    resource = "assignments"

    def accept(self, public_comment: str | None = None) -> Assignment:
        return self._set(self.crowd._review(self.data["id"], "ACCEPTED", public_comment))

    def reject(self, public_comment: str | None = None) -> Assignment:
        return self._set(self.crowd._review(self.data["id"], "REJECTED", public_comment))


@dataclass
class TaskBatch:
    """A synchronous batch: the created tasks and the invalid items, both by input index.
    ``validation_errors[i]`` maps a field path to ``{"code", "message"}``."""

    items: dict[int, Task] = field(default_factory=dict)
    validation_errors: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.validation_errors


@dataclass
class TaskSuiteBatch:
    """A synchronous batch of task suites, like :class:`TaskBatch`."""

    items: dict[int, TaskSuite] = field(default_factory=dict)
    validation_errors: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.validation_errors


class Operation(Job):
    """An asynchronous crowd operation (a taskloom job): ``wait()``, ``status``, ``log()``."""

    def refresh(self) -> Operation:
        """The operation now, with ``details`` (its counts) once it has them."""
        self.data = self.client.request("GET", f"{BASE}/operations/{self.id}")
        return self

    def wait(self, timeout: float | None = None, **kw: Any) -> Operation:
        super().wait(timeout, **kw)
        return self.refresh()

    def log(self) -> builtins.list[dict[str, Any]]:
        """One entry per input item: ``{type, success, input, output}``."""
        return self.client.request("GET", f"{BASE}/operations/{self.id}/log")["data"]


class Aggregation(Job):
    """An aggregation job over a pool; ``results()`` reads its answers once it is done."""

    def wait(self, timeout: float | None = None, **kw: Any) -> Aggregation:
        super().wait(timeout, **kw)
        return self

    def results(self, *, page_size: int = 500) -> builtins.list[dict[str, Any]]:
        """``[{pool_id, task_id, output_values, confidence}]`` for every task."""
        path = f"{BASE}/aggregations/{self.id}/results"
        return builtins.list(_pages(self.client, path, {}, page_size))


class Worker:
    """Acts as one worker: by id through the requester's key (``crowd.worker(id)``), or,
    given only a token, with the worker's own token (``crowd.worker(token=...)``, the
    labelling page's way in). ``token`` holds the secret when it is known."""

    def __init__(
        self,
        crowd: Crowd,
        worker_id: str | None = None,
        *,
        token: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        if worker_id is None and token is None:
            raise ValueError("give a worker id or a worker token")
        self.crowd = crowd
        self.id = worker_id
        self.token = token
        self.info = info or {}
        self._headers: dict[str, str] = {}
        if worker_id is None:
            self._base = f"{BASE}/me"
            self._headers = {"Authorization": f"Worker {token}"}
        else:
            self._base = f"{BASE}/workers/{worker_id}"

    def __repr__(self) -> str:
        return f"Worker({self.id!r})"

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        return self.crowd._request(method, path, headers=dict(self._headers), **kw)

    def me(self) -> dict[str, Any]:
        """``{worker, pools}``: the worker and the pools open to it (needs the token)."""
        if self.token is None:
            raise ValueError("me() needs the worker's token: crowd.worker(token=...)")
        headers = {"Authorization": f"Worker {self.token}"}
        out = self.crowd._request("GET", f"{BASE}/me", headers=headers)
        self.id = self.id or out["worker"]["id"]
        return out

    def request_assignment(self, pool_id: str) -> Assignment | None:
        """The next assignment in ``pool_id``, or None when nothing is left for this worker."""
        data = self._request("POST", f"{self._base}/assignments", json={"pool_id": pool_id})
        return None if data is None else Assignment(self.crowd, data)

    def submit(self, assignment_id: str, solutions: Iterable[dict[str, Any]]) -> Assignment:
        """Answer each task of the assignment, in order: one ``output_values`` dict per task
        (``{"output_values": {...}}`` is taken as is)."""
        body = {"solutions": [_solution(s) for s in solutions]}
        path = f"{self._base}/assignments/{assignment_id}/submit"
        return Assignment(self.crowd, self._request("POST", path, json=body))

    def skip(self, assignment_id: str) -> Assignment:
        path = f"{self._base}/assignments/{assignment_id}/skip"
        return Assignment(self.crowd, self._request("POST", path))


class Crowd:
    """``client.crowd``: the requester's side, and ``worker()`` for the worker's."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, path, **kw)

    def _review(self, assignment_id: str, status: str, comment: str | None) -> dict[str, Any]:
        body = {"status": status, "public_comment": comment}
        return self._request("PATCH", f"{BASE}/assignments/{assignment_id}", json=body)

    def _list(self, cls: type[T], params: dict[str, Any], page_size: int) -> Iterator[T]:
        for data in _pages(self.client, f"{BASE}/{cls.resource}", params, page_size):
            yield cls(self, data)

    def _get(self, cls: type[T], obj_id: str) -> T:
        return cls(self, self._request("GET", f"{BASE}/{cls.resource}/{obj_id}"))

    def _create(self, cls: type[T], body: dict[str, Any]) -> T:
        return cls(self, self._request("POST", f"{BASE}/{cls.resource}", json=body))

    # -- projects ------------------------------------------------------------------------------

    def create_project(
        self,
        public_name: str,
        *,
        input_spec: dict[str, Any] | None = None,
        output_spec: dict[str, Any] | None = None,
        view_spec: dict[str, Any] | None = None,
        task_spec: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Project:
        """A crowd project; give ``task_spec`` whole or its ``input_spec``/``output_spec``."""
        if task_spec is None:
            task_spec = {"input_spec": input_spec or {}, "output_spec": output_spec or {}}
            if view_spec is not None:
                task_spec["view_spec"] = view_spec
        return self._create(Project, {"public_name": public_name, "task_spec": task_spec, **fields})

    def get_project(self, project_id: str) -> Project:
        return self._get(Project, project_id)

    def list_projects(
        self, *, status: str | None = None, page_size: int = 100
    ) -> Iterator[Project]:
        return self._list(Project, {"status": status}, page_size)

    # -- pools ---------------------------------------------------------------------------------

    def create_pool(self, project_id: str, **fields: Any) -> Pool:
        """A pool (CLOSED): ``private_name``, ``reward_per_assignment``,
        ``assignment_max_duration_seconds``, ``will_expire``, ``defaults``, ``mixer_config``,
        ``quality_control``, ``dynamic_overlap_config``..."""
        return self._create(Pool, {"project_id": project_id, **fields})

    def get_pool(self, pool_id: str) -> Pool:
        return self._get(Pool, pool_id)

    def list_pools(
        self, *, project_id: str | None = None, status: str | None = None, page_size: int = 100
    ) -> Iterator[Pool]:
        return self._list(Pool, {"project_id": project_id, "status": status}, page_size)

    def open_pool(self, pool_id: str) -> Pool:
        return Pool(self, {"id": pool_id}).open()

    def close_pool(self, pool_id: str) -> Pool:
        return Pool(self, {"id": pool_id}).close()

    def archive_pool(self, pool_id: str) -> Pool:
        return Pool(self, {"id": pool_id}).archive()

    # -- skills --------------------------------------------------------------------------------

    def create_skill(self, name: str, **fields: Any) -> Skill:
        return self._create(Skill, {"name": name, **fields})

    def get_skill(self, skill_id: str) -> Skill:
        return self._get(Skill, skill_id)

    def list_skills(self, *, page_size: int = 100) -> Iterator[Skill]:
        return self._list(Skill, {}, page_size)

    def set_user_skill(self, skill_id: str, user_id: str, value: float) -> dict[str, Any]:
        """Set a worker's level (0 to 100) in a skill."""
        body = {"skill_id": skill_id, "user_id": user_id, "value": value}
        return self._request("PUT", f"{BASE}/user-skills", json=body)

    def delete_user_skill(self, skill_id: str, user_id: str) -> None:
        """Take the skill's value away from the worker."""
        self._request("DELETE", f"{BASE}/user-skills/{skill_id}:{user_id}")

    def list_user_skills(
        self, *, skill_id: str | None = None, user_id: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        params = {"skill_id": skill_id, "user_id": user_id}
        return _pages(self.client, f"{BASE}/user-skills", params, page_size)

    # -- tasks ---------------------------------------------------------------------------------

    def create_task(
        self, task: dict[str, Any], *, allow_defaults: bool = False, open_pool: bool = False
    ) -> Task:
        """One task; ``Invalid`` (with ``field``) when it does not fit the project's spec."""
        params = {"allow_defaults": allow_defaults, "open_pool": open_pool}
        return Task(self, self._request("POST", f"{BASE}/tasks", json=task, params=params))

    def create_tasks(
        self,
        tasks: Iterable[dict[str, Any]],
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
    ) -> TaskBatch:
        """A batch in one request. Without ``skip_invalid_items`` an invalid item creates
        nothing and raises ``Invalid`` whose ``details["validation_errors"]`` lists them."""
        params = {
            "allow_defaults": allow_defaults,
            "skip_invalid_items": skip_invalid_items,
            "open_pool": open_pool,
        }
        out = self._request("POST", f"{BASE}/tasks", json=builtins.list(tasks), params=params)
        return TaskBatch(
            items={int(i): Task(self, t) for i, t in out["items"].items()},
            validation_errors={int(i): e for i, e in out["validation_errors"].items()},
        )

    def create_tasks_async(
        self,
        tasks: Iterable[dict[str, Any]],
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
        operation_id: str | None = None,
    ) -> Operation:
        """A batch as an operation: ``create_tasks_async(...).wait()``. Without an
        ``operation_id`` one is made up for this call, so a retried request creates nothing
        twice."""
        params = {
            "async_mode": True,
            "allow_defaults": allow_defaults,
            "skip_invalid_items": skip_invalid_items,
            "open_pool": open_pool,
            "operation_id": operation_id or str(uuid.uuid4()),
        }
        out = self._request("POST", f"{BASE}/tasks", json=builtins.list(tasks), params=params)
        return Operation(self.client, out)

    def get_task(self, task_id: str) -> Task:
        return self._get(Task, task_id)

    def list_tasks(self, *, pool_id: str | None = None, page_size: int = 100) -> Iterator[Task]:
        return self._list(Task, {"pool_id": pool_id}, page_size)

    def create_task_suite(
        self, suite: dict[str, Any], *, allow_defaults: bool = False, open_pool: bool = False
    ) -> TaskSuite:
        """One suite ``{pool_id, tasks: [{input_values, ...}], overlap, ...}``."""
        params = {"allow_defaults": allow_defaults, "open_pool": open_pool}
        out = self._request("POST", f"{BASE}/task-suites", json=suite, params=params)
        return TaskSuite(self, out)

    def create_task_suites(
        self,
        suites: Iterable[dict[str, Any]],
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
    ) -> TaskSuiteBatch:
        """Several suites in one request; errors as in ``create_tasks``."""
        params = {
            "allow_defaults": allow_defaults,
            "skip_invalid_items": skip_invalid_items,
            "open_pool": open_pool,
        }
        out = self._request(
            "POST", f"{BASE}/task-suites", json=builtins.list(suites), params=params
        )
        return TaskSuiteBatch(
            items={int(i): TaskSuite(self, t) for i, t in out["items"].items()},
            validation_errors={int(i): e for i, e in out["validation_errors"].items()},
        )

    def create_task_suites_async(
        self,
        suites: Iterable[dict[str, Any]],
        *,
        allow_defaults: bool = False,
        skip_invalid_items: bool = False,
        open_pool: bool = False,
        operation_id: str | None = None,
    ) -> Operation:
        """Suites as an operation (kind ``crowd_suite_batch_create``); its log names each
        ``task_suite_id``. An ``operation_id`` is made up when none is given."""
        params = {
            "async_mode": True,
            "allow_defaults": allow_defaults,
            "skip_invalid_items": skip_invalid_items,
            "open_pool": open_pool,
            "operation_id": operation_id or str(uuid.uuid4()),
        }
        out = self._request(
            "POST", f"{BASE}/task-suites", json=builtins.list(suites), params=params
        )
        return Operation(self.client, out)

    def get_task_suite(self, suite_id: str) -> TaskSuite:
        return self._get(TaskSuite, suite_id)

    def list_task_suites(
        self, *, pool_id: str | None = None, page_size: int = 100
    ) -> Iterator[TaskSuite]:
        return self._list(TaskSuite, {"pool_id": pool_id}, page_size)

    def get_operation(self, operation_id: str) -> Operation:
        return Operation(self.client, self._request("GET", f"{BASE}/operations/{operation_id}"))

    # -- assignments ---------------------------------------------------------------------------

    def get_assignment(self, assignment_id: str) -> Assignment:
        return self._get(Assignment, assignment_id)

    def list_assignments(
        self,
        *,
        pool_id: str | None = None,
        status: str | None = None,
        task_id: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Assignment]:
        params = {"pool_id": pool_id, "status": status, "task_id": task_id}
        return self._list(Assignment, params, page_size)

    def accept_assignment(
        self, assignment_id: str, public_comment: str | None = None
    ) -> Assignment:
        return Assignment(self, self._review(assignment_id, "ACCEPTED", public_comment))

    def reject_assignment(
        self, assignment_id: str, public_comment: str | None = None
    ) -> Assignment:
        return Assignment(self, self._review(assignment_id, "REJECTED", public_comment))

    # -- aggregation ---------------------------------------------------------------------------

    def aggregate_pool(
        self,
        pool_id: str,
        *,
        method: str = "dawid_skene",
        fields: builtins.list[str] | None = None,
        answer_weight_skill_id: str | None = None,
    ) -> Aggregation:
        """A job aggregating the pool's accepted and submitted answers; ``.wait().results()``.
        ``method``: ``majority_vote``, ``dawid_skene`` or ``skill_weighted``."""
        body = {
            "pool_id": pool_id,
            "method": method,
            "fields": fields,
            "answer_weight_skill_id": answer_weight_skill_id,
        }
        return Aggregation(self.client, self._request("POST", f"{BASE}/aggregations", json=body))

    def aggregate_task(
        self,
        task_id: str,
        *,
        method: str = "dawid_skene",
        fields: builtins.list[str] | None = None,
        answer_weight_skill_id: str | None = None,
    ) -> dict[str, Any]:
        """One task's aggregated answer now: ``{task_id, output_values, confidence}``."""
        body = {
            "task_id": task_id,
            "method": method,
            "fields": fields,
            "answer_weight_skill_id": answer_weight_skill_id,
        }
        return self._request("POST", f"{BASE}/aggregations", json=body)

    # -- workers -------------------------------------------------------------------------------

    def register_worker(self, *, external_id: str | None = None, name: str | None = None) -> Worker:
        """A new worker of this app. Its ``token`` (for the labelling page and
        ``worker(token=...)``) is in the answer only this once."""
        body = {k: v for k, v in {"external_id": external_id, "name": name}.items() if v}
        info = self._request("POST", f"{BASE}/workers", json=body)
        return Worker(self, info["id"], token=info.get("token"), info=info)

    def worker(self, worker_id: str | None = None, *, token: str | None = None) -> Worker:
        """A handle on a worker (no request is made): by id through this client's key, or
        by the worker's own token."""
        return Worker(self, worker_id, token=token)


def _solution(s: dict[str, Any]) -> dict[str, Any]:
    if set(s) == {"output_values"} and isinstance(s["output_values"], dict):
        return s
    return {"output_values": s}


def _pages(
    client: Client, path: str, params: dict[str, Any], page_size: int
) -> Iterator[dict[str, Any]]:
    """Every item of a ``{data, count, cursor}`` list, one page in memory at a time."""
    query = {k: v for k, v in params.items() if v is not None}
    query["limit"] = page_size
    while True:
        out = client.request("GET", path, params=query)
        yield from out["data"]
        if not out.get("cursor"):
            return
        query["cursor"] = out["cursor"]
