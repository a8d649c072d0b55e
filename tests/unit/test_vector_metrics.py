"""Metrics (the numpy reference) and the faiss index checked against it, without a database."""

from __future__ import annotations

import numpy as np
import pytest

from taskloom.errors import Invalid
from taskloom.vectors import metrics
from taskloom.vectors.faiss_index import FaissIndex, HNSWParams

METRICS = ["cosine", "dp", "l2", "l1"]


# -- the reference ---------------------------------------------------------------------------


def test_scores_by_hand():
    q = np.array([1.0, 0.0])
    m = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, -1.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(metrics.scores("dp", q, m), [2, 0, -1, 0])
    np.testing.assert_allclose(metrics.scores("cosine", q, m), [1, 0, -(2**-0.5), 0])
    np.testing.assert_allclose(metrics.scores("l2", q, m), [-1, -(10**0.5), -(5**0.5), -1])
    np.testing.assert_allclose(metrics.scores("l1", q, m), [-1, -4, -3, -1])


def test_scores_are_higher_is_better_for_distances():
    q = np.zeros(3)
    m = np.array([[0, 0, 0], [1, 0, 0], [3, 4, 0]], dtype=np.float32)
    for metric in ("l2", "l1"):
        s = metrics.scores(metric, q, m)
        assert s[0] == 0 and s[0] > s[1] > s[2]


