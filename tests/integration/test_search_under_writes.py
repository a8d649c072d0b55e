"""Searches after writes of a few documents, on SQLite and PostgreSQL.

A write of this process is applied to the cached index incrementally: only the documents it
touched are read again (``vectors.changes``), never the whole field or the dataset's
document list. Whatever way the index got there, its answers equal those of an index built
afresh from the database: exact and HNSW, after inserts, deletes, changed vectors, and a
document that lost the field.
"""

from __future__ import annotations

import numpy as np
import pytest

from taskloom.services.documents import DocumentService
from taskloom.store.engine import Store
from taskloom.vectors import cache as cache_module

N, DIM = 1500, 16


def vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


@pytest.fixture
def items(services, scope) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    services.datasets.create(scope, "items")
    services.documents.insert(
        scope,
        "items",
        [{"_id": f"d{i}", "g": i % 3, "emb_vector_": x[i]} for i in range(N)],
    )
    return {f"d{i}": x[i] for i in range(N)}


def search(services, scope, q, index, **kw):
    kw = {"vector_field": "emb_vector_", "metric": "l2", "top_k": 10, "index": index, **kw}
    return services.search.search(scope, "items", vector=q, **kw)


def answers(services, scope, index, seeds=range(8), **kw):
    """(ids, rounded scores) of a few searches, the second with a filter."""
    out = []
    for s in seeds:
        res = search(services, scope, vec(s), index, **kw)
        assert res["index"] == index
        out.append(([h["_id"] for h in res["data"]], [round(h["_score"], 4) for h in res["data"]]))
        res = search(services, scope, vec(s), index, filter={"g": {"$ne": 1}}, **kw)
        out.append(([h["_id"] for h in res["data"]], [round(h["_score"], 4) for h in res["data"]]))
    return out


def ready(services, scope, index):
    if index == "hnsw":
        services.search.build_index(
            scope, "items", vector_field="emb_vector_", metric="l2", index="hnsw", wait=True
        )


def fresh(services, scope, index):
    """The answers of indexes built again from the database."""
    services.search.cache.clear()
    ready(services, scope, index)
    return answers(services, scope, index)


def write_a_few(services, scope, items, step: int) -> None:
    """One round of small writes of every kind, each its own transaction."""
    docs = services.documents
    # a changed vector, next to the queries
    docs.update(scope, "items", [{"_id": f"d{step}", "emb_vector_": vec(step % 8) + 0.01}])
    # inserts, one of them onto a query
    docs.insert(
        scope,
        "items",
        [
            {"_id": f"new-{step}-a", "g": 0, "emb_vector_": vec(step % 8)},
            {"_id": f"new-{step}-b", "g": 1, "emb_vector_": vec(100 + step)},
        ],
    )
    # a document that loses the field (and stays)
    docs.update(scope, "items", [{"_id": f"d{step + 20}", "emb_vector_": None}])
    # deletes: an old document, and one inserted just before
    docs.delete(scope, "items", [f"d{step + 40}", f"new-{step}-b"])
    # replaced whole, with another vector
    docs.insert(scope, "items", [{"_id": f"d{step + 60}", "g": 2, "emb_vector_": vec(step + 7)}])
    # a field-only change: the vector stays
    docs.update(scope, "items", [{"_id": f"d{step + 80}", "g": 1}])


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_small_writes_leave_answers_equal_to_a_fresh_index(services, scope, items, index):
    ready(services, scope, index)
    answers(services, scope, index)  # the index is cached
    stats = services.search.cache.stats
    for step in range(3):
        before = stats["journal"]
        write_a_few(services, scope, items, step)
        got = answers(services, scope, index)
        assert stats["journal"] > before  # followed the writes incrementally
        # the updated vector and the inserted one sit on the query
        top = got[2 * (step % 8)][0][:2]
        assert set(top) == {f"d{step}", f"new-{step}-a"}
        assert f"new-{step}-b" not in sum((ids for ids, _ in got), [])
        assert got == fresh(services, scope, index)
    # deleted documents and the one without the field are never answered
    # N, three inserted, three deleted, three without the field now
    res = search(services, scope, vec(0), index, top_k=N - 3)["data"]
    ids = {h["_id"] for h in res}
    assert len(ids) == N - 3
    assert not ids & {"d40", "d41", "d42", "d20", "d21", "d22"}


