"""The vector index protocol and its faiss implementation.

A ``FaissIndex`` is an immutable snapshot of one field's vectors under one metric:

* a **base** faiss index built over the vectors sorted by document primary key: an exact
  ``IndexFlat`` (inner product for ``dp``, inner product over unit vectors for ``cosine``,
  ``METRIC_L2``, ``METRIC_L1``) or an approximate ``IndexHNSWFlat`` with the same metric.
  faiss ids are row positions; ``base_pks[row]`` is the document's primary key, so a set of
  primary keys becomes a set of rows with one ``searchsorted``;
* a **live** mask over the base rows: documents deleted or changed since the base was built
  are masked out (HNSW cannot remove points, and a flat index would have to copy itself);
* a small exact **delta** of the vectors added or changed since then;
* the **norm** of every vector (``metrics.norm``; not kept under cosine, whose vectors are
  unit length): ``max_norm`` bounds what a search's float32 arithmetic meets, so a query
  too large for it is refused (``metrics.fits_float32``) instead of scoring inf.

Changes make a new snapshot that shares the base (``updated``), so searches running on the
old snapshot never see a half-applied change and never wait for a lock; ``compacted``
rebuilds the base when the delta or the dead rows grow. Filters arrive as the sorted
primary keys of the candidate documents: faiss searches only those rows through an
``IDSelectorBitmap``, or, when they are few, they are scored directly (exact, and cheaper
than a scan that skips most rows). Scores follow ``metrics``: higher is better.

Why not ``IndexIDMap2`` with primary keys as faiss ids: HNSW cannot ``remove_ids``, a
flat index's removal copies the whole matrix, and ``IDMap``'s selectors test a hash set per
row where a bitmap over sorted rows costs one bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import faiss as _faiss
import numpy as np

from taskloom.vectors import metrics

faiss: Any = _faiss  # the SWIG module's type hints leave out much of what it has

KINDS = ("flat", "hnsw")
_FAISS_METRIC = {
    "cosine": faiss.METRIC_INNER_PRODUCT,
    "dp": faiss.METRIC_INNER_PRODUCT,
    "l2": faiss.METRIC_L2,
    "l1": faiss.METRIC_L1,
}
# a filter keeping at most this share of a flat index's rows is scored row by row
_FLAT_GATHER_SHARE = 1 / 8
# HNSW: filters this selective (share or count) are answered exactly; the graph search
# degrades when most of the points it walks through are filtered out
_HNSW_GATHER_SHARE = 0.1
_HNSW_GATHER_BELOW = 20_000
_MAX_EF = 4096


@dataclass(frozen=True)
class HNSWParams:
    """``IndexHNSWFlat`` parameters: graph degree, build and search beam widths."""

    m: int = 32
    ef_construction: int = 128
    ef_search: int = 128


class VectorIndex(Protocol):
    """What search needs from an index of one field's vectors under one metric."""

    metric: str
    kind: str
    dim: int

    @property
    def exact(self) -> bool: ...

    @property
    def pks(self) -> np.ndarray: ...

    @property
    def nbytes(self) -> int: ...

    @property
    def max_norm(self) -> float:
        """The largest norm (``metrics.norm``) of the indexed vectors as stored."""
        ...

    def __len__(self) -> int: ...

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best (primary keys, scores), best first, among ``allowed`` (sorted
        primary keys) or all."""
        ...

    def score(
        self, query: np.ndarray, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores of every indexed vector (or of those in ``allowed``), in primary
        key order: (primary keys, scores)."""
        ...


@contextmanager
def threads(n: int) -> Iterator[None]:
    """faiss's OpenMP threads for the calling thread only (0: leave as it is). OpenMP keeps
    this setting per thread, so a search limited to one thread leaves index builds and
    k-means on other threads with every core."""
    if n <= 0:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def prepare(metric: str, matrix: np.ndarray) -> np.ndarray:
    """Vectors as the index stores them: float32, C-contiguous, unit length for cosine."""
    if metric == "cosine":
        return np.ascontiguousarray(metrics.normalize(matrix))
    return np.ascontiguousarray(matrix, dtype=np.float32)


