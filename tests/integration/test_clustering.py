"""The ``cluster`` job and the centroids API, on the real job engine and database."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sqlalchemy import func, select

from taskloom.errors import Invalid, NotFound
from taskloom.jobs.worker import Worker
from taskloom.services import cluster_runs
from taskloom.services.clustering import Clusterings
from taskloom.store.tables import centroids, clusterings

from .conftest import error_of

FIELD = "emb_vector_"
K = 5


def make_blobs(n: int, seed: int = 0, k: int = K, dim: int = 8, std: float = 1.0):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(100).uniform(-10, 10, size=(k, dim)).astype(np.float32)
    truth = rng.integers(0, k, n)
    return centers[truth] + std * rng.standard_normal((n, dim), dtype=np.float32), truth, centers


def insert_blobs(services, scope, x, truth, *, start: int = 0, dataset: str = "blobs") -> None:
    services.documents.insert(
        scope,
        dataset,
        [
            {"_id": f"d{start + i}", "truth": int(t), "n": start + i, FIELD: v}
            for i, (v, t) in enumerate(zip(x, truth, strict=True))
        ],
    )


@pytest.fixture
def blobs(services, scope):
    services.datasets.create(scope, "blobs")
    x, truth, centers = make_blobs(400)
    insert_blobs(services, scope, x, truth)
    return x, truth, centers


def run_job(services, scope, dataset: str = "blobs", **params: Any) -> dict[str, Any]:
    params.setdefault("vector_field", FIELD)
    params.setdefault("n_clusters", K)
    job, _ = services.jobs.submit(scope, "cluster", params, dataset=dataset)
    worker = Worker(services.jobs, services=services)
    assert worker.run_one()
    return services.jobs.get(scope, job["id"])


def labels_of(services, scope, alias: str = "default", dataset: str = "blobs") -> dict:
    docs = services.documents.list(scope, dataset, page_size=10_000, include_vector=False)
    return {d["_id"]: d.get("_cluster_", {}).get(FIELD, {}).get(alias) for d in docs["documents"]}


def test_cluster_job_recovers_blobs_and_writes_labels(services, scope, blobs):
    x, truth, _ = blobs
    job = run_job(services, scope, n_init=2, random_state=3)
    assert job["status"] == "completed", job["error"]
    res = job["result"]
    assert res["n_clusters"] == K and res["refit"] is True
    assert sum(res["sizes"]) == 400 and res["n_documents"] == 400
    labels = labels_of(services, scope)
    predicted = [labels[f"d{i}"] for i in range(400)]
    assert all(p in {f"cluster-{i}" for i in range(K)} for p in predicted)
    assert adjusted_rand_score(truth, predicted) >= 0.95
    # the reported inertia is the documents' squared distance to their centroid
    cents = services.centroids.get(
        scope, "blobs", FIELD, cluster_ids=[f"cluster-{i}" for i in range(K)]
    )
    centers = np.stack([c[FIELD] for c in cents])
    idx = np.array([int(p.split("-")[1]) for p in predicted])
    assert res["inertia"] == pytest.approx(((x - centers[idx]) ** 2).sum(), rel=1e-4)
    assert [c["size"] for c in cents] == res["sizes"]
    assert services.centroids.sizes(scope, "blobs", FIELD) == {
        f"cluster-{i}": res["sizes"][i] for i in range(K)
    }
    info = services.centroids.info(scope, "blobs", FIELD)
    assert info["params"]["n_clusters"] == K and info["info"]["inertia"] == res["inertia"]
    assert info["info"]["job_id"] == job["id"]


def test_labels_go_to_the_alias_path_and_are_filterable(services, scope, blobs):
    services.documents.update(scope, "blobs", [{"_id": "d0", "_cluster_": {"other": "keep"}}])
    job = run_job(services, scope, alias="mine")
    assert job["status"] == "completed", job["error"]
    doc = services.documents.get(scope, "blobs", "d0", include_vector=False)
    assert doc["_cluster_"]["other"] == "keep"
    assert set(doc["_cluster_"][FIELD]) == {"mine"}
    assert doc["truth"] is not None and doc["n"] == 0  # the rest of the document is untouched
    assert services.datasets.schema(scope, "blobs")[f"_cluster_.{FIELD}.mine"] == {"type": "text"}
    label = doc["_cluster_"][FIELD]["mine"]
    page = services.documents.list(
        scope, "blobs", filter={f"_cluster_.{FIELD}.mine": label}, include_vector=False
    )
    assert "d0" in {d["_id"] for d in page["documents"]}
    assert len(page["documents"]) == services.centroids.sizes(scope, "blobs", FIELD, "mine")[label]
    with pytest.raises(NotFound):  # another alias is another clustering
        services.centroids.info(scope, "blobs", FIELD, "default")


def test_refresh_false_labels_only_new_documents(services, scope, blobs):
    first = run_job(services, scope, random_state=1)
    before = labels_of(services, scope)
    centers_before = services.centroids.list(
        scope, "blobs", FIELD, page_size=K, include_vector=True
    )
    x_new, truth_new, _ = make_blobs(50, seed=7)
    insert_blobs(services, scope, x_new, truth_new, start=1_000)

    again = run_job(services, scope, random_state=99)  # refresh defaults to false
    res = again["result"]
    assert res["refit"] is False and res["assigned"] == 50
    after = labels_of(services, scope)
    assert {k: after[k] for k in before} == before  # old labels untouched
    centers_after = services.centroids.list(scope, "blobs", FIELD, page_size=K, include_vector=True)
    for a, b in zip(centers_before["data"], centers_after["data"], strict=True):
        np.testing.assert_array_equal(a[FIELD], b[FIELD])
    # each new document went to its nearest centroid
    centers = np.stack([c[FIELD] for c in centers_after["data"]])
    nearest = ((x_new[:, None, :] - centers[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert [after[f"d{1_000 + i}"] for i in range(50)] == [f"cluster-{j}" for j in nearest]
    assert sum(res["sizes"]) == 450
    assert res["inertia"] > first["result"]["inertia"]

    # nothing new: nothing to do
    idle = run_job(services, scope)
    assert idle["result"]["assigned"] == 0 and idle["result"]["refit"] is False

    # refresh=true fits again on everything; another n_clusters fits again too
    refit = run_job(services, scope, refresh=True, random_state=5)
    assert refit["result"]["refit"] is True and refit["result"]["n_documents"] == 450
    other_k = run_job(services, scope, n_clusters=3)
    assert other_k["result"]["refit"] is True and other_k["result"]["n_clusters"] == 3
    assert set(labels_of(services, scope).values()) == {"cluster-0", "cluster-1", "cluster-2"}


def test_a_retried_job_overwrites_its_own_output(services, scope, blobs, monkeypatch):
    monkeypatch.setattr(cluster_runs, "LABEL_BATCH", 100)
    real = Clusterings.write_labels
    calls = {"n": 0}

    def flaky(self, *args: Any, **kw: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:  # two batches written, then the worker "crashes"
            raise RuntimeError("disk on fire")
        return real(self, *args, **kw)

    monkeypatch.setattr(Clusterings, "write_labels", flaky)
    job, _ = services.jobs.submit(
        scope, "cluster", {"vector_field": FIELD, "n_clusters": K}, dataset="blobs", max_attempts=3
    )
    worker = Worker(services.jobs, services=services)
    assert worker.run_one()
    assert services.jobs.get(scope, job["id"])["status"] == "pending"  # will be retried
    time.sleep(0.6)  # the retry's back-off
    assert worker.run_one()
    done = services.jobs.get(scope, job["id"])
    assert done["status"] == "completed", done["error"]
    assert done["attempts"] == 2
    # the second attempt found the same clustering (same seed) and rewrote only what changed
    assert done["result"]["labels_written"] == 200
    labels = labels_of(services, scope)
    assert len(labels) == 400 and all(labels.values())
    with services.centroids.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(clusterings)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(centroids)).scalar_one() == K
    assert services.documents.count(scope, "blobs") == 400


def test_cancel_stops_a_running_job(services, scope, blobs, monkeypatch):
    real = Clusterings.load_vectors
    state: dict[str, Any] = {}

    def load_then_cancel(self, *args: Any, **kw: Any):
        out = real(self, *args, **kw)
        services.jobs.cancel(scope, state["id"])
        time.sleep(0.3)  # past the context's cancel-check interval
        return out

    monkeypatch.setattr(Clusterings, "load_vectors", load_then_cancel)
    job, _ = services.jobs.submit(
        scope, "cluster", {"vector_field": FIELD, "n_clusters": K}, dataset="blobs"
    )
    state["id"] = job["id"]
    assert Worker(services.jobs, services=services).run_one()
    assert services.jobs.get(scope, job["id"])["status"] == "cancelled"
    assert not any(labels_of(services, scope).values())


# -- documents by similarity, under each metric -------------------------------------------------


def test_deleting_a_clustering_keeps_or_clears_its_labels(services, scope, blobs, sdk):
    services.documents.insert(scope, "blobs", [{"_id": "z", "_cluster_": {"other": "x"}}])
    assert run_job(services, scope, alias="a", n_iter=3)["status"] == "completed"
    assert run_job(services, scope, alias="b", n_iter=3)["status"] == "completed"

    def labels(alias: str) -> set:
        return {v for k, v in labels_of(services, scope, alias).items() if k != "z"}

    # by default the documents keep their labels
    services.centroids.delete(scope, "blobs", FIELD, "b")
    assert None not in labels("b")
    # clear_labels removes this clustering's labels and nothing else
    assert run_job(services, scope, alias="b", n_iter=3)["status"] == "completed"
    out = sdk.dataset("blobs").centroids(FIELD, alias="b").delete(clear_labels=True)
    assert out["labels_cleared"] == len(blobs[0])
    assert labels("b") == {None}
    assert None not in labels("a")
    gone = {f"_cluster_.{FIELD}.b": {"$exists": True}}
    assert services.documents.count(scope, "blobs", gone) == 0
    # the last label of a document takes the emptied objects with it
    services.centroids.delete(scope, "blobs", FIELD, "a", clear_labels=True)
    docs = services.documents.list(scope, "blobs", page_size=10_000, include_vector=False)
    rest = {d["_id"]: d.get("_cluster_") for d in docs["documents"]}
    assert rest.pop("z") == {"other": "x"}
    assert set(rest.values()) == {None}


def numpy_order(x: np.ndarray, c: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    x64, c64 = x.astype(np.float64), c.astype(np.float64)
    if metric == "cosine":
        s = x64 @ c64 / (np.linalg.norm(x64, axis=1) * np.linalg.norm(c64))
    elif metric == "dp":
        s = x64 @ c64
    elif metric == "l2":
        s = -np.linalg.norm(x64 - c64, axis=1)
    else:
        s = -np.abs(x64 - c64).sum(axis=1)
    order = np.argsort(-s, kind="stable")
    return order, s[order]


@pytest.mark.parametrize("metric", ["cosine", "dp", "l2", "l1"])
def test_documents_order_equals_numpy(services, scope, blobs, metric):
    x, _, _ = blobs
    run_job(services, scope, random_state=0)
    labels = labels_of(services, scope)
    cid = "cluster-2"
    [cent] = services.centroids.get(scope, "blobs", FIELD, cluster_ids=[cid])
    members = [i for i in range(400) if labels[f"d{i}"] == cid]
    order, want_scores = numpy_order(x[members], cent[FIELD], metric)
    want = [f"d{members[j]}" for j in order]

    whole = services.centroids.documents(
        scope, "blobs", FIELD, cluster_ids=[cid], metric=metric, page_size=1_000
    )
    [group] = whole["data"]
    assert group["cluster_id"] == cid and group["count"] == len(members)
    assert [d["_id"] for d in group["documents"]] == want
    np.testing.assert_allclose([d["_score"] for d in group["documents"]], want_scores, rtol=1e-6)
    assert whole["cursor"] is None

    # pages: by cursor and by page number, the same slices
    got, cursor = [], None
    while True:
        page = services.centroids.documents(
            scope, "blobs", FIELD, cluster_ids=[cid], metric=metric, page_size=7, cursor=cursor
        )
        got += [d["_id"] for d in page["data"][0]["documents"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert got == want
    page3 = services.centroids.documents(
        scope, "blobs", FIELD, cluster_ids=[cid], metric=metric, page=3, page_size=7
    )
    assert [d["_id"] for d in page3["data"][0]["documents"]] == want[14:21]

    closest = services.centroids.closest(
        scope, "blobs", FIELD, cluster_ids=[cid], k=3, metric=metric
    )
    assert [d["_id"] for d in closest["data"][0]["documents"]] == want[:3]
    furthest = services.centroids.furthest(
        scope, "blobs", FIELD, cluster_ids=[cid], k=3, metric=metric
    )
    assert [d["_id"] for d in furthest["data"][0]["documents"]] == want[::-1][:3]


def test_documents_of_several_clusters(services, scope, blobs):
    run_job(services, scope, random_state=0)
    out = services.centroids.documents(
        scope,
        "blobs",
        FIELD,
        cluster_ids=["cluster-3", "cluster-1"],
        page_size=2,
        include_vector=True,
    )
    assert [g["cluster_id"] for g in out["data"]] == ["cluster-3", "cluster-1"]
    for g in out["data"]:
        assert len(g["documents"]) == 2
        for d in g["documents"]:
            assert d["_cluster_"][FIELD]["default"] == g["cluster_id"]
            assert d[FIELD].shape == (8,)
    every = services.centroids.closest(scope, "blobs", FIELD, k=1, select_fields=["truth"])
    assert [g["cluster_id"] for g in every["data"]] == [f"cluster-{i}" for i in range(K)]
    assert all(set(g["documents"][0]) == {"_id", "truth", "_score"} for g in every["data"])


# -- inserting one's own centers -----------------------------------------------------------------


def test_inserted_centers_label_documents_and_serve_queries(services, scope, blobs):
    x, truth, centers = blobs
    names = ["north", "south", "east", "west", "up"]
    out = services.centroids.insert(
        scope,
        "blobs",
        FIELD,
        "mine",
        cluster_centers={n: c.tolist() for n, c in zip(names, centers, strict=True)},
    )
    assert out["n_clusters"] == K and out["params"]["source"] == "inserted"
    got = services.centroids.get(scope, "blobs", FIELD, "mine", cluster_ids=["east", "north"])
    np.testing.assert_array_equal(got[0][FIELD], centers[2])
    np.testing.assert_array_equal(got[1][FIELD], centers[0])
    assert got[0]["size"] is None  # no documents assigned yet

    job = run_job(services, scope, alias="mine")  # refresh=false: assign, do not fit
    assert job["result"]["refit"] is False and job["result"]["assigned"] == 400
    labels = labels_of(services, scope, "mine")
    assert [labels[f"d{i}"] for i in range(400)] == [names[t] for t in truth]
    sizes = services.centroids.sizes(scope, "blobs", FIELD, "mine")
    assert sizes == {n: int((truth == i).sum()) for i, n in enumerate(names)}
    assert [c["size"] for c in services.centroids.list(scope, "blobs", FIELD, "mine")["data"]] == [
        sizes[n] for n in names
    ]
    closest = services.centroids.closest(
        scope, "blobs", FIELD, "mine", cluster_ids=["west"], k=2, metric="l2"
    )
    members = np.flatnonzero(truth == 3)
    d = np.linalg.norm(x[members] - centers[3], axis=1)
    assert [doc["_id"] for doc in closest["data"][0]["documents"]] == [
        f"d{members[j]}" for j in np.argsort(d)[:2]
    ]


@pytest.mark.parametrize(
    "shape",
    ["relevance-docs", "centroid_vector_", "plain-list", "index-keys"],
)
def test_insert_accepts_the_shapes_clients_send(services, scope, blobs, shape):
    _, _, centers = blobs
    vecs = [c.tolist() for c in centers]
    body: Any = {
        "relevance-docs": [{"_id": f"cluster-{i}", FIELD: v} for i, v in enumerate(vecs)],
        "centroid_vector_": [
            {"_id": f"cluster-{i}", "centroid_vector_": v} for i, v in enumerate(vecs)
        ],
        "plain-list": vecs,
        "index-keys": {str(i): v for i, v in enumerate(vecs)},
    }[shape]
    services.centroids.insert(scope, "blobs", FIELD, cluster_centers=body)
    page = services.centroids.list(scope, "blobs", FIELD, page_size=2, include_vector=True)
    assert [c["_id"] for c in page["data"]] == ["cluster-0", "cluster-1"]
    assert page["count"] == K and page["cursor"] is not None
    rest = services.centroids.list(scope, "blobs", FIELD, page_size=10, cursor=page["cursor"])
    assert [c["_id"] for c in rest["data"]] == ["cluster-2", "cluster-3", "cluster-4"]
    assert rest["cursor"] is None and FIELD not in rest["data"][0]
    np.testing.assert_array_equal(page["data"][1][FIELD], centers[1])


# -- metadata --------------------------------------------------------------------------------------


def test_metadata_read_and_write(services, scope, blobs):
    run_job(services, scope, random_state=0)
    assert services.centroids.metadata(scope, "blobs", FIELD) == {}
    meta = {"description": "five blobs", "owner": {"team": "search"}}
    assert services.centroids.metadata(scope, "blobs", FIELD, metadata=meta) == meta
    assert services.centroids.metadata(scope, "blobs", FIELD) == meta
    run_job(services, scope, refresh=True)  # a refit keeps the caller's metadata
    assert services.centroids.info(scope, "blobs", FIELD)["metadata"] == meta
    with pytest.raises(Invalid):
        services.centroids.metadata(scope, "blobs", FIELD, metadata=["not", "a", "dict"])
    with pytest.raises(NotFound):
        services.centroids.metadata(scope, "blobs", FIELD, "nope")


# -- through HTTP and the SDK ---------------------------------------------------------------------


def test_sdk_round_trip(services, scope, blobs, sdk):
    _, truth, centers = blobs
    ds = sdk.dataset("blobs")
    job = sdk.jobs.submit(
        "cluster", dataset="blobs", params={"vector_field": FIELD, "n_clusters": K}
    )
    assert Worker(services.jobs, services=services).run_one()
    assert job.refresh().status == "completed"
    cents = ds.centroids(FIELD)
    assert [c["_id"] for c in cents.iter()] == [f"cluster-{i}" for i in range(K)]
    assert cents.list(page_size=2)["cursor"] is not None
    [one] = cents.get(["cluster-1"])
    assert len(one[FIELD]) == 8
    assert sum(cents.sizes().values()) == 400
    docs = cents.documents(["cluster-1"], metric="l2", page_size=3)
    assert len(docs["data"][0]["documents"]) == 3
    assert set(cents.closest(k=2)) == {f"cluster-{i}" for i in range(K)}
    assert all(len(v) == 1 for v in cents.furthest(["cluster-0", "cluster-4"], k=1).values())
    assert cents.metadata({"a": 1}) == {"a": 1} and cents.metadata() == {"a": 1}
    assert cents.info()["info"]["inertia"] > 0

    mine = ds.centroids(FIELD, alias="given")
    mine.insert(centers)  # a numpy array of centers
    np.testing.assert_array_equal(np.float32(mine.get(["cluster-3"])[0][FIELD]), centers[3])
    clusterings_ = sdk.request("GET", "/v1/datasets/blobs/centroids/clusterings")["data"]
    assert [(c["vector_field"], c["alias"]) for c in clusterings_] == [
        (FIELD, "default"),
        (FIELD, "given"),
    ]
    mine.delete()
    with pytest.raises(NotFound):
        mine.info()


def test_bad_input_answers_4xx(services, scope, blobs, http):
    services.documents.update(scope, "blobs", [{"_id": "d0", "title": "x"}])
    base = "/v1/datasets/blobs/centroids"
    q = {"vector_field": FIELD}
    error_of(http.get(base, params=q), 404, "clustering_not_found")
    error_of(http.get("/v1/datasets/nope/centroids", params=q), 404, "dataset_not_found")
    error_of(http.get(base, params={"vector_field": "zz_vector_"}), 422, "unknown_field")
    error_of(http.get(base, params={"vector_field": "title"}), 422, "not_a_vector_field")
    error_of(http.get(base, params={**q, "alias": "a b"}), 422, "invalid_alias")
    error_of(http.get(base), 422)  # vector_field is required
    run_job(services, scope, random_state=0)
    error_of(http.get(base, params={**q, "cursor": "!!"}), 422, "invalid_cursor")
    error_of(
        http.post(f"{base}/get", json={**q, "cluster_ids": ["cluster-9"]}), 404, "cluster_not_found"
    )
    error_of(
        http.post(f"{base}/documents", json={**q, "cluster_ids": ["cluster-0"], "metric": "cos"}),
        422,
        "unknown_metric",
    )
    error_of(http.post(f"{base}/closest", json={**q, "metric": "hamming"}), 422, "unknown_metric")
    error_of(http.post(f"{base}/documents", json={**q, "cluster_ids": []}), 422)
    error_of(
        http.post(f"{base}/insert", json={**q, "cluster_centers": {"a": [1.0, 2.0]}}),
        422,
        "dimension_mismatch",
    )
    error_of(
        http.post(f"{base}/insert", json={**q, "cluster_centers": [{"_id": "a", "x": [1.0]}]}),
        422,
        "missing_vector",
    )
    error_of(
        http.post(f"{base}/insert", json={**q, "cluster_centers": {"a": [1] * 8, "0": [1] * 7}}),
        422,
        "dimension_mismatch",
    )
    error_of(
        http.post(
            f"{base}/insert",
            json={
                **q,
                "cluster_centers": [{"_id": "a", FIELD: [0] * 8}, {"_id": "a", FIELD: [1] * 8}],
            },
        ),
        422,
        "duplicate_id",
    )
    error_of(
        http.post(f"{base}/insert", json={**q, "cluster_centers": []}),
        422,
        "invalid_cluster_centers",
    )
    error_of(http.post(f"{base}/metadata", json={**q, "metadata": [1]}), 422)
    ok = http.post(f"{base}/metadata", json={**q, "metadata": {"x": 1}})
    assert ok.status_code == 200 and ok.json() == {"metadata": {"x": 1}}
    assert http.get(f"{base}/metadata", params=q).json() == {"metadata": {"x": 1}}
    # a bad job: rejected at submit (params) or failed with a code (dataset-dependent checks)
    r = http.post(
        "/v1/jobs",
        json={
            "kind": "cluster",
            "dataset": "blobs",
            "params": {"vector_field": FIELD, "n_clusters": 0},
        },
    )
    error_of(r, 422, "invalid_params")
    # a field the dataset lacks, or one that holds no vectors: refused at submit, naming the
    # param and the fields there are (no job is made)
    for params, code, listed in [
        ({"vector_field": "zz_vector_", "n_clusters": 2}, "unknown_field", "fields"),
        ({"vector_field": "title", "n_clusters": 2}, "not_a_vector_field", "vector_fields"),
    ]:
        r = http.post("/v1/jobs", json={"kind": "cluster", "dataset": "blobs", "params": params})
        err = error_of(r, 422, code)
        assert err["details"]["field"] == "params.vector_field"
        assert FIELD in err["details"][listed]
    # checks that need the documents themselves: the job fails with a code
    for params, code in [
        ({"vector_field": FIELD, "n_clusters": 401, "refresh": True}, "TOO_FEW_DOCUMENTS"),
    ]:
        job = run_job(services, scope, **params)
        assert job["status"] == "failed" and job["error"]["code"] == code, job["error"]
