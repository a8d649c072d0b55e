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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from taskloom.errors import Invalid

METRICS = ("cosine", "dp", "l2", "l1")
_CHUNK = 8192  # rows per step, so l1/l2 never allocate a (n, dim) float64 temporary at once


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
    zero, so its cosine with anything is 0."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


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