def raw_scores(metric: str, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Scores of prepared ``rows`` for a prepared ``query`` (float32, SIMD distance kernels)."""
    n = rows.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if metric in ("cosine", "dp"):
        return rows @ query
    if metric == "l2":
        out = np.empty(n, dtype=np.float32)
        faiss.fvec_L2sqr_ny(
            faiss.swig_ptr(out), faiss.swig_ptr(query), faiss.swig_ptr(rows), query.size, n
        )
        return -np.sqrt(np.maximum(out, 0, out=out), out=out)
    return -faiss.pairwise_distances(query[None, :], rows, metric=faiss.METRIC_L1)[0]


def _faiss_to_scores(metric: str, distances: np.ndarray) -> np.ndarray:
    if metric in ("cosine", "dp"):
        return distances
    if metric == "l2":  # faiss reports squared distances
        return -np.sqrt(np.maximum(distances, 0))
    return -distances


def _rows_of(sorted_pks: np.ndarray, pks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, which of ``pks`` were found) for primary keys in a sorted key array."""
    if sorted_pks.size == 0 or pks.size == 0:
        return np.empty(0, dtype=np.int64), np.zeros(pks.size, dtype=bool)
    pos = np.searchsorted(sorted_pks, pks)
    pos[pos >= sorted_pks.size] = 0
    found = sorted_pks[pos] == pks
    return pos[found].astype(np.int64), found


def _view(index: Any) -> np.ndarray:
    """The stored vectors of a flat or HNSW index as a numpy view (no copy). Valid while
    ``index`` lives and is not changed; never let it escape a method."""
    flat = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index
    n, d = flat.ntotal, flat.d
    if n == 0:
        return np.empty((0, d), dtype=np.float32)
    return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)


def _new_faiss(kind: str, metric: str, dim: int, params: HNSWParams) -> Any:
    fm = _FAISS_METRIC[metric]
    if kind == "flat":
        return faiss.IndexFlat(dim, fm)
    index = faiss.IndexHNSWFlat(dim, params.m, fm)
    index.hnsw.efConstruction = params.ef_construction
    index.hnsw.efSearch = params.ef_search
    return index


