"""End to end: a real ``taskloom serve`` process, driven through its ``/relevance`` front door.

Raw requests are made in the exact shapes of relevanceai 0.22-0.26's transport (``requests``:
``Authorization: project:api_key``, GET parameters in the query string with Python's
``True``/``False``, lists as repeated keys and ``None`` left out, a ``{}`` JSON body on GET;
POST parameters as a JSON body); tasks and centroids go through the compat classes
``taskloom.sdk.compat.relevance.TasksClient`` and ``Centroids``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from conftest import ServerProcess
from taskloom.runtime import read_credentials
from taskloom.sdk.compat.relevance import APIError, Centroids, TaskFailed, TasksClient

pytestmark = pytest.mark.e2e

PERSONS = [
    {"_id": "1", "person_characteristics": {"height": 180, "age": 40, "weight": 70}},
    {"_id": "2", "person_characteristics": {"age": 32, "purchases": 10, "visits": 24}},
]
MOVIES = [
    {"_id": "1", "movie_categories": ["sci-fi", "thriller", "comedy"]},
    {"_id": "2", "movie_categories": ["sci-fi", "romance", "drama"]},
]
PING = 0.1  # seconds between status checks (the SDK's default is 10)


class RelevanceHTTP:
    """``relevanceai.transport.Transport.make_http_request``, on httpx."""

    def __init__(self, base_url: str, project: str, api_key: str) -> None:
        self.http = httpx.Client(
            base_url=f"{base_url}/relevance",
            headers={"Authorization": f"{project}:{api_key}"},
            timeout=60,
        )

    def request(self, endpoint: str, method: str = "GET", parameters: dict | None = None) -> Any:
        parameters = parameters or {}
        if method == "GET":
            query = {
                k: str(v) if isinstance(v, bool) else v
                for k, v in parameters.items()
                if v is not None and v != []
            }
            resp = self.http.request(
                "GET",
                endpoint,
                params=query,
                content=b"{}",
                headers={"Content-Type": "application/json"},
            )
        else:
            resp = self.http.post(endpoint, json=parameters)
        assert resp.status_code == 200, f"{method} {endpoint}: {resp.status_code} {resp.text}"
        return resp.json()


@pytest.fixture
def relevance(server: ServerProcess) -> Iterator[tuple[RelevanceHTTP, str, str]]:
    creds = read_credentials(server.data_dir)
    assert creds is not None
    http = RelevanceHTTP(server.url, creds["app_id"], server.api_key)
    yield http, creds["app_id"], server.api_key
    http.http.close()


def bulk_insert(rel: RelevanceHTTP, dataset: str, docs: list[dict[str, Any]]) -> None:
    rel.request("/datasets/create", "POST", {"id": dataset, "schema": {}})
    out = rel.request(
        f"/datasets/{dataset}/documents/bulk_insert",
        "POST",
        {
            "documents": docs,
            "insert_date": True,
            "overwrite": True,
            "update_schema": True,
            "field_transformers": [],
        },
    )
    assert out["inserted"] == len(docs) and out["failed_documents"] == []


def bulk_get(rel: RelevanceHTTP, dataset: str, ids: list[str]) -> list[dict[str, Any]]:
    out = rel.request(
        f"/datasets/{dataset}/documents/bulk_get",
        "GET",
        {"id": ids, "include_vector": True, "select_fields": []},
    )
    return out["documents"]


def test_encoders_through_the_front_door_make_the_seed_vectors(server, relevance):
    rel, project, key = relevance
    bulk_insert(rel, "people", PERSONS)
    bulk_insert(rel, "movies", MOVIES)
    assert rel.request("/datasets/list")["datasets"] == ["movies", "people"]

    tasks = TasksClient(project, key, base_url=server.url, wait_timeout=120)
    final = tasks.create_numeric_encoder_task(
        "people", fields=["person_characteristics"], verbose=False, time_between_ping=PING
    )
    assert (final["status"], final["task_name"]) == ("Finished", "NumericEncoder")
    final = tasks.create_encode_categories_task(
        "movies", fields=["movie_categories"], verbose=True, time_between_ping=PING
    )
    assert final["status"] == "Finished"

    people = bulk_get(rel, "people", ["1", "2"])
    columns = tasks.list("people", show_active_only=False)["tasks"][0]["result"]["outputs"][0][
        "columns"
    ]
    assert [d["person_characteristics_vector_"] for d in people] == [
        [p["person_characteristics"].get(c, 0) for c in columns] for p in PERSONS
    ]
    # the seed's columns exactly, on PostgreSQL too (first-seen order is recorded)
    assert columns == ["height", "age", "weight", "purchases", "visits"]
    assert [d["person_characteristics_vector_"] for d in people] == [
        [180, 40, 70, 0, 0],
        [0, 32, 0, 10, 24],
    ]
    movies = bulk_get(rel, "movies", ["1", "2"])
    assert [d["movie_categories_vector_"] for d in movies] == [[1, 1, 1, 0, 0], [1, 0, 0, 1, 1]]
    schema = rel.request("/datasets/people/schema")
    assert schema["person_characteristics_vector_"] == {"vector": 5}
    assert schema["person_characteristics.height"] == "numeric"

    # the tasks, as the SDK lists them
    assert tasks.list("people")["tasks"] == []
    listed = tasks.list("people", show_active_only=False)["tasks"]
    assert [(t["task_name"], t["status"]) for t in listed] == [("NumericEncoder", "Finished")]
    # without the status checker the task id comes back at once
    started = tasks.create_encode_categories_task(
        "movies", ["movie_categories"], status_checker=False
    )
    assert set(started) == {"task_id"}
    assert tasks._loop_status_until_finish(
        "movies", started["task_id"], verbose=False, time_between_ping=PING
    )["status"] in ("Finished", "success")
    tasks.close()


def test_a_failing_task_ends_the_polling_with_an_error(server, relevance):
    rel, project, key = relevance
    # `odd` is a field of the dataset, but no document holds an object of numbers there:
    # the task is accepted and fails while it runs
    odd = [{"_id": "o1", "odd": {"a": "x"}}, {"_id": "o2", "odd": {"a": [1]}}]
    bulk_insert(rel, "people", [*PERSONS, *odd])
    with TasksClient(project, key, base_url=server.url, wait_timeout=120) as tasks:
        with pytest.raises(TaskFailed) as failed:
            tasks.create_numeric_encoder_task(
                "people", fields=["odd"], verbose=True, time_between_ping=PING
            )
        assert "odd" in str(failed.value)
        assert failed.value.task["status"] == "Failed"
        status = tasks.status("people", failed.value.task["task_id"])
        assert status["status"] == "Failed" and status["error_code"] == "NOTHING_TO_ENCODE"
        # a field the dataset does not have is refused when the task is created
        with pytest.raises(APIError) as refused:
            tasks.create_numeric_encoder_task("people", fields=["no_such_field"])
        assert "no_such_field" in str(refused.value)
        assert "person_characteristics.age" in str(refused.value)


def blobs(seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """30 points in three well-separated blobs in 4-d; (points, blob of each point)."""
    rng = np.random.default_rng(seed)
    centers = np.array([[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0]], dtype=np.float32)
    labels = np.repeat(np.arange(3), 10)
    points = centers[labels] + rng.normal(scale=0.3, size=(30, 4)).astype(np.float32)
    return points.astype(np.float32), labels


def test_clusters_centroids_and_vector_search_through_the_front_door(server, relevance):
    rel, project, key = relevance
    points, labels = blobs()
    bulk_insert(
        rel,
        "blobs",
        [
            {"_id": f"b{i}", "blob": int(labels[i]), "p_vector_": points[i].tolist()}
            for i in range(30)
        ],
    )
    ids = np.array([f"b{i}" for i in range(30)])

    # vector search, as SearchClient.vector sends it
    q = points[4] + 0.05
    found = rel.request(
        "/services/search/vector",
        "POST",
        {
            "dataset_id": "blobs",
            "multivector_query": [{"vector": q.tolist(), "fields": ["p_vector_"]}],
            "positive_document_ids": {},
            "negative_document_ids": {},
            "vector_operation": "sum",
            "approximation_depth": 0,
            "sum_fields": True,
            "page_size": 10,
            "page": 1,
            "similarity_metric": "cosine",
            "facets": [],
            "filters": [],
            "min_score": 0,
            "select_fields": [],
            "include_vector": False,
            "include_count": True,
            "asc": False,
            "keep_search_history": False,
            "hundred_scale": False,
            "search_history_id": None,
            "query": None,
        },
    )
    cos = (points @ q) / (np.linalg.norm(points, axis=1) * np.linalg.norm(q))
    order = np.argsort(-cos, kind="stable")[:10]
    assert [h["_id"] for h in found["results"]] == list(ids[order])
    assert {h["blob"] for h in found["results"]} == {0}
    assert np.allclose([h["_search_score"] for h in found["results"]], cos[order], atol=1e-5)
    assert found["count"] == 30

    # k-means through the compat TasksClient, then the centroids through compat Centroids
    tasks = TasksClient(project, key, base_url=server.url, wait_timeout=120)
    final = tasks.create_cluster_task(
        "blobs", "p_vector_", n_clusters=3, n_init=2, verbose=False, time_between_ping=PING
    )
    assert (final["status"], final["task_name"]) == ("Finished", "Clusterer")
    docs = bulk_get(rel, "blobs", list(ids))
    label_of = {d["_id"]: d["_cluster_"]["p_vector_"]["default"] for d in docs}
    by_label: dict[str, set[int]] = {}
    for i, d in enumerate(docs):
        by_label.setdefault(label_of[d["_id"]], set()).add(int(labels[i]))
    assert sorted(by_label) == ["cluster-0", "cluster-1", "cluster-2"]
    assert all(len(blob) == 1 for blob in by_label.values())  # each cluster is one blob

    centroids = Centroids(project, key, server.url)
    listed = centroids.list("blobs", "p_vector_", include_vector=True, page_size=5)
    assert [c["_id"] for c in listed["documents"]] == ["cluster-0", "cluster-1", "cluster-2"]
    for c in listed["documents"]:
        members = [i for i in range(30) if label_of[ids[i]] == c["_id"]]
        assert np.allclose(c["p_vector_"], points[members].mean(axis=0), atol=1e-4)
        assert c["size"] == len(members) == 10
    got = centroids.get("blobs", ["cluster-1"], "p_vector_")["documents"]
    assert got[0]["_id"] == "cluster-1"
    center = np.asarray(got[0]["p_vector_"], dtype=np.float32)

    members = [i for i in range(30) if label_of[ids[i]] == "cluster-1"]
    out = centroids.documents(
        "blobs", ["cluster-1"], "p_vector_", page_size=4, similarity_metric="l2"
    )
    dist = -np.linalg.norm(points[members] - center, axis=1)
    best = np.argsort(-dist, kind="stable")[:4]
    assert [d["_id"] for d in out["results"]["cluster-1"]] == [ids[members[j]] for j in best]
    assert np.allclose(
        [d["_search_score"] for d in out["results"]["cluster-1"]], dist[best], atol=1e-4
    )

    assert centroids.metadata("blobs", "p_vector_") == {"metadata": {}}
    centroids.metadata("blobs", "p_vector_", metadata={"owner": "e2e", "k": 3})
    assert centroids.metadata("blobs", "p_vector_") == {"metadata": {"owner": "e2e", "k": 3}}

    # your own centroids, under another alias
    mine = [
        {"_id": "cluster-0", "p_vector_": [10.0, 0, 0, 0]},
        {"_id": "cluster-1", "p_vector_": [0, 10.0, 0, 0]},
    ]
    assert centroids.insert("blobs", mine, "p_vector_", alias="mine")["n_clusters"] == 2
    listed = centroids.list("blobs", "p_vector_", alias="mine", include_vector=True)
    assert [c["p_vector_"] for c in listed["documents"]] == [m["p_vector_"] for m in mine]
    assert centroids.list("blobs", "p_vector_", alias="default")["count"] == 3

    # the 0.22 spellings, raw: GET list and metadata with vector_field in the query string
    raw = rel.request(
        "/services/cluster/centroids/list",
        "GET",
        {
            "dataset_id": "blobs",
            "vector_field": "p_vector_",
            "alias": "default",
            "page_size": 5,
            "cursor": None,
            "include_vector": False,
        },
    )
    assert [c["_id"] for c in raw["documents"]] == ["cluster-0", "cluster-1", "cluster-2"]
    raw = rel.request(
        "/services/cluster/centroids/metadata",
        "GET",
        {"dataset_id": "blobs", "vector_field": "p_vector_", "alias": "default"},
    )
    assert raw == {"metadata": {"owner": "e2e", "k": 3}}
    tasks.close()
    centroids.close()
