"""NumericEncoder: objects of numbers -> one vector each, one column per key.

>>> enc = NumericEncoder().fit([{"height": 180, "age": 40, "weight": 70},
...                             {"age": 32, "purchases": 10, "visits": 24}])
>>> enc.columns_
['height', 'age', 'weight', 'purchases', 'visits']
>>> enc.transform([{"height": 180, "age": 40, "weight": 70}]).tolist()
[[180.0, 40.0, 70.0, 0.0, 0.0]]

Columns are the union of the keys, in the order they are first seen (the order of the
values given to ``fit``, and of the keys inside each object as its dict iterates). A missing
key is 0; keys whose value is not a number (text, booleans, nested objects) are not columns.
Scaling, fitted over every value with missing keys counted as 0: ``none`` (the default),
``standard`` (zero mean, unit variance; a constant column is only centred) or ``minmax`` (to
[0, 1]; a constant column becomes 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Self

import numpy as np

from taskloom.ml.encoders.base import NotFitted

Scaling = Literal["none", "standard", "minmax"]
SCALINGS: tuple[str, ...] = ("none", "standard", "minmax")


def _is_number(v: Any) -> bool:
    tv = type(v)
    if tv is int:
        return True
    if tv is float:
        return math.isfinite(v)
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class NumericEncoder:
    """Multi-column numeric encoder; see the module docstring."""

    def __init__(self, scaling: Scaling = "none") -> None:
        if scaling not in SCALINGS:
            raise ValueError(f"scaling is one of {', '.join(SCALINGS)}, not {scaling!r}")
        self.scaling = scaling

    # -- fitting -------------------------------------------------------------------------

    def accepts(self, value: Any) -> bool:
        """An object (dict) with at least one number."""
        return isinstance(value, dict) and any(_is_number(v) for v in value.values())

    def _reset(self) -> None:
        self.columns_: list[str] = []
        self._index: dict[str, int] = {}
        self.n_samples_ = 0
        self._mean = np.zeros(0, np.float64)
        self._m2 = np.zeros(0, np.float64)
        self._min = np.zeros(0, np.float64)
        self._max = np.zeros(0, np.float64)

    def fit(self, values: Iterable[Any]) -> Self:
        self._reset()
        return self.partial_fit(values)

    def partial_fit(self, values: Iterable[Any]) -> Self:
        """Learn from one more batch; columns first seen here go after the known ones."""
        if not hasattr(self, "columns_"):
            self._reset()
        rows = [v for v in values if self.accepts(v)]
        for row in rows:
            for key, v in row.items():
                if key not in self._index and _is_number(v):
                    self._index[key] = len(self.columns_)
                    self.columns_.append(key)
        k, n = len(self.columns_), self.n_samples_
        grow = k - self._mean.size
        if grow:
            # a new column was 0 in every row seen before it
            self._mean = np.concatenate([self._mean, np.zeros(grow)])
            self._m2 = np.concatenate([self._m2, np.zeros(grow)])
            fill = 0.0 if n else math.inf
            self._min = np.concatenate([self._min, np.full(grow, fill)])
            self._max = np.concatenate([self._max, np.full(grow, -fill)])
        if not rows:
            return self
        batch = self._matrix(rows, np.float64)
        b = batch.shape[0]
        b_mean = batch.mean(axis=0)
        b_m2 = ((batch - b_mean) ** 2).sum(axis=0)
        total = n + b
        delta = b_mean - self._mean
        # Chan et al.'s pairwise update: exact enough page after page, no sum of squares
        self._mean = self._mean + delta * (b / total)
        self._m2 = self._m2 + b_m2 + delta**2 * (n * b / total)
        self._min = np.minimum(self._min, batch.min(axis=0))
        self._max = np.maximum(self._max, batch.max(axis=0))
        self.n_samples_ = total
        self._set_scaling()
        return self

    def order_columns(self, rank: dict[str, int]) -> Self:
        """Put the fitted columns in the order ``rank`` gives (columns it lacks keep their
        relative order, after the ranked ones). The job passes the dataset's first-seen
        order of ``field.key`` paths, which survives stores that reorder object keys."""
        if not hasattr(self, "columns_") or not self.columns_:
            return self
        last = len(rank) + len(self.columns_)
        perm = sorted(
            range(len(self.columns_)), key=lambda i: (rank.get(self.columns_[i], last), i)
        )
        self.columns_ = [self.columns_[i] for i in perm]
        self._index = {c: i for i, c in enumerate(self.columns_)}
        idx = np.asarray(perm)
        self._mean, self._m2 = self._mean[idx], self._m2[idx]
        self._min, self._max = self._min[idx], self._max[idx]
        self._set_scaling()
        return self

    def _set_scaling(self) -> None:
        k = len(self.columns_)
        if self.scaling == "standard" and self.n_samples_:
            std = np.sqrt(self._m2 / self.n_samples_)
            self.offset_ = self._mean.copy()
            self.scale_ = np.where(std > 0, std, 1.0)
        elif self.scaling == "minmax" and self.n_samples_:
            span = self._max - self._min
            self.offset_ = self._min.copy()
            self.scale_ = np.where(span > 0, span, 1.0)
        else:
            self.offset_ = np.zeros(k)
            self.scale_ = np.ones(k)

    # -- using ---------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        self._check_fitted()
        return len(self.columns_)

    def _check_fitted(self) -> None:
        if not getattr(self, "columns_", None):
            raise NotFitted("NumericEncoder is not fitted (or saw no numbers)")

    def _matrix(self, rows: Sequence[Any], dtype: Any) -> np.ndarray:
        out = np.zeros((len(rows), len(self.columns_)), dtype=dtype)
        index = self._index
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                continue
            for key, v in row.items():
                j = index.get(key)
                if j is not None and _is_number(v):
                    out[i, j] = v
        return out

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        """float32 (n, dim); keys not seen in ``fit`` are ignored, a value that is not an
        object gives a row of zeros (before scaling)."""
        self._check_fitted()
        x = self._matrix(values, np.float64)
        if self.scaling != "none":
            x = (x - self.offset_) / self.scale_
        return x.astype(np.float32)

    def fit_transform(self, values: Sequence[Any]) -> np.ndarray:
        return self.fit(values).transform(values)

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """What ``transform`` needs, as JSON. Statistics appear only when scaling uses them,
        so that a new document changes the state only when it changes the output."""
        self._check_fitted()
        state: dict[str, Any] = {"columns": list(self.columns_), "scaling": self.scaling}
        if self.scaling != "none":
            state["offset"] = [float(v) for v in self.offset_]
            state["scale"] = [float(v) for v in self.scale_]
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        enc = cls(scaling=state.get("scaling", "none"))
        enc._reset()
        enc.columns_ = [str(c) for c in state["columns"]]
        enc._index = {c: i for i, c in enumerate(enc.columns_)}
        k = len(enc.columns_)
        if enc.scaling != "none":
            enc.offset_ = np.asarray(state["offset"], np.float64).reshape(k)
            enc.scale_ = np.asarray(state["scale"], np.float64).reshape(k)
        else:
            enc.offset_ = np.zeros(k)
            enc.scale_ = np.ones(k)
        return enc
