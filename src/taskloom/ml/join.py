"""Matching a correct-answer file's keys to a feature table's rows (NCLUE task models).

- :func:`match_keys` finds the table row of each label key: one arrow hash lookup, no Python
  loop over rows; duplicate keys on either side and "no key matched" are
  :class:`~taskloom.ml.tabular.TrainingError`.
- :func:`join_labels` does that over a table held in memory and gathers the matched rows
  into float64 (what the estimator trains on). The training job gathers from the stored
  table instead (``StoredTable.gather``), the same rows in the same order.

Pure code: arrays in, arrays out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from taskloom.ml.tabular import TrainingError

__all__ = ["JoinedLabels", "KeyMatch", "join_labels", "match_keys"]

# Rows copied per step when the join gathers feature rows (bounds the temporary memory).
_GATHER_CHUNK = 65_536


class JoinedLabels(NamedTuple):
    """The result of :func:`join_labels`."""

    X: np.ndarray
    """Feature rows of the matched keys, in the label file's order (float64, C order)."""
    y: np.ndarray
    """Their labels."""
    matched: np.ndarray
    """Label keys found in the feature table."""
    unmatched: np.ndarray
    """Label keys not found in the feature table (left out of training)."""


def _key_index(keys: Any, *, name: str) -> np.ndarray:
    arr = np.asarray(keys)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _key_strings(keys: Any, *, name: str) -> Any:
    """Keys as one arrow string array: text as it is, integers and other values as their
    text (so ``17`` matches ``"17"``); a missing key (None) matches nothing."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(keys, pa.Array):
        if pa.types.is_string(keys.type):
            return keys
        return pc.cast(keys, pa.string())
    arr = _key_index(keys, name=name)
    if arr.dtype.kind in "iuU":
        return pc.cast(pa.array(arr), pa.string())
    if arr.dtype.kind == "O":
        try:
            return pa.array(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text: compare as text
            pass
    return pa.array(arr.astype(str), pa.string())


def _examples(keys: Any) -> list[str]:
    return [str(k) for k in keys.to_pylist()[:5]]


def _duplicated(keys: Any) -> Any:
    """The values of ``keys`` that occur more than once (arrow)."""
    counts = pc.value_counts(keys)
    return counts.field("values").filter(pc.greater(counts.field("counts"), 1))


class KeyMatch(NamedTuple):
    """The result of :func:`match_keys`."""

    rows: np.ndarray
    """The feature-table row (int64) of each label key that has one, in the label order."""
    hit: np.ndarray
    """Per label key: whether the table has it."""
    unmatched: np.ndarray
    """Label keys the table does not have (as text)."""


def match_keys(feature_keys: Any, label_keys: Any) -> KeyMatch:
    """Find each label key's row in a feature table (keys: numpy or arrow arrays).

    One arrow hash lookup, no Python loop over rows. Errors (``TrainingError.code``):
    ``duplicate_feature_key`` (the table's key is not unique), ``duplicate_label_key`` (a key
    labelled twice), ``no_key_matched``.
    """
    fkeys = _key_strings(feature_keys, name="feature_keys")
    lkeys = _key_strings(label_keys, name="label_keys")
    n = len(fkeys)
    # a stored table is in key order: strictly increasing keys are unique, checked in O(n)
    ascending = n < 2 or pc.all(pc.less(fkeys[:-1], fkeys[1:])).as_py()
    if not ascending and pc.count_distinct(fkeys).as_py() != n:
        dups = _duplicated(fkeys)
        raise TrainingError(
            f"the feature table has duplicate keys, e.g. {_examples(dups)}",
            code="duplicate_feature_key",
            details={"examples": _examples(dups)},
        )
    found = pc.index_in(lkeys, value_set=fkeys, skip_nulls=True)
    hit = found.is_valid().to_numpy(zero_copy_only=False)
    rows = found.drop_null().to_numpy().astype(np.int64, copy=False)
    missing = lkeys.filter(pc.invert(found.is_valid()))
    twice = len(rows) and bool((np.bincount(rows, minlength=n) > 1).any())
    if twice or pc.count_distinct(missing, mode="all").as_py() != len(missing):
        dups = _duplicated(lkeys)
        raise TrainingError(
            f"the correct-answer file labels some keys more than once, e.g. {_examples(dups)}",
            code="duplicate_label_key",
            details={"examples": _examples(dups)},
        )
    if len(rows) == 0:
        raise TrainingError(
            f"none of the {len(lkeys)} keys of the correct-answer file is in the feature table",
            code="no_key_matched",
            details={"label_rows": len(lkeys), "examples": _examples(lkeys)},
        )
    return KeyMatch(rows, hit, np.asarray(missing.to_pylist(), dtype=object))


def _gather_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` as float64, written straight into the output in chunks.

    HistGradientBoostingClassifier works in float64 and would copy a float32 input; gathering
    into float64 here means fit() copies nothing, so the join costs no extra peak memory.
    """
    if X.dtype == np.float64:
        return X.take(rows, axis=0)
    out = np.empty((len(rows), X.shape[1]), dtype=np.float64)
    for start in range(0, len(rows), _GATHER_CHUNK):
        stop = start + _GATHER_CHUNK
        out[start:stop] = X[rows[start:stop]]
    return out


def join_labels(feature_keys: Any, X: Any, label_keys: Any, labels: Any) -> JoinedLabels:
    """Match each (key, label) row to the feature row with that key (in memory).

    Rows come out in the label file's order; label keys that no feature row has are
    returned in ``unmatched`` and left out. Errors as :func:`match_keys`.
    """
    fkeys = _key_index(feature_keys, name="feature_keys")
    lkeys = _key_index(label_keys, name="label_keys")
    features = np.asarray(X)
    if features.ndim != 2 or features.shape[0] != len(fkeys):
        raise ValueError(
            f"X must have one row per feature key: {features.shape} for {len(fkeys)} keys"
        )
    ylab = np.asarray(labels)
    if ylab.shape != lkeys.shape:
        raise ValueError(f"{len(lkeys)} label keys for {len(ylab)} labels")
    match = match_keys(fkeys, lkeys)
    hit = match.hit
    return JoinedLabels(_gather_rows(features, match.rows), ylab[hit], lkeys[hit], lkeys[~hit])