def spy(monkeypatch) -> list[list[int] | None]:
    """The keys of every vector read (None: a whole field); comparing the whole dataset's
    documents fails the test."""
    loaded: list[list[int] | None] = []
    real_load = cache_module.load_field

    def load_field(conn, dataset_id, field, *, pks=None):
        loaded.append(pks)
        return real_load(conn, dataset_id, field, pks=pks)

    def document_state(conn, dataset_id):
        raise AssertionError("the whole dataset's documents were compared")

    monkeypatch.setattr(cache_module, "load_field", load_field)
    monkeypatch.setattr(cache_module, "document_state", document_state)
    return loaded


def small_writes(services, scope) -> None:
    services.documents.update(scope, "items", [{"_id": "d3", "emb_vector_": vec(0)}])
    assert search(services, scope, vec(0), "flat")["data"][0]["_id"] == "d3"
    services.documents.insert(scope, "items", [{"_id": "x", "g": 0, "emb_vector_": vec(1)}])
    assert search(services, scope, vec(1), "flat")["data"][0]["_id"] == "x"
    services.documents.delete(scope, "items", ["x", "d3"])
    hits = [h["_id"] for h in search(services, scope, vec(0), "flat", top_k=50)["data"]]
    assert "x" not in hits and "d3" not in hits


def test_a_one_document_write_is_applied_from_memory(services, scope, items, monkeypatch):
    """The next search reads nothing back: the vectors the write gave are applied to the
    index; neither the field nor the dataset's list of documents is read."""
    search(services, scope, vec(0), "flat")
    loaded = spy(monkeypatch)
    small_writes(services, scope)
    assert loaded == []


def test_a_write_too_large_to_keep_reads_back_only_its_documents(
    services, scope, items, monkeypatch
):
    search(services, scope, vec(0), "flat")
    services.documents.journal.keep_bytes = 0  # no vectors kept: read back by key
    loaded = spy(monkeypatch)
    small_writes(services, scope)
    assert [len(p) if p is not None else None for p in loaded] == [1, 1]


def test_writes_of_another_process_between_ours_are_seen(platform, services, scope, items):
    """A write this process did not note leaves a gap: the cache compares the documents."""
    search(services, scope, vec(0), "flat")
    other_store = Store(platform.settings.resolved_database_url)
    try:
        other = DocumentService(other_store)
        services.documents.update(scope, "items", [{"_id": "d1", "emb_vector_": vec(0)}])
        other.insert(scope, "items", [{"_id": "theirs", "g": 0, "emb_vector_": vec(0) + 0.001}])
        other.delete(scope, "items", ["d2"])
        services.documents.update(scope, "items", [{"_id": "d4", "emb_vector_": vec(0) + 0.002}])
        got = answers(services, scope, "flat")
        assert got[0][0][:3] == ["d1", "theirs", "d4"]
        assert "d2" not in sum((ids for ids, _ in got), [])
        assert got == fresh(services, scope, "flat")
    finally:
        other_store.dispose()


def test_a_rolled_back_write_leaves_the_index_as_it_was(services, scope, items):
    from taskloom.errors import Invalid

    search(services, scope, vec(0), "flat")
    with pytest.raises(Invalid):
        services.documents.insert(
            scope,
            "items",
            [{"_id": "d5", "emb_vector_": vec(0)}, {"_id": "bad", "emb_vector_": [1.0, 2.0]}],
        )
    services.documents.update(scope, "items", [{"_id": "d6", "g": 2}])  # the next version
    got = answers(services, scope, "flat")
    assert "d5" not in got[0][0][:1]
    assert got == fresh(services, scope, "flat")
