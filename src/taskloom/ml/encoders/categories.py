"""CategoriesEncoder: lists of categories -> multi-hot vectors over every category seen.

>>> enc = CategoriesEncoder().fit([["sci-fi", "thriller", "comedy"],
...                                ["sci-fi", "romance", "drama"]])
>>> enc.categories_
['sci-fi', 'thriller', 'comedy', 'romance', 'drama']
>>> enc.transform([["sci-fi", "romance", "drama"]]).tolist()
[[1.0, 0.0, 0.0, 1.0, 1.0]]

Categories are kept in the order they are first seen (the order of the values given to
``fit``, then of the items in each list). A single string counts as a list of one. Numbers
and booleans count by their JSON text (``1`` and ``"1"`` are one category); nulls, objects
and nested lists are ignored. A category not seen in ``fit`` is ignored by ``transform``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Self

import numpy as np

from taskloom.ml.encoders.base import NotFitted


def _category(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float) and math.isfinite(item):
        return str(int(item)) if item.is_integer() else repr(item)
    return None


def _items(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [c for c in map(_category, value) if c is not None]
    return []


class CategoriesEncoder:
    """Multi-hot encoder over the union of categories; see the module docstring."""

    def __init__(self) -> None:
        pass  # no hyper-parameters; kept for the estimator conventions

    def accepts(self, value: Any) -> bool:
        """A list with at least one category, or a string."""
        return bool(_items(value))

    def fit(self, values: Iterable[Any]) -> Self:
        self.categories_: list[str] = []
        self._index: dict[str, int] = {}
        return self.partial_fit(values)

    def partial_fit(self, values: Iterable[Any]) -> Self:
        if not hasattr(self, "categories_"):
            self.categories_ = []
            self._index = {}
        for value in values:
            for c in _items(value):
                if c not in self._index:
                    self._index[c] = len(self.categories_)
                    self.categories_.append(c)
        return self

    @property
    def dim(self) -> int:
        self._check_fitted()
        return len(self.categories_)

    def _check_fitted(self) -> None:
        if not getattr(self, "categories_", None):
            raise NotFitted("CategoriesEncoder is not fitted (or saw no categories)")

    def transform(self, values: Sequence[Any]) -> np.ndarray:
        self._check_fitted()
        out = np.zeros((len(values), len(self.categories_)), np.float32)
        index = self._index
        for i, value in enumerate(values):
            for c in _items(value):
                j = index.get(c)
                if j is not None:
                    out[i, j] = 1.0
        return out

    def fit_transform(self, values: Sequence[Any]) -> np.ndarray:
        return self.fit(values).transform(values)

    def to_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"categories": list(self.categories_)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        enc = cls()
        enc.categories_ = [str(c) for c in state["categories"]]
        enc._index = {c: i for i, c in enumerate(enc.categories_)}
        return enc
