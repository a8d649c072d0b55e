"""Property-based fuzzing of the three front doors (Relevance, Toloka, NCLUE) in process.

``hypothesis`` generates requests (an operation of the door, path values, query parameters,
a JSON body built from the door's own parameter names and any JSON values, or bytes that are
not JSON at all) and sends them to the real app, authenticated as each door's clients are.
Every answer must be below 500 and, when it is an error, in the door's own envelope:

- Relevance: ``{"message", "code", "details"}``;
- Toloka: ``{"request_id", "code", "message", "payload"}``;
- NCLUE: ``{"error": {"errorCode", "message", "details", ...}}``.

The run is deterministic (``derandomize``, no example database) and bounded
(``TASKLOOM_DOOR_FUZZ_EXAMPLES`` requests per door, 300 by default: about 15 s on
two cores). Failures are collected and reported together rather than shrunk: the point is
the list of requests that break a door, not the smallest one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from taskloom.sdk.ncp import NcpSigner

from .conftest import BASE_URL

EXAMPLES = int(os.environ.get("TASKLOOM_DOOR_FUZZ_EXAMPLES", "300"))

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# -- what the doors are sent -------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "a\u0000b", "\ud800", "2024-05-01T12:00:00", "$regex", "_id"])
)


def _dumps(value: Any) -> bytes:
    # the standard library writes integers beyond 64 bits and lone surrogates (as \\ud800)
    return json.dumps(value).encode()


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Any JSON value, objects keyed mostly by the door's own parameter names."""
    key = st.sampled_from(keys) | st.text(max_size=6)
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=4),
        max_leaves=12,
    )


def bodies(keys: list[str], base: dict[str, Any]) -> st.SearchStrategy[bytes | None]:
    """No body, an object of the door's keys, one changed from a valid ``base``, any JSON,
    bytes, or nesting far too deep."""
    value = json_values(keys)
    obj = st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), value, max_size=6)
    return st.one_of(
        st.none(),
        obj.map(_dumps),
        obj.map(lambda changes: _dumps({**base, **changes})),
        st.just(_dumps(base)),
        value.map(_dumps),
        st.binary(max_size=40),
        st.integers(min_value=100, max_value=1500).map(lambda n: b"[" * n + b"]" * n),
    )