def test_cosine_of_a_zero_query_is_zero():
    m = np.array([[1.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(metrics.scores("cosine", np.zeros(2), m), [0, 0])


def test_scores_in_chunks_match_one_shot():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((20_000, 5)).astype(np.float32)
    q = rng.standard_normal(5)
    for metric in METRICS:
        s = metrics.scores(metric, q, m)
        assert s.shape == (20_000,)
        np.testing.assert_allclose(s[-3:], metrics.scores(metric, q, m[-3:]))


def test_scores_refuse_a_wrong_shape():
    with pytest.raises(ValueError):
        metrics.scores("dp", np.ones(3), np.ones((2, 4), np.float32))


def test_normalize_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    out = metrics.normalize(x)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(metrics.normalize(np.array([0.0, 2.0])), [0.0, 1.0])


def test_normalize_keeps_the_direction_of_rows_past_float32_squares():
    big, tiny = float(2**64), 1e-30
    x = np.array([[big, 0.0], [3e38, 3e38], [tiny, tiny], [3.0, 4.0], [0.0, 0.0]], np.float32)
    out = metrics.normalize(x)
    assert out.dtype == np.float32
    h = 2**-0.5
    np.testing.assert_allclose(out, [[1, 0], [h, h], [h, h], [0.6, 0.8], [0, 0]], rtol=1e-6)
    for row, unit in zip(x, out, strict=True):  # one vector alone: the same
        np.testing.assert_allclose(metrics.normalize(row), unit, rtol=1e-6)


def test_norm_is_float64_and_the_metric_s_own():
    x = np.array([[3e38, 3e38, 0], [3, -4, 0]], np.float32)
    np.testing.assert_allclose(metrics.norm("l2", x), [3e38 * 2**0.5, 5], rtol=1e-6)
    np.testing.assert_allclose(metrics.norm("dp", x), [3e38 * 2**0.5, 5], rtol=1e-6)
    np.testing.assert_allclose(metrics.norm("l1", x), [6e38, 7], rtol=1e-6)
    assert metrics.norm("l1", x[1]) == 7
    assert metrics.norm("l2", np.empty((0, 3), np.float32)).shape == (0,)


@pytest.mark.parametrize(
    ("metric", "q", "v", "fits"),
    [
        ("cosine", 1e38, 1e38, True),  # unit vectors whatever they were
        ("dp", 2.0**64, 1.0, True),
        ("dp", 2e19, 1e19, False),  # 2e38 is past half of float32's range
        ("dp", 1e19, 1e19, True),
        ("l2", 2.0**64, 0.0, False),  # |q|^2 alone overflows
        ("l2", 1e19, 1.0, True),
        ("l1", 3e38, 0.0, False),
        ("l1", 1e38, 1e3, True),
    ],
)
def test_fits_float32(metric, q, v, fits):
    assert metrics.fits_float32(metric, q, v) is fits
    assert metrics.score_bound(metric, q, v) <= metrics.F32_SAFE or not fits


@pytest.mark.parametrize("metric", METRICS)
def test_max_norm_follows_the_live_vectors(metric):
    x = np.array([[1, 0], [0, 2], [3, 4]], np.float32)
    pks = np.array([1, 2, 3])
    index = FaissIndex.build(metric, "flat", 2, pks, x)
    want = 1.0 if metric == "cosine" else float(metrics.norm(metric, x).max())
    assert index.max_norm == pytest.approx(want)
    grown = index.updated(np.empty(0, np.int64), np.array([4]), np.array([[1e19, 0]], np.float32))
    assert grown.max_norm == pytest.approx(1.0 if metric == "cosine" else 1e19)
    assert index.max_norm == pytest.approx(want)  # the old snapshot is as it was
    shrunk = grown.updated(np.array([3, 4]), np.empty(0, np.int64), np.empty((0, 2)))
    assert shrunk.max_norm == pytest.approx(1.0 if metric == "cosine" else 2.0)
    assert shrunk.compacted().max_norm == shrunk.max_norm
    empty = FaissIndex.build(metric, "flat", 2, np.empty(0, np.int64), np.empty((0, 2)))
    assert empty.max_norm == (1.0 if metric == "cosine" else 0.0)
    assert grown.nbytes > index.nbytes


def test_a_huge_stored_vector_keeps_its_direction_under_cosine():
    x = np.array([[2**64, 0], [0, 1], [-3e38, 0], [1e-30, 1e-30]], np.float32)
    index = FaissIndex.build("cosine", "flat", 2, np.array([1, 2, 3, 4]), x)
    pks, s = index.search(np.array([1.0, 0.0], np.float32), 4)
    assert pks.tolist() == [1, 4, 2, 3]
    np.testing.assert_allclose(s, [1, 2**-0.5, 0, -1], atol=1e-6)
    np.testing.assert_allclose(s, metrics.scores("cosine", [1.0, 0.0], x[pks - 1]), atol=1e-6)


@pytest.mark.parametrize("bad", ["cos", "L2", "", None, 3, "dot"])
def test_unknown_metric(bad):
    with pytest.raises(Invalid) as ei:
        metrics.check_metric(bad)
    assert ei.value.code == "unknown_metric"
    assert ei.value.field == "metric"


def test_top_k_orders_best_first_and_breaks_ties_by_id():
    s = np.array([0.5, 0.9, 0.5, 0.1, 0.9])
    np.testing.assert_array_equal(metrics.top_k(s, 3), [1, 4, 0])
    ids = np.array([50, 40, 30, 20, 10])
    np.testing.assert_array_equal(metrics.top_k(s, 3, ids=ids), [4, 1, 2])
    np.testing.assert_array_equal(metrics.top_k(s, 10), [1, 4, 0, 2, 3])
    assert metrics.top_k(s, 0).size == 0
    assert metrics.top_k(np.empty(0), 5).size == 0


# -- the faiss index against the reference ---------------------------------------------------


def _data(n: int = 600, dim: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pks = np.sort(rng.choice(10 * n, size=n, replace=False)).astype(np.int64) + 1
    return pks, rng.standard_normal((n, dim)).astype(np.float32)


def _reference(metric, q, pks, x, k, allowed=None):
    if allowed is not None:
        keep = np.isin(pks, allowed)
        pks, x = pks[keep], x[keep]
    s = metrics.scores(metric, q, x)
    best = metrics.top_k(s, k, ids=pks)
    return pks[best], s[best]


def _assert_same(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS)
def test_flat_search_equals_brute_force(metric):
    pks, x = _data()
    index = FaissIndex.build(metric, "flat", x.shape[1], pks, x)
    assert index.exact and len(index) == len(pks)
    rng = np.random.default_rng(7)
    for _ in range(5):
        q = rng.standard_normal(x.shape[1]).astype(np.float32)
        _assert_same(index.search(q, 10), _reference(metric, q, pks, x, 10))
    if metric == "dp":  # a longer vector can beat the query's own under the dot product
        return
    # a stored vector finds itself first, at distance 0 (score 0 under l2/l1, 1 under cosine)
    got_pks, got_scores = index.search(x[17], 1)
    assert got_pks[0] == pks[17]
    if metric in ("l2", "l1"):
        assert got_scores[0] == pytest.approx(0.0, abs=1e-5)
    if metric == "cosine":
        assert got_scores[0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("share", [0.02, 0.5, 0.95])  # scored row by row / bitmap selector
def test_flat_search_with_allowed_equals_brute_force(metric, share):
    pks, x = _data()
    rng = np.random.default_rng(3)
    allowed = np.sort(rng.choice(pks, size=max(1, int(share * len(pks))), replace=False))
    allowed = np.union1d(allowed, [10**9])  # an unknown key is ignored
    index = FaissIndex.build(metric, "flat", x.shape[1], pks, x)
    q = rng.standard_normal(x.shape[1]).astype(np.float32)
    _assert_same(index.search(q, 8, allowed=allowed), _reference(metric, q, pks, x, 8, allowed))
    assert index.search(q, 8, allowed=np.empty(0, np.int64))[0].size == 0


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("metric", METRICS)
def test_updated_snapshots_match_brute_force(metric, kind):
    pks, x = _data(n=400)
    index = FaissIndex.build(metric, kind, x.shape[1], pks, x, HNSWParams(m=16))
    rng = np.random.default_rng(5)
    gone = rng.choice(pks, 40, replace=False)
    changed = rng.choice(np.setdiff1d(pks, gone), 30, replace=False)
    new_pks = np.array([10**6, 10**6 + 1], np.int64)
    add_pks = np.concatenate([changed, new_pks])
    add = rng.standard_normal((add_pks.size, x.shape[1])).astype(np.float32)
    after = index.updated(gone, add_pks, add)
    # the reference: the same changes applied to plain arrays
    truth = {int(p): v for p, v in zip(pks, x, strict=True)}
    for p in gone:
        truth.pop(int(p))
    truth.update({int(p): v for p, v in zip(add_pks, add, strict=True)})
    t_pks = np.array(sorted(truth), np.int64)
    t_x = np.stack([truth[int(p)] for p in t_pks])
    assert len(after) == len(t_pks) and len(index) == len(pks)  # the old snapshot is intact
    np.testing.assert_array_equal(after.pks, t_pks)
    q = rng.standard_normal(x.shape[1]).astype(np.float32)
    k = 15
    if kind == "flat":
        _assert_same(after.search(q, k), _reference(metric, q, t_pks, t_x, k))
    allowed = np.sort(rng.choice(t_pks, 30, replace=False))  # few: exact even for hnsw
    _assert_same(after.search(q, k, allowed=allowed), _reference(metric, q, t_pks, t_x, k, allowed))
    # exact scores of everything, the compacted index, and a changed vector found by itself
    s_pks, s = after.score(q)
    np.testing.assert_array_equal(s_pks, t_pks)
    np.testing.assert_allclose(s, metrics.scores(metric, q, t_x), rtol=1e-4, atol=1e-4)
    compact = after.compacted()
    np.testing.assert_array_equal(compact.pks, t_pks)
    if kind == "flat":
        _assert_same(compact.search(q, k), _reference(metric, q, t_pks, t_x, k))
    if metric != "dp":
        assert after.search(add[0], 1)[0][0] == add_pks[0]
    assert gone[0] not in after.search(x[np.searchsorted(pks, gone[0])], 5)[0]


def test_an_empty_index_answers_nothing():
    index = FaissIndex.build("cosine", "flat", 4, np.empty(0, np.int64), np.empty((0, 4)))
    assert len(index) == 0
    assert index.search(np.ones(4), 5)[0].size == 0
    grown = index.updated(np.empty(0, np.int64), np.array([3]), np.ones((1, 4)))
    assert grown.search(np.ones(4), 5)[0].tolist() == [3]


def test_wrong_query_dimension_is_refused():
    pks, x = _data(n=10, dim=4)
    index = FaissIndex.build("dp", "flat", 4, pks, x)
    with pytest.raises(ValueError):
        index.search(np.ones(5), 3)


def test_hnsw_recall_on_clustered_points():
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((30, 32)).astype(np.float32)
    x = centers[rng.integers(0, 30, 3000)] + 0.3 * rng.standard_normal((3000, 32)).astype(
        np.float32
    )
    pks = np.arange(1, 3001, dtype=np.int64)
    index = FaissIndex.build("l2", "hnsw", 32, pks, x, HNSWParams(m=16, ef_search=64))
    assert not index.exact
    hits = 0
    queries = centers[rng.integers(0, 30, 50)] + 0.3 * rng.standard_normal((50, 32))
    for q in queries.astype(np.float32):
        got, _ = index.search(q, 10)
        want, _ = _reference("l2", q, pks, x, 10)
        hits += len(set(got.tolist()) & set(want.tolist()))
    assert hits / 500 >= 0.95