class FaissIndex:
    """An immutable snapshot of one field's vectors (see the module docstring)."""

    def __init__(
        self,
        metric: str,
        kind: str,
        dim: int,
        base: Any,
        base_pks: np.ndarray,
        live: np.ndarray | None,
        delta_pks: np.ndarray,
        delta: np.ndarray,
        params: HNSWParams,
        base_norms: np.ndarray | None = None,
        delta_norms: np.ndarray | None = None,
    ) -> None:
        """``base_norms`` / ``delta_norms``: ``metrics.norm`` of each base / delta row,
        computed here when not given (and never kept under cosine: unit vectors)."""
        self.metric = metric
        self.kind = kind
        self.dim = dim
        self.params = params
        self._base = base
        self._base_pks = base_pks  # sorted, one per base row
        self._live = live  # None: every base row is live
        self._delta_pks = delta_pks  # sorted
        self._delta = delta  # prepared rows of the delta, same order
        self._n_live = base_pks.size if live is None else int(live.sum())
        if metric == "cosine":
            base_norms = delta_norms = None
        else:
            if base_norms is None:
                base_norms = metrics.norm(metric, _view(base))
            if delta_norms is None:
                delta_norms = metrics.norm(metric, delta)
        self._base_norms = base_norms
        self._delta_norms = delta_norms

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        metric: str,
        kind: str,
        dim: int,
        pks: np.ndarray,
        matrix: np.ndarray,
        params: HNSWParams | None = None,
        *,
        prepared: bool = False,
    ) -> FaissIndex:
        """An index of ``matrix`` (row ``i`` belongs to primary key ``pks[i]``)."""
        metrics.check_metric(metric)
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}")
        params = params or HNSWParams()
        pks = np.asarray(pks, dtype=np.int64)
        matrix = np.asarray(matrix, dtype=np.float32).reshape(pks.size, dim)
        if pks.size > 1 and not (np.diff(pks) > 0).all():
            order = np.argsort(pks, kind="stable")
            pks, matrix = pks[order], matrix[order]
        rows = matrix if prepared else prepare(metric, matrix)
        base = _new_faiss(kind, metric, dim, params)
        if pks.size:
            base.add(np.ascontiguousarray(rows))
        empty = np.empty((0, dim), dtype=np.float32)
        return cls(metric, kind, dim, base, pks, None, np.empty(0, np.int64), empty, params)

    def updated(self, remove: np.ndarray, add_pks: np.ndarray, add: np.ndarray) -> FaissIndex:
        """A new snapshot without the primary keys ``remove`` and with ``add`` (raw vectors;
        a key that is already indexed is replaced). This snapshot is left as it was."""
        remove = np.union1d(np.asarray(remove, np.int64), np.asarray(add_pks, np.int64))
        live = np.ones(self._base_pks.size, bool) if self._live is None else self._live.copy()
        rows, _ = _rows_of(self._base_pks, remove)
        live[rows] = False
        keep = ~np.isin(self._delta_pks, remove, assume_unique=True)
        d_pks = np.concatenate([self._delta_pks[keep], np.asarray(add_pks, np.int64)])
        added = prepare(self.metric, np.asarray(add).reshape(-1, self.dim))
        d_rows = np.concatenate([self._delta[keep], added])
        order = np.argsort(d_pks, kind="stable")
        d_norms = None
        if self._delta_norms is not None:
            added_norms = metrics.norm(self.metric, added)
            d_norms = np.concatenate([self._delta_norms[keep], added_norms])[order]
        return FaissIndex(
            self.metric,
            self.kind,
            self.dim,
            self._base,
            self._base_pks,
            None if live.all() else live,
            d_pks[order],
            np.ascontiguousarray(d_rows[order]),
            self.params,
            self._base_norms,
            d_norms,
        )

    def needs_compaction(self) -> bool:
        """Whether the delta or the dead base rows have grown enough to rebuild the base."""
        dead = self._base_pks.size - (self._base_pks.size if self._live is None else self._n_live)
        if self.kind == "flat":  # cheap to rebuild, from memory
            limit = max(1024, self._n_live // 10)
        else:  # an HNSW build is slow; the delta is scored exactly meanwhile
            limit = max(20_000, self._n_live // 5)
        return self._delta_pks.size > limit or dead > max(limit, self._base_pks.size // 4)

    def compacted(self) -> FaissIndex:
        """The same vectors with everything in the base (rebuilt from memory)."""
        pks, rows = self.vectors(None)
        return FaissIndex.build(
            self.metric, self.kind, self.dim, pks, rows, self.params, prepared=True
        )

    # -- reading -------------------------------------------------------------------------

    @property
    def exact(self) -> bool:
        return self.kind == "flat"

    def __len__(self) -> int:
        return self._n_live + self._delta_pks.size

    @cached_property
    def pks(self) -> np.ndarray:
        """The indexed primary keys, sorted (computed once: a snapshot does not change)."""
        base = self._base_pks if self._live is None else self._base_pks[self._live]
        if not self._delta_pks.size:
            return base
        # both sorted and disjoint (a key in the delta is masked out of the base): a merge
        return np.insert(base, np.searchsorted(base, self._delta_pks), self._delta_pks)

    def contains(self, pks: np.ndarray) -> np.ndarray:
        """Which of ``pks`` are indexed (a bool per key), without listing every key."""
        pks = np.asarray(pks, np.int64)
        rows, found = _rows_of(self._base_pks, pks)
        if self._live is not None:
            found[found] = self._live[rows]
        return found | _rows_of(self._delta_pks, pks)[1]

    @property
    def nbytes(self) -> int:
        n = self._base_pks.size
        graph = n * self.params.m * 2 * 4 if self.kind == "hnsw" else 0
        norms = 0 if self._base_norms is None else self._base_norms.nbytes
        return (
            n * self.dim * 4
            + graph
            + n * 9
            + norms
            + self._delta.nbytes
            + self._delta_pks.nbytes
            + (0 if self._delta_norms is None else self._delta_norms.nbytes)
        )

    @cached_property
    def max_norm(self) -> float:
        """The largest norm (``metrics.norm``) of the live vectors, as stored: 1 under
        cosine (unit vectors), 0 for an empty index. Computed once per snapshot."""
        if self._base_norms is None or self._delta_norms is None:
            return 1.0
        base = self._base_norms if self._live is None else self._base_norms[self._live]
        return max(float(base.max(initial=0.0)), float(self._delta_norms.max(initial=0.0)))

    def vectors(self, pks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(primary keys, stored rows) of the given keys that are indexed (or of all), in
        primary key order. Rows are as stored: unit length under cosine."""
        view = _view(self._base)
        if pks is None:
            base_rows = (
                np.arange(self._base_pks.size) if self._live is None else np.flatnonzero(self._live)
            )
            d_sel = np.arange(self._delta_pks.size)
        else:
            pks = np.asarray(pks, np.int64)
            base_rows, _ = _rows_of(self._base_pks, pks)
            if self._live is not None:
                base_rows = base_rows[self._live[base_rows]]
            d_sel, _ = _rows_of(self._delta_pks, pks)
        out_pks = np.concatenate([self._base_pks[base_rows], self._delta_pks[d_sel]])
        out = np.concatenate([view[base_rows], self._delta[d_sel]])
        order = np.argsort(out_pks, kind="stable")
        return out_pks[order], out[order]

    def prepare_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.size != self.dim:
            raise ValueError(f"a {q.size}-d query for a {self.dim}-d index")
        return prepare(self.metric, q[None, :])[0]

    def _base_mask(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """Base rows a search may return (None: all of them)."""
        if allowed is None:
            return self._live
        mask = np.zeros(self._base_pks.size, dtype=bool)
        rows, _ = _rows_of(self._base_pks, allowed)
        mask[rows] = True
        if self._live is not None:
            mask &= self._live
        return mask

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        q = self.prepare_query(query)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
        parts_pks: list[np.ndarray] = []
        parts_scores: list[np.ndarray] = []
        nb = self._base_pks.size
        mask = self._base_mask(allowed)
        n_ok = nb if mask is None else int(mask.sum())
        if k > 0 and n_ok:
            # rows masked out only as deleted or replaced are no filter: search as usual
            if mask is not None and allowed is not None and self._gather(n_ok, nb):
                rows = np.flatnonzero(mask)
                s = raw_scores(self.metric, q, _view(self._base)[rows])
                best = metrics.top_k(s, k, ids=self._base_pks[rows])
                parts_pks.append(self._base_pks[rows[best]])
                parts_scores.append(s[best])
            else:
                pks, s = self._faiss_search(q, min(k, n_ok), mask, n_ok, ef_search)
                parts_pks.append(pks)
                parts_scores.append(s)
        if k > 0 and self._delta_pks.size:
            d_rows = (
                np.arange(self._delta_pks.size)
                if allowed is None
                else _rows_of(self._delta_pks, allowed)[0]
            )
            s = raw_scores(self.metric, q, self._delta[d_rows])
            best = metrics.top_k(s, k, ids=self._delta_pks[d_rows])
            parts_pks.append(self._delta_pks[d_rows[best]])
            parts_scores.append(s[best])
        if not parts_pks:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        all_pks = np.concatenate(parts_pks)
        all_scores = np.concatenate(parts_scores).astype(np.float32, copy=False)
        best = metrics.top_k(all_scores, k, ids=all_pks)
        return all_pks[best], all_scores[best]

    def _gather(self, n_ok: int, nb: int) -> bool:
        if self.kind == "flat":
            return n_ok <= nb * _FLAT_GATHER_SHARE
        return n_ok <= _HNSW_GATHER_BELOW or n_ok <= nb * _HNSW_GATHER_SHARE

    def _faiss_search(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, n_ok: int, ef: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        nb = self._base_pks.size
        bitmap = None
        sel = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")
            sel = faiss.IDSelectorBitmap(nb, faiss.swig_ptr(bitmap))
        if self.kind == "hnsw":
            ef = max(ef or self.params.ef_search, k)
            if mask is not None:  # a filter hides points: look wider, in proportion
                ef = min(max(ef, int(ef * nb / n_ok)), max(_MAX_EF, k))
            params: Any = faiss.SearchParametersHNSW(efSearch=ef)
            if sel is not None:
                params.sel = sel
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        distances, labels = self._base.search(q[None, :], k, params=params)
        del bitmap, sel  # kept alive until the search returned
        ok = labels[0] >= 0
        rows = labels[0][ok]
        return self._base_pks[rows], _faiss_to_scores(self.metric, distances[0][ok])

    def score(
        self, query: np.ndarray, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = self.prepare_query(query)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
        mask = self._base_mask(allowed)
        view = _view(self._base)
        if mask is None:
            base_pks, base_s = self._base_pks, raw_scores(self.metric, q, view)
        else:
            rows = np.flatnonzero(mask)
            base_pks, base_s = self._base_pks[rows], raw_scores(self.metric, q, view[rows])
        if not self._delta_pks.size:
            return base_pks, base_s
        d_rows = (
            np.arange(self._delta_pks.size)
            if allowed is None
            else _rows_of(self._delta_pks, allowed)[0]
        )
        pks = np.concatenate([base_pks, self._delta_pks[d_rows]])
        s = np.concatenate([base_s, raw_scores(self.metric, q, self._delta[d_rows])])
        order = np.argsort(pks, kind="stable")
        return pks[order], s[order]
