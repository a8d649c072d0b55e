"""Similarity metrics, defined once: every score is "higher is better".

==========  ===========================================  =====================
metric      ``_score`` of a stored vector ``v``          range
==========  ===========================================  =====================
``cosine``  ``q·v / (|q| |v|)`` (0 if either is zero)    [-1, 1]
``dp``      ``q·v`` (dot product)                        any number
``l2``      ``-|q - v|₂`` (minus the Euclidean distance) (-inf, 0]
``l1``      ``-|q - v|₁`` (minus the Manhattan distance) (-inf, 0]
==========  ===========================================  =====================

Distances are negated so that ordering, ``min_score`` and weighted sums of several queries
mean the same under all four metrics: the best document has the largest score, and
``min_score=-0.5`` under ``l2`` keeps the documents within distance 0.5.

``scores`` is the numpy reference the faiss indexes (``faiss_index``) are tested against;
it computes in float64 and is not meant for the hot path.

The indexes compute in float32, whose squares overflow past about ``1.8e19`` and underflow
below about ``1e-19``. ``normalize`` falls back to float64 for the rows where that would
bend the result, and ``score_bound`` says how large a number the float32 kernels can meet
scoring a query of a given norm (``norm``) against vectors of at most another:
``fits_float32`` is whether it stays clear of float32's range (``F32_SAFE``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskloom.errors import Invalid

METRICS = ("cosine", "dp", "l2", "l1")
_CHUNK = 8192  # rows per step, so l1/l2 never allocate a (n, dim) float64 temporary at once
F32_MAX = float(np.finfo(np.float32).max)
# the largest magnitude a float32 score or intermediate may reach: half the range leaves
# room for the rounding of a float32 sum (at most ~0.4% at 65,536 dimensions)
F32_SAFE = F32_MAX / 2
# a float32 norm below this lost precision to underflowing squares (sqrt of the smallest
# normal float32 is ~1.1e-19)
_TINY_NORM = 1e-18


def check_metric(metric: Any, field: str = "metric") -> str:
    """``metric`` if it is one of ``METRICS``, else ``Invalid`` (code ``unknown_metric``)."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise Invalid(
            f"unknown metric {metric!r}; use one of {', '.join(METRICS)}",
            code="unknown_metric",
            field=field,
        )
    return metric


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, as a new float32 array; a zero row stays
    zero, so its cosine with anything is 0. A row whose float32 norm overflows (values past
    ~1.8e19) or underflows (below ~1e-19) is scaled in float64, so it keeps its direction:
    ``[2**64, 0]`` becomes ``[1, 0]``, not ``[0, 0]``."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return _unit64(x[None, :])[0]
    with np.errstate(over="ignore", under="ignore"):
        norms = np.linalg.norm(x, axis=-1, keepdims=True)
    out = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    redo = ~(norms[..., 0] >= _TINY_NORM) | ~np.isfinite(norms[..., 0])
    if redo.any():
        out[redo] = _unit64(x[redo])
    return out


def _unit64(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length in float64, as float32 (zero rows stay zero)."""
    x64 = x.astype(np.float64)
    norms = np.linalg.norm(x64, axis=-1, keepdims=True)
    unit = np.divide(x64, norms, out=np.zeros_like(x64), where=norms > 0)
    return unit.astype(np.float32)


def norm(metric: str, x: np.ndarray) -> np.ndarray:
    """The norm that bounds ``metric``'s arithmetic of each row of ``x`` (or of one vector),
    as float64: the Manhattan norm for ``l1``, the Euclidean norm for the others. Summed in
    float32 (the rounding is far inside ``F32_SAFE``'s headroom); a row whose float32 sum
    overflows is summed again in float64."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return norm(metric, x[None, :])[0]
    out = np.empty(x.shape[0], dtype=np.float64)
    with np.errstate(over="ignore"):
        for start in range(0, x.shape[0], _CHUNK):
            part = x[start : start + _CHUNK]
            if metric == "l1":
                out[start : start + len(part)] = np.abs(part).sum(axis=1)
            else:
                out[start : start + len(part)] = np.einsum("ij,ij->i", part, part)
    if metric != "l1":
        np.sqrt(out, out=out)
    past = ~np.isfinite(out)
    if past.any():
        x64 = x[past].astype(np.float64)
        out[past] = np.abs(x64).sum(axis=1) if metric == "l1" else np.linalg.norm(x64, axis=1)
    return out


def score_bound(metric: str, query_norm: float, data_norm: float) -> float:
    """The largest magnitude ``metric``'s float32 arithmetic can reach, partial sums
    included, scoring a query of norm ``query_norm`` against vectors of norm at most
    ``data_norm`` (norms as ``norm`` gives them). Cosine compares unit vectors: 1."""
    if metric == "cosine":
        return 1.0
    if metric == "dp":  # |sum of q_i v_i| <= sum |q_i v_i| <= |q| |v|
        return query_norm * data_norm
    if metric == "l2":  # the squared distance, summed term by term: <= (|q| + |v|)^2
        total = query_norm + data_norm
        return total * total
    return query_norm + data_norm  # l1: sum |q_i - v_i| <= |q|_1 + |v|_1


def fits_float32(metric: str, query_norm: float, data_norm: float) -> bool:
    """Whether scoring stays within float32 (``F32_SAFE``): no overflow, no inf score."""
    return bool(score_bound(metric, query_norm, data_norm) <= F32_SAFE)


def scores(metric: str, query: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The score of each row of ``matrix`` for ``query`` under ``metric`` (float64)."""
    check_metric(metric)
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[1] != q.size:
        raise ValueError(f"matrix of shape {m.shape} does not match a {q.size}-d query")
    out = np.empty(m.shape[0], dtype=np.float64)
    for start in range(0, m.shape[0], _CHUNK):
        x = m[start : start + _CHUNK].astype(np.float64)
        if metric == "dp":
            s = x @ q
        elif metric == "cosine":
            qn = np.linalg.norm(q)
            xn = np.linalg.norm(x, axis=1)
            denom = xn * qn
            s = np.divide(x @ q, denom, out=np.zeros(len(x)), where=denom > 0)
        elif metric == "l2":
            s = -np.sqrt(((x - q) ** 2).sum(axis=1))
        else:
            s = -np.abs(x - q).sum(axis=1)
        out[start : start + len(x)] = s
    return out


def top_k(score: np.ndarray, k: int, ids: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` best scores, best first; equal scores in ascending ``ids``
    (or position) order, so results and pages are deterministic."""
    score = np.asarray(score)
    n = score.shape[0]
    k = max(0, min(k, n))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    tie = np.arange(n) if ids is None else np.asarray(ids)
    if k < n:
        # the k-th best score; everything at least as good survives, ties included
        kth = np.partition(-score, k - 1)[k - 1]
        keep = np.flatnonzero(-score <= kth)
    else:
        keep = np.arange(n)
    order = np.lexsort((tie[keep], -score[keep]))
    return keep[order[:k]].astype(np.int64)