def queries(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    text = st.text(max_size=10) | st.integers(-(2**70), 2**70).map(str)
    text = text | st.sampled_from(["true", "False", "-5", "0", "1e400", "[1]", "{}"])
    return st.dictionaries(st.sampled_from(keys), text, max_size=4)


def requests(
    ops: list[tuple[str, str]], path_values: list[str], keys: list[str], base: dict[str, Any]
) -> st.SearchStrategy[tuple[str, str, dict[str, str], bytes | None]]:
    def fill(template: str, values: list[str]) -> str:
        for v in values:
            if "{" not in template:
                break
            start, end = template.index("{"), template.index("}")
            template = template[:start] + v + template[end + 1 :]
        return template

    op = st.sampled_from(ops)
    values = st.lists(st.sampled_from(path_values), min_size=2, max_size=2)
    return st.tuples(op, values, queries(keys), bodies(keys, base)).map(
        lambda t: (t[0][0], fill(t[0][1], t[1]), t[2], t[3])
    )


# -- the doors ---------------------------------------------------------------------------------

RELEVANCE_OPS = [
    ("POST", "/datasets/create"),
    ("GET", "/datasets/list"),
    ("POST", "/datasets/list"),
    ("POST", "/datasets/delete"),
    ("GET", "/datasets/{d}/schema"),
    ("POST", "/datasets/{d}/documents/insert"),
    ("POST", "/datasets/{d}/documents/bulk_insert"),
    ("POST", "/datasets/{d}/documents/bulk_update"),
    ("GET", "/datasets/{d}/documents/get"),
    ("POST", "/datasets/{d}/documents/bulk_get"),
    ("POST", "/datasets/{d}/documents/get_where"),
    ("GET", "/datasets/{d}/documents/list"),
    ("POST", "/datasets/{d}/tasks/create"),
    ("GET", "/datasets/{d}/tasks/{t}/status"),
    ("GET", "/datasets/{d}/tasks/list"),
    ("POST", "/services/search/vector"),
    ("POST", "/services/cluster/centroids/list"),
    ("POST", "/services/cluster/centroids/get"),
    ("POST", "/services/cluster/centroids/insert"),
    ("POST", "/services/cluster/centroids/documents"),
    ("POST", "/services/cluster/centroids/list_closest_to_center"),
    ("POST", "/services/cluster/centroids/list_furthest_from_center"),
    ("POST", "/services/cluster/centroids/metadata"),
    ("PUT", "/no/such/route"),
]
RELEVANCE_KEYS = [
    "id",
    "schema",
    "dataset_id",
    "dataset_ids",
    "document",
    "documents",
    "updates",
    "ids",
    "id",
    "filters",
    "select_fields",
    "page_size",
    "page",
    "cursor",
    "include_vector",
    "multivector_query",
    "vector",
    "fields",
    "vector_fields",
    "vector_field",
    "alias",
    "centroid_ids",
    "cluster_ids",
    "similarity_metric",
    "min_score",
    "task_name",
    "overwrite",
    "filter_type",
    "condition",
    "condition_value",
    "field",
    "p_vector_",
]

TOLOKA_OPS = [
    ("POST", "/projects"),
    ("GET", "/projects"),
    ("GET", "/projects/{p}"),
    ("PUT", "/projects/{p}"),
    ("POST", "/projects/{p}/archive"),
    ("POST", "/pools"),
    ("GET", "/pools"),
    ("GET", "/pools/{p}"),
    ("PATCH", "/pools/{p}"),
    ("POST", "/pools/{p}/open"),
    ("POST", "/pools/{p}/close"),
    ("POST", "/skills"),
    ("GET", "/skills"),
    ("GET", "/skills/{p}"),
    ("PUT", "/user-skills"),
    ("GET", "/user-skills"),
    ("DELETE", "/user-skills/{p}"),
    ("GET", "/operations"),
    ("GET", "/operations/{p}"),
    ("GET", "/operations/{p}/log"),
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{p}"),
    ("PATCH", "/tasks/{p}"),
    ("PATCH", "/tasks/{p}/set-overlap-or-min"),
    ("POST", "/task-suites"),
    ("GET", "/task-suites"),
    ("GET", "/task-suites/{p}"),
    ("PATCH", "/task-suites/{p}"),
    ("GET", "/assignments"),
    ("GET", "/assignments/{p}"),
    ("PATCH", "/assignments/{p}"),
    ("POST", "/aggregated-solutions/aggregate-by-pool"),
    ("POST", "/aggregated-solutions/aggregate-by-task"),
    ("GET", "/aggregated-solutions/{p}"),
    ("GET", "/no/such/route"),
]
TOLOKA_KEYS = [
    "public_name",
    "private_comment",
    "task_spec",
    "input_spec",
    "output_spec",
    "project_id",
    "pool_id",
    "private_name",
    "reward_per_assignment",
    "assignment_max_duration_seconds",
    "will_expire",
    "defaults",
    "default_overlap_for_new_tasks",
    "default_overlap_for_new_task_suites",
    "input_values",
    "overlap",
    "infinite_overlap",
    "tasks",
    "name",
    "skill_id",
    "user_id",
    "value",
    "status",
    "limit",
    "sort",
    "id_gt",
    "created_gt",
    "allow_defaults",
    "async_mode",
    "open_pool",
    "operation_id",
    "type",
    "answer_weight_skill_id",
    "fields",
    "task_id",
]

NCLUE_OPS = [
    ("POST", "/tasks"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{t}"),
    ("DELETE", "/tasks/{t}"),
    ("GET", "/features"),
    ("PATCH", "/no/such/route"),
]
NCLUE_KEYS = [
    "task_name",
    "train_feature_id",
    "train_bucket",
    "train_file_path",
    "test_feature_id",
    "test_bucket",
    "test_file_path",
    "limit",
    "cursor",
    "offset",
]

PATH_VALUES = ["fz", "nope", "1", "-5", "a%00b", "x" * 300, "..", "00000000-0000-4000-8000-0"]


# -- the clients and the shapes ------------------------------------------------------------------


@pytest.fixture
def seeded(http: httpx.Client) -> dict[str, str]:
    """A dataset with vectors (Relevance), a feature table (NCLUE), a project (Toloka)."""
    assert http.post("/v1/datasets", json={"name": "fz"}).status_code == 201
    docs = [{"_id": str(i), "x": i, "p_vector_": [float(i), 1.0]} for i in range(4)]
    assert http.post("/v1/datasets/fz/documents", json={"documents": docs}).status_code == 200
    assert http.post("/v1/buckets", json={"name": "fz-bucket"}).status_code == 201
    http.put("/v1/buckets/fz-bucket/files/f.csv", content=b"k,a\nx,1\ny,2\n")
    src = {"kind": "file", "bucket": "fz-bucket", "path": "f.csv", "key_column": "k"}
    feature = http.post("/v1/features", json={"name": "fuzz table", "source": src}).json()
    spec = {
        "input_spec": {"image": {"type": "url"}},
        "output_spec": {"label": {"type": "string", "allowed_values": ["a", "b"]}},
    }
    project = http.post("/v1/crowd/projects", json={"public_name": "P", "task_spec": spec})
    return {"feature": feature["id"], "project": project.json()["id"]}


Send = Callable[[str, str, dict[str, str], bytes | None], httpx.Response]


def _relevance_shape(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"message", "code", "details"}
        and isinstance(body["message"], str)
        and bool(body["message"])
        and isinstance(body["code"], str)
        and isinstance(body["details"], dict)
    )


def _toloka_shape(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and {"request_id", "code", "message"} <= set(body)
        and set(body) <= {"request_id", "code", "message", "payload"}
        and isinstance(body["code"], str)
        and body["code"].isupper()
        and isinstance(body["message"], str)
    )


def _nclue_shape(body: Any) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return (
        set(body) == {"error"}
        and isinstance(err, dict)
        and {"errorCode", "message", "details"} <= set(err)
        and isinstance(err["errorCode"], str)
        and isinstance(err["details"], str)
    )


class Door:
    """Sends generated requests through one door and collects what breaks it."""

    def __init__(self, client: httpx.Client, prefix: str, shape: Callable[[Any], bool]) -> None:
        self.client, self.prefix, self.shape = client, prefix, shape
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}

    def send(self, method: str, path: str, query: dict[str, str], body: bytes | None) -> None:
        where = (
            f"{method} {self.prefix}{path} query={query!r} body={body[:200] if body else body!r}"
        )
        headers = {} if body is None else {"Content-Type": "application/json"}
        try:
            resp = self.client.request(
                method, self.prefix + path, params=query, content=body, headers=headers
            )
        except Exception as exc:  # escaped the app: what a server answers with a 500
            self.failures.append(f"{where}: raised {type(exc).__name__}: {exc}")
            return
        self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
        if resp.status_code >= 500:
            self.failures.append(f"{where}: {resp.status_code} {resp.text[:300]}")
        elif resp.status_code >= 400:
            try:
                parsed = resp.json()
            except ValueError:
                parsed = None
            if not self.shape(parsed):
                self.failures.append(
                    f"{where}: {resp.status_code} not the door's shape: {resp.text[:300]}"
                )

    def check(self) -> None:
        print(f"{self.prefix}: statuses {dict(sorted(self.statuses.items()))}")
        assert sum(self.statuses.values()) + len(self.failures) >= EXAMPLES // 2
        assert not self.failures, f"{len(self.failures)} failures:\n" + "\n".join(self.failures)


