"""Vector search against brute-force numpy over the same documents, on SQLite and PostgreSQL.

Every expectation comes from ``taskloom.vectors.metrics`` (float64 numpy) over a copy of the
data the test keeps itself; random vectors make ties between scores practically impossible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from taskloom.errors import Invalid
from taskloom.services.documents import DocumentService
from taskloom.store.engine import Store
from taskloom.vectors import metrics

from .conftest import error_of

METRICS = ["cosine", "dp", "l2", "l1"]
N, DIM, ALT_DIM = 400, 16, 6


@dataclass
class World:
    """The dataset as the test knows it: what a search must agree with."""

    emb: dict[str, np.ndarray] = field(default_factory=dict)
    alt: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reference(self, metric, q, *, k, where=None, vec="emb", start=0):
        """(ids, scores) of the best ``k`` after ``start``; ``where(attrs) -> bool`` filters."""
        pool = getattr(self, vec)
        ids = [i for i in pool if where is None or where(self.attrs[i])]
        if not ids:
            return [], np.empty(0)
        s = metrics.scores(metric, q, np.stack([pool[i] for i in ids]))
        order = metrics.top_k(s, start + k)[start:]
        return [ids[i] for i in order], s[order]

    def multi(self, metric, parts, *, k, where=None):
        ids = [i for i in self.emb if i in self.alt and (where is None or where(self.attrs[i]))]
        total = np.zeros(len(ids))
        for vec, q, w in parts:
            pool = getattr(self, vec)
            total += w * metrics.scores(metric, q, np.stack([pool[i] for i in ids]))
        order = metrics.top_k(total, k)
        return [ids[i] for i in order], total[order]


def doc_of(world: World, doc_id: str) -> dict[str, Any]:
    d = {"_id": doc_id, **world.attrs[doc_id], "emb_vector_": world.emb[doc_id]}
    if doc_id in world.alt:
        d["alt_vector_"] = world.alt[doc_id]
    return d


@pytest.fixture
def world(services, scope) -> World:
    rng = np.random.default_rng(42)
    w = World()
    for i in range(N):
        doc_id = f"doc-{i:03d}"
        w.attrs[doc_id] = {
            "group": i % 5,
            "price": round(float(rng.uniform(0, 100)), 3),
            "name": f"item {i}",
            "meta": {"kind": "even" if i % 2 == 0 else "odd"},
        }
        w.emb[doc_id] = rng.standard_normal(DIM).astype(np.float32)
        if i % 4:
            w.alt[doc_id] = rng.standard_normal(ALT_DIM).astype(np.float32)
    services.datasets.create(scope, "items")
    services.documents.insert(scope, "items", [doc_of(w, i) for i in w.emb])
    return w


def query(seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def run(services, scope, q, **kw):
    kw.setdefault("vector_field", "emb_vector_")
    return services.search.search(scope, "items", vector=q, **kw)


def assert_matches(res, ids, scores):
    assert [h["_id"] for h in res["data"]] == ids
    np.testing.assert_allclose([h["_score"] for h in res["data"]], scores, rtol=1e-4, atol=1e-4)


# -- exact search equals brute force ----------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_search_equals_brute_force(services, scope, world, metric):
    for seed in range(3):
        q = query(seed)
        res = run(services, scope, q, metric=metric, top_k=10)
        assert_matches(res, *world.reference(metric, q, k=10))
        assert res["exact"] and res["index"] == "flat" and res["metric"] == metric
        assert res["count"] == 10 and res["candidates"] == N and res["next_page"] == 2
    # a stored vector is its own nearest neighbour (dp aside: longer vectors can beat it)
    if metric != "dp":
        hit = run(services, scope, world.emb["doc-123"], metric=metric, top_k=1)["data"][0]
        assert hit["_id"] == "doc-123"
    # lists of numbers and {"$f32": base64} are the same query
    as_list = run(services, scope, query(0).tolist(), metric=metric, top_k=5)
    assert as_list["data"] == run(services, scope, query(0), metric=metric, top_k=5)["data"]


FILTERS = [
    ({"group": 2}, lambda a: a["group"] == 2),  # a fifth: faiss with an ID selector
    ({"price": {"$lt": 6}}, lambda a: a["price"] < 6),  # a few: scored one by one
    (
        {"$or": [{"group": 1}, {"meta.kind": "even"}]},
        lambda a: a["group"] == 1 or a["meta"]["kind"] == "even",
    ),
    ({"group": {"$ne": 0}, "price": {"$gte": 10}}, lambda a: a["group"] != 0 and a["price"] >= 10),
]


@pytest.mark.parametrize("metric", METRICS)
def test_filtered_search_equals_brute_force(services, scope, world, metric):
    for n, (flt, where) in enumerate(FILTERS):
        q = query(100 + n)
        res = run(services, scope, q, metric=metric, top_k=12, filter=flt)
        ids, scores = world.reference(metric, q, k=12, where=where)
        assert_matches(res, ids, scores)
        assert res["candidates"] == sum(1 for a in world.attrs.values() if where(a))


def test_a_filter_may_leave_fewer_documents_than_top_k(services, scope, world):
    q = query(5)
    res = run(services, scope, q, top_k=50, filter={"price": {"$lt": 6}})
    ids, scores = world.reference("cosine", q, k=50, where=lambda a: a["price"] < 6)
    assert 0 < len(ids) < 50
    assert_matches(res, ids, scores)
    assert res["next_page"] is None
    none = run(services, scope, q, top_k=5, filter={"group": 99})
    assert none["data"] == [] and none["candidates"] == 0 and none["next_page"] is None


# -- several weighted queries ------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_weighted_queries_are_summed_per_document(services, scope, world, metric):
    qa, qb = query(7), query(8, ALT_DIM)
    parts = [("emb", qa, 0.7), ("alt", qb, 0.3)]
    res = services.search.search(
        scope,
        "items",
        queries=[
            {"vector": qa, "field": "emb_vector_", "weight": 0.7},
            {"vector": qb.tolist(), "field": "alt_vector_", "weight": 0.3},
        ],
        metric=metric,
        top_k=10,
    )
    assert_matches(res, *world.multi(metric, parts, k=10))
    assert res["exact"] and res["candidates"] == len(world.alt)  # documents with both fields
    flt, where = FILTERS[0]
    res = services.search.search(
        scope,
        "items",
        queries=[
            {"vector": qa, "field": "emb_vector_", "weight": 0.7},
            {"vector": qb, "field": "alt_vector_", "weight": 0.3},
        ],
        metric=metric,
        top_k=10,
        filter=flt,
    )
    assert_matches(res, *world.multi(metric, parts, k=10, where=where))


def test_a_negative_weight_ranks_the_farthest_first(services, scope, world):
    q = query(9)
    res = services.search.search(
        scope, "items", queries=[{"vector": q, "field": "emb_vector_", "weight": -2.0}], top_k=3
    )
    ids, scores = world.reference("cosine", -q, k=3)  # cosine(-q, v) = -cosine(q, v)
    assert_matches(res, ids, 2 * scores)


def test_the_same_field_twice(services, scope, world):
    qa, qb = query(10), query(11)
    res = services.search.search(
        scope,
        "items",
        queries=[
            {"vector": qa, "field": "emb_vector_", "weight": 1.0},
            {"vector": qb, "field": "emb_vector_", "weight": 0.5},
        ],
        metric="dp",
        top_k=5,
    )
    ids, scores = world.reference("dp", qa + 0.5 * qb, k=5)  # dot products are linear
    assert_matches(res, ids, scores)


# -- min_score, paging, select -----------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_min_score(services, scope, world, metric):
    q = query(12)
    ids, scores = world.reference(metric, q, k=N)
    cut = float(scores[25] + scores[26]) / 2  # 26 documents reach it
    res = run(services, scope, q, metric=metric, top_k=40, min_score=cut)
    assert_matches(res, ids[:26], scores[:26])
    assert all(h["_score"] >= cut for h in res["data"])
    assert res["next_page"] is None
    page2 = run(services, scope, q, metric=metric, top_k=20, page=2, min_score=cut)
    assert_matches(page2, ids[20:26], scores[20:26])
    assert run(services, scope, q, metric=metric, top_k=5, min_score=10.0)["data"] == []


def test_paging_walks_the_whole_ranking(services, scope, world):
    q = query(13)
    ids, scores = world.reference("l1", q, k=N)
    seen: list[str] = []
    page = 1
    while page is not None:
        res = run(services, scope, q, metric="l1", top_k=37, page=page)
        start = (page - 1) * 37
        assert_matches(res, ids[start : start + 37], scores[start : start + 37])
        seen += [h["_id"] for h in res["data"]]
        page = res["next_page"]
    assert seen == ids and len(seen) == N
    past = run(services, scope, q, metric="l1", top_k=37, page=12)
    assert past["data"] == [] and past["next_page"] is None


def test_select_and_include_vector(services, scope, world):
    q = query(14)
    plain = run(services, scope, q, top_k=3)["data"]
    top = plain[0]["_id"]
    assert set(plain[0]) == {"_id", "_score", "group", "price", "name", "meta"}
    assert {k: plain[0][k] for k in world.attrs[top]} == world.attrs[top]
    picked = run(services, scope, q, top_k=3, select=["name", "meta.kind", "nope"])["data"]
    assert list(picked[0]) == ["_id", "_score", "name", "meta"]
    assert picked[0]["meta"] == {"kind": world.attrs[top]["meta"]["kind"]}
    assert [h["_score"] for h in picked] == [h["_score"] for h in plain]
    full = run(services, scope, q, top_k=3, include_vector=True)["data"]
    np.testing.assert_array_equal(full[0]["emb_vector_"], world.emb[top])
    assert ("alt_vector_" in full[0]) == (top in world.alt)
    only = run(services, scope, q, top_k=3, include_vector=True, select=["emb_vector_"])["data"]
    assert set(only[0]) == {"_id", "_score", "emb_vector_"}


# -- the cache follows every write ---------------------------------------------------------


def check(services, scope, world, seed=20, metric="l2", where=None, **kw):
    q = query(seed)
    res = run(services, scope, q, metric=metric, top_k=8, **kw)
    assert_matches(res, *world.reference(metric, q, k=8, where=where))
    return res


def test_searches_see_inserts_updates_and_deletes(services, scope, world):
    docs = services.documents
    check(services, scope, world)
    assert check(services, scope, world, metric="cosine")["candidates"] == N

    # insert: a new document sitting on the query
    world.attrs["new-1"] = {"group": 1, "price": 1.0, "name": "new", "meta": {"kind": "odd"}}
    world.emb["new-1"] = query(20) + 0.01
    docs.insert(scope, "items", [doc_of(world, "new-1")])
    assert check(services, scope, world)["data"][0]["_id"] == "new-1"

    # update the vector of the document written last (SQLite reuses the highest row id)
    world.emb["new-1"] = -query(20)
    docs.update(scope, "items", [{"_id": "new-1", "emb_vector_": world.emb["new-1"]}])
    assert "new-1" not in [h["_id"] for h in check(services, scope, world)["data"]]

    # update an old document's vector, then overwrite another one entirely
    world.emb["doc-007"] = query(20) * 2
    docs.update(scope, "items", [{"_id": "doc-007", "emb_vector_": world.emb["doc-007"]}])
    world.emb["doc-008"] = query(20) * 3
    world.attrs["doc-008"] = {"group": 4, "price": 2.0, "name": "over", "meta": {"kind": "x"}}
    world.alt.pop("doc-008", None)
    docs.insert(scope, "items", [doc_of(world, "doc-008")])
    res = check(services, scope, world, metric="cosine")
    assert {h["_id"] for h in res["data"][:2]} == {"doc-007", "doc-008"}
    assert res["data"][1]["name"] in ("over", "item 7")

    # delete by id and by filter; remove a vector from a document that stays
    gone = [h["_id"] for h in check(services, scope, world)["data"][:3]]
    docs.delete(scope, "items", gone)
    for i in gone:
        world.emb.pop(i), world.attrs.pop(i), world.alt.pop(i, None)
    check(services, scope, world)
    docs.delete(scope, "items", filter={"group": 3})
    for i in [i for i, a in world.attrs.items() if a["group"] == 3]:
        world.emb.pop(i), world.attrs.pop(i), world.alt.pop(i, None)
    check(services, scope, world, seed=21)
    docs.update(scope, "items", [{"_id": "doc-010", "emb_vector_": None}])
    world.emb.pop("doc-010")
    res = check(services, scope, world, seed=22)
    assert res["candidates"] == len(world.emb)
    check(services, scope, world, seed=22, metric="cosine")
    # a field-only change leaves the vectors, and the answers, as they were
    docs.update(scope, "items", [{"_id": i, "name": "renamed"} for i in list(world.emb)[:50]])
    for i in list(world.emb)[:50]:
        world.attrs[i]["name"] = "renamed"
    res = check(services, scope, world, seed=23)
    assert all(h["name"] == world.attrs[h["_id"]]["name"] for h in res["data"])


def test_many_changes_compact_the_index(services, scope, world):
    rng = np.random.default_rng(3)
    check(services, scope, world)
    for round_ in range(3):
        batch = [f"doc-{i:03d}" for i in rng.choice(N, 150, replace=False)]
        for i in batch:
            if i in world.emb:
                world.emb[i] = rng.standard_normal(DIM).astype(np.float32)
        present = [i for i in batch if i in world.emb]
        services.documents.update(
            scope, "items", [{"_id": i, "emb_vector_": world.emb[i]} for i in present]
        )
        check(services, scope, world, seed=30 + round_)
        check(
            services,
            scope,
            world,
            seed=30 + round_,
            metric="dp",
            filter={"group": 2},
            where=lambda a: a["group"] == 2,
        )
    assert services.search.cache.stats["updates"] >= 3


def test_writes_through_another_connection_are_seen(platform, services, scope, world):
    """Another process writes through its own engine: nothing in this process hears of it."""
    check(services, scope, world)
    other_store = Store(platform.settings.resolved_database_url)
    try:
        other = DocumentService(other_store)
        world.emb["far"] = query(20) * 5
        world.attrs["far"] = {"group": 0, "price": 0.5, "name": "far", "meta": {"kind": "odd"}}
        other.insert(scope, "items", [doc_of(world, "far")])
        assert check(services, scope, world, metric="cosine")["data"][0]["_id"] == "far"
        other.delete(scope, "items", ["far"])
        for pool in (world.emb, world.attrs):
            pool.pop("far")
        check(services, scope, world, metric="cosine")
    finally:
        other_store.dispose()


def test_writes_elsewhere_leave_the_index_current(services, scope, world):
    """Commits that do not touch the dataset (another dataset, jobs) cost a search nothing:
    its index is neither re-checked nor re-read; a write to the dataset is seen at once."""
    check(services, scope, world)
    stats = services.search.cache.stats
    syncs, hits = stats["syncs"], stats["hits"]
    services.datasets.create(scope, "elsewhere")
    services.documents.insert(scope, "elsewhere", [{"_id": "a", "emb_vector_": query(1)}])
    services.jobs.submit(scope, "noop", {})
    check(services, scope, world)
    assert stats["syncs"] == syncs and stats["hits"] == hits + 1
    world.emb["near"] = query(20)
    world.attrs["near"] = {"group": 0, "price": 0.5, "name": "near", "meta": {"kind": "odd"}}
    services.documents.insert(scope, "items", [doc_of(world, "near")])
    assert check(services, scope, world)["data"][0]["_id"] == "near"
    assert stats["syncs"] == syncs + 1


def test_a_dataset_deleted_and_made_again_is_searched_afresh(services, scope, world):
    check(services, scope, world)
    services.datasets.delete(scope, "items")
    services.datasets.create(scope, "items")
    fresh = {"x-1": query(20), "x-2": -query(20)}
    services.documents.insert(
        scope, "items", [{"_id": k, "emb_vector_": v} for k, v in fresh.items()]
    )
    res = run(services, scope, query(20), metric="l2", top_k=2)
    assert [h["_id"] for h in res["data"]] == ["x-1", "x-2"]


# -- HNSW -------------------------------------------------------------------------------------


@pytest.fixture
def clustered(services, scope) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(17)
    centers = rng.standard_normal((40, 32)).astype(np.float32)
    x = centers[rng.integers(0, 40, 3000)] + 0.35 * rng.standard_normal((3000, 32))
    x = x.astype(np.float32)
    services.datasets.create(scope, "blobs")
    services.documents.insert(
        scope, "blobs", [{"_id": f"p{i}", "g": i % 3, "v_vector_": x[i]} for i in range(3000)]
    )
    queries = centers[rng.integers(0, 40, 25)] + 0.35 * rng.standard_normal((25, 32))
    return x, queries.astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_hnsw_recall(services, scope, clustered, metric):
    x, queries = clustered
    built = services.search.build_index(
        scope, "blobs", vector_field="v_vector_", metric=metric, wait=True
    )
    assert built["status"] == "ready" and built["size"] == 3000
    hits = 0
    for q in queries:
        kw = {"vector": q, "vector_field": "v_vector_", "metric": metric, "top_k": 10}
        ann = services.search.search(scope, "blobs", index="hnsw", **kw)
        exact = services.search.search(scope, "blobs", index="flat", **kw)
        assert ann["index"] == "hnsw" and not ann["exact"] and exact["exact"]
        hits += len({h["_id"] for h in ann["data"]} & {h["_id"] for h in exact["data"]})
        # scores of what HNSW returns are the true scores
        want = metrics.scores(metric, q, x[[int(h["_id"][1:]) for h in ann["data"]]])
        np.testing.assert_allclose([h["_score"] for h in ann["data"]], want, rtol=1e-4, atol=1e-4)
    assert hits / (10 * len(queries)) >= 0.95


def test_hnsw_follows_writes_and_filters(services, scope, clustered):
    x, queries = clustered
    q = queries[0]
    kw = {"vector": q, "vector_field": "v_vector_", "metric": "l2", "index": "hnsw"}
    services.search.build_index(scope, "blobs", vector_field="v_vector_", metric="l2", wait=True)
    assert services.search.search(scope, "blobs", top_k=5, **kw)["index"] == "hnsw"
    services.documents.insert(scope, "blobs", [{"_id": "fresh", "g": 0, "v_vector_": q}])
    assert services.search.search(scope, "blobs", top_k=1, **kw)["data"][0]["_id"] == "fresh"
    services.documents.delete(scope, "blobs", ["fresh"])
    assert "fresh" not in [
        h["_id"] for h in services.search.search(scope, "blobs", top_k=5, **kw)["data"]
    ]
    # a selective filter is answered exactly
    flt = {"_id": {"$in": [f"p{i}" for i in range(0, 3000, 29)]}}
    got = services.search.search(scope, "blobs", top_k=10, filter=flt, **kw)
    rows = np.arange(0, 3000, 29)
    s = metrics.scores("l2", q, x[rows])
    best = metrics.top_k(s, 10)
    assert [h["_id"] for h in got["data"]] == [f"p{rows[i]}" for i in best]


def test_auto_picks_hnsw_for_large_fields(services, scope, clustered):
    _, queries = clustered
    kw = {"vector": queries[0], "vector_field": "v_vector_", "top_k": 3}
    assert services.search.search(scope, "blobs", **kw)["index"] == "flat"
    services.search.cache.hnsw_threshold = 1000
    services.search.cache.clear()  # the size is read again
    # the HNSW index is built in the background; meanwhile the answer is exact
    first = services.search.search(scope, "blobs", **kw)
    if first["index"] == "flat":
        assert first["exact"]
        services.search.build_index(scope, "blobs", vector_field="v_vector_", wait=True)
    assert services.search.search(scope, "blobs", **kw)["index"] == "hnsw"
    assert services.search.search(scope, "blobs", index="flat", **kw)["exact"]


def test_hnsw_is_built_in_the_background(services, scope, clustered):
    """A search asking for an index not built yet is answered at once, exactly, and starts
    the build; the index then shows as ready and later searches use it."""
    x, queries = clustered
    kw = {"vector": queries[1], "vector_field": "v_vector_", "metric": "l2", "top_k": 10}
    first = services.search.search(scope, "blobs", index="hnsw", **kw)
    exact = services.search.search(scope, "blobs", index="flat", **kw)
    assert first["index"] == "flat" and first["exact"]
    assert first["data"] == exact["data"]
    states = {
        (e["index"], e["metric"]): e["status"] for e in services.search.indexes(scope, "blobs")
    }
    assert states[("hnsw", "l2")] in ("building", "ready")
    state = services.search.build_index(
        scope, "blobs", vector_field="v_vector_", metric="l2", wait=True
    )
    assert state["status"] == "ready" and state["size"] == 3000
    assert services.search.search(scope, "blobs", index="hnsw", **kw)["index"] == "hnsw"


def test_index_api_over_http_and_sdk(http, sdk, services, scope, clustered):
    r = http.post("/v1/datasets/blobs/indexes", json={"vector_field": "v_vector_", "metric": "dp"})
    assert r.status_code in (200, 202), r.text
    assert r.json()["status"] in ("building", "ready")
    state = sdk.dataset("blobs").build_index("v_vector_", metric="dp")
    assert state["status"] == "ready" and state["size"] == 3000
    listed = sdk.dataset("blobs").indexes()
    want = {"vector_field": "v_vector_", "metric": "dp", "index": "hnsw"}
    assert want.items() <= listed[0].items()
    for body, bad in [
        ({"vector_field": "g", "metric": "dp"}, "vector_field"),
        ({"vector_field": "nope"}, "vector_field"),
        ({"vector_field": "v_vector_", "metric": "cos"}, "metric"),
        ({"vector_field": "v_vector_", "index": "ivf"}, "index"),
    ]:
        r = http.post("/v1/datasets/blobs/indexes", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["details"]["field"] == bad
    assert http.get("/v1/datasets/missing/indexes").status_code == 404


# -- over HTTP and the SDK ----------------------------------------------------------------------


def test_http_and_sdk(http, sdk, services, scope, world):
    q = query(40)
    ids, scores = world.reference("cosine", q, k=5, where=lambda a: a["group"] == 1)
    r = http.post(
        "/v1/datasets/items/search",
        json={
            "vector": q.tolist(),
            "vector_field": "emb_vector_",
            "top_k": 5,
            "filter": {"group": 1},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"data", "count", "candidates", "next_page", "metric", "index", "exact"}
    assert_matches(body, ids, scores)
    hits = sdk.dataset("items").search(q, field="emb_vector_", top_k=5, filter={"group": 1})
    assert_matches({"data": hits}, ids, scores)
    parts = [("emb", q, 0.5), ("alt", query(41, ALT_DIM), 0.5)]
    hits = sdk.dataset("items").search(
        queries=[
            {"vector": q, "field": "emb_vector_", "weight": 0.5},
            {"vector": query(41, ALT_DIM), "field": "alt_vector_", "weight": 0.5},
        ],
        metric="l2",
        top_k=4,
        page=2,
        select=["name"],
    )
    ids, scores = world.multi("l2", parts, k=8)
    assert_matches({"data": hits}, ids[4:], scores[4:])
    assert set(hits[0]) == {"_id", "_score", "name"}
    with pytest.raises(Invalid) as ei:
        sdk.dataset("items").search(q[:3], field="emb_vector_")
    assert ei.value.code == "wrong_dimension"


# -- bad input ------------------------------------------------------------------------------


def post(http, body, name="items"):
    return http.post(f"/v1/datasets/{name}/search", json=body)


V = [0.1] * DIM


def one(**kw):
    """A valid single-vector body, changed by ``kw``."""
    return {"vector": V, "vector_field": "emb_vector_", **kw}


def two(second, **kw):
    """A valid two-query body whose second query is ``second``."""
    return {"queries": [{"vector": V, "field": "emb_vector_"}, second], **kw}


BAD = [
    (one(vector_field="nope_vector_"), "unknown_field", "vector_field"),
    (one(vector_field="name"), "not_a_vector_field", "vector_field"),
    (one(vector_field="meta.kind"), "not_a_vector_field", "vector_field"),
    (one(vector=V[:5]), "wrong_dimension", "vector"),
    (one(vector=V + [1.0]), "wrong_dimension", "vector"),
    (one(metric="euclid"), "unknown_metric", "metric"),
    (one(top_k=0), "invalid_top_k", "top_k"),
    (one(page=0), "invalid_page", "page"),
    (one(top_k=10_000, page=11), "page_too_deep", "page"),
    (one(index="ivf"), "unknown_index", "index"),
    (one(ef_search=0), "invalid_ef_search", "ef_search"),
    (one(filter={"price": {"$near": 1}}), "invalid_filter", "filter.price.$near"),
    ({"vector": V}, "missing_field", "vector_field"),
    ({"vector_field": "emb_vector_"}, "missing_query", "vector"),
    (one(text="hi"), "conflicting_query", "text"),
    (one(vector=[1, "x"]), "vector_not_numeric", "vector"),
    (one(vector=[]), "empty_vector", "vector"),
    (one(vector={"$f32": "%%"}), "invalid_vector", "vector"),
    (one(bogus=1), "invalid", "bogus"),
    (one(queries=[{"vector": V, "field": "emb_vector_"}]), "conflicting_query", "queries"),
    ({"queries": []}, "invalid_queries", "queries"),
    (two({"vector": V, "field": "x_vector_"}), "unknown_field", "queries[1].field"),
    (two({"vector": V, "field": "alt_vector_"}), "wrong_dimension", "queries[1].vector"),
    ({"queries": [{"field": "emb_vector_"}]}, "missing_query", "queries[0].vector"),
    (two({"vector": V, "field": "emb_vector_"}, index="hnsw"), "hnsw_single_query", "index"),
]


@pytest.mark.parametrize(("body", "code", "where"), BAD, ids=[b[1] + "-" + b[2] for b in BAD])
def test_bad_input_is_a_4xx_with_code_and_field(http, world, body, code, where):
    err = error_of(post(http, body), 422, code)
    assert err["details"]["field"] == where


def test_unknown_and_empty_datasets(http, services, scope, world):
    error_of(
        post(http, {"vector": V, "vector_field": "emb_vector_"}, "nope"), 404, "dataset_not_found"
    )
    http.post("/v1/datasets", json={"name": "empty"})
    err = error_of(
        post(http, {"vector": V, "vector_field": "emb_vector_"}, "empty"), 422, "empty_dataset"
    )
    assert err["details"]["field"] == "dataset"
    # documents once, all deleted: empty again; documents without vectors: no_vectors
    http.post(
        "/v1/datasets/empty/documents", json={"documents": [{"_id": "a", "v_vector_": [1.0, 2.0]}]}
    )
    http.post("/v1/datasets/empty/documents/delete", json={"ids": ["a"]})
    error_of(
        post(http, {"vector": [1, 2], "vector_field": "v_vector_"}, "empty"), 422, "empty_dataset"
    )
    http.post("/v1/datasets/empty/documents", json={"documents": [{"_id": "b", "x": 1}]})
    err = error_of(
        post(http, {"vector": [1, 2], "vector_field": "v_vector_"}, "empty"), 422, "no_vectors"
    )
    assert err["details"]["field"] == "vector_field"
    # top_k beyond the field's vectors: what there is (issue 11)
    r = post(http, {"vector": V, "vector_field": "emb_vector_", "top_k": N + 1})
    assert r.status_code == 200 and len(r.json()["data"]) == N, r.text


def test_text_queries_are_encoded_by_the_fields_encoder(services, scope, world, monkeypatch):
    calls = []

    def fake(sc, dataset, field, text):  # a test double of the field's encoder
        calls.append((sc, dataset, field, text))
        return query(50)

    monkeypatch.setattr(services.encoders, "encode_query", fake)
    res = services.search.search(scope, "items", text="a red bike", vector_field="emb_vector_")
    assert calls == [(scope, "items", "emb_vector_", "a red bike")]
    assert_matches(res, *world.reference("cosine", query(50), k=10))
    res = services.search.search(
        scope,
        "items",
        queries=[
            {"text": "a red bike", "field": "emb_vector_", "weight": 1.0},
            {"vector": query(51, ALT_DIM), "field": "alt_vector_", "weight": 0.5},
        ],
        top_k=3,
    )
    parts = [("emb", query(50), 1.0), ("alt", query(51, ALT_DIM), 0.5)]
    assert_matches(res, *world.multi("cosine", parts, k=3))


def test_text_queries_without_an_encoder_are_a_4xx(http, services, world, monkeypatch):
    monkeypatch.setattr(services.search, "encoders", None)  # a search service with none
    err = error_of(
        post(http, {"text": "a red bike", "vector_field": "emb_vector_"}), 422, "no_encoder"
    )
    assert err["details"]["field"] == "text"
