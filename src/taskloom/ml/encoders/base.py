"""The encoder protocol: what the encode jobs, search and (later) models and workflows use.

Two families:

``TabularEncoder`` (numeric, categories) learns its columns from the data:
``fit(values)`` / ``partial_fit(values)`` (several calls, one per page of a dataset),
``transform(values) -> float32 (n, dim)``, and ``to_state()`` / ``from_state(state)``: a JSON
object with everything ``transform`` needs, so a fitted encoder is stored in the database
and rebuilt without pickle.

``ModelEncoder`` (text and image models) learns nothing: ``encode(items) -> float32 (n, dim)``;
``on_batch(k)`` is called after each model call with the items it did (progress, cancelling).

Both say which values they take with ``accepts(value)``; the jobs skip the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np


class NotFitted(ValueError, AttributeError):
    """The encoder was used before ``fit`` (an AttributeError too, as scikit-learn's
    NotFittedError: ``hasattr(enc, "dim")`` is False until it is fitted)."""


@runtime_checkable
class TabularEncoder(Protocol):
    @property
    def dim(self) -> int: ...

    def accepts(self, value: Any) -> bool: ...

    def fit(self, values: Iterable[Any]) -> Self: ...

    def partial_fit(self, values: Iterable[Any]) -> Self: ...

    def transform(self, values: Sequence[Any]) -> np.ndarray: ...

    def to_state(self) -> dict[str, Any]: ...

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self: ...


@runtime_checkable
class ModelEncoder(Protocol):
    @property
    def dim(self) -> int: ...

    def accepts(self, value: Any) -> bool: ...

    def encode(
        self, items: Sequence[Any], *, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray: ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return x / norms