@pytest.fixture
def relevance(transport: Any, admin_key: str, platform: Any) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"{platform.credentials['app_id']}:{admin_key}"}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=auth) as c:
        yield c


@pytest.fixture
def toloka(transport: Any, admin_key: str) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"OAuth {admin_key}"}
    with httpx.Client(base_url=BASE_URL, transport=transport, headers=auth) as c:
        yield c


@pytest.fixture
def nclue(transport: Any, platform: Any) -> Iterator[httpx.Client]:
    creds = platform.credentials
    signer = NcpSigner(creds["ncp_access_key"], creds["ncp_secret_key"])
    with httpx.Client(base_url=BASE_URL, transport=transport, auth=signer) as c:
        yield c


# -- the properties ------------------------------------------------------------------------------


def test_the_relevance_door_never_answers_5xx(relevance, seeded):
    door = Door(relevance, "/relevance", _relevance_shape)
    base = {
        "dataset_id": "fz",
        "multivector_query": [{"vector": [1.0, 0.5], "fields": ["p_vector_"]}],
        "documents": [{"_id": "9", "x": 9, "p_vector_": [0.0, 2.0]}],
        "page_size": 3,
    }

    @FUZZ
    @given(req=requests(RELEVANCE_OPS, PATH_VALUES, RELEVANCE_KEYS, base))
    def run(req: tuple[str, str, dict[str, str], bytes | None]) -> None:
        door.send(*req)

    run()
    door.check()


def test_the_toloka_door_never_answers_5xx(toloka, seeded):
    door = Door(toloka, "/toloka/api/v1", _toloka_shape)
    values = [*PATH_VALUES, seeded["project"]]
    base = {
        "project_id": seeded["project"],
        "private_name": "fuzz",
        "reward_per_assignment": 0.05,
        "assignment_max_duration_seconds": 600,
        "will_expire": "2035-01-01T00:00:00",
        "defaults": {"default_overlap_for_new_task_suites": 0},
    }

    @FUZZ
    @given(req=requests(TOLOKA_OPS, values, TOLOKA_KEYS, base))
    def run(req: tuple[str, str, dict[str, str], bytes | None]) -> None:
        door.send(*req)

    run()
    door.check()


def test_the_nclue_door_never_answers_5xx(nclue, seeded):
    door = Door(nclue, "/nclue/api/v1", _nclue_shape)
    base = {
        "task_name": "fuzz task",
        "train_feature_id": seeded["feature"],
        "train_bucket": "fz-bucket",
        "train_file_path": "f.csv",
    }

    @FUZZ
    @given(req=requests(NCLUE_OPS, PATH_VALUES, NCLUE_KEYS, base))
    def run(req: tuple[str, str, dict[str, str], bytes | None]) -> None:
        door.send(*req)

    run()
    door.check()
