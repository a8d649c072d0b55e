"""Reading a stored feature table piece by piece (``feature_files.read_keys`` and
``gather_rows``) and matching label keys to it (``join.match_keys``): what training
does instead of loading the whole table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskloom.ml.join import match_keys
from taskloom.ml.tabular import TrainingError
from taskloom.services import feature_files as ff


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A stored table of 10,000 rows x 7 columns in row groups of 1,000, read 3 columns at
    a time (so a request spans groups and reads), with a NaN and an infinity in it."""
    monkeypatch.setattr(ff, "ROW_GROUP_ROWS", 1_000)
    monkeypatch.setattr(ff, "GATHER_COLUMNS", 3)
    rng = np.random.default_rng(3)
    n, d = 10_000, 7
    X = rng.standard_normal((n, d), dtype=np.float32)
    X[5, 2] = np.nan
    X[9_999, 6] = np.inf
    keys = np.array([f"k{i:05d}" for i in range(n)])
    cols = ff.Columns(keys, X, [f"c{j}" for j in range(d)], ["float"] * d)
    path = tmp_path / "table.parquet"
    with ff.parquet_file(cols, "key") as tmp:
        path.write_bytes(Path(tmp).read_bytes())
    return path, keys, X, cols.names


def test_the_artifact_is_stored_in_row_groups(table) -> None:
    path, _, _, _ = table
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 10
    assert {meta.row_group(i).num_rows for i in range(10)} == {1_000}


def test_gather_gives_the_asked_rows_in_the_asked_order(table) -> None:
    path, keys, X, names = table
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(keys))[:6_000]
    ascending = np.sort(rng.choice(len(keys), 2_500, replace=False))
    repeats = np.array([9_999, 0, 9_999, 5, 5, 1_000, 999])
    empty = np.array([], dtype=np.int64)
    outs = ff.gather_rows(str(path), names, [shuffled, ascending, repeats, empty])
    for rows, out in zip([shuffled, ascending, repeats, empty], outs, strict=True):
        assert out.dtype == np.float64 and out.flags.c_contiguous
        assert out.shape == (len(rows), len(names))
        np.testing.assert_array_equal(out, X[rows].astype(np.float64))
    assert np.isnan(outs[2][3, 2]) and np.isinf(outs[2][0, 6])
    # a binary file object (what a table in S3 is read through) gives the same rows
    with open(path, "rb") as f:
        (again,) = ff.gather_rows(f, names, [shuffled])
    np.testing.assert_array_equal(again, outs[0])
    # a subset of the columns, in another order
    (some,) = ff.gather_rows(str(path), ["c4", "c1"], [repeats])
    np.testing.assert_array_equal(some, X[repeats][:, [4, 1]].astype(np.float64))


def test_gather_refuses_rows_outside_the_table(table) -> None:
    path, _, _, names = table
    with pytest.raises(ValueError, match="beyond"):
        ff.gather_rows(str(path), names, [np.array([3, 10_000])])
    with pytest.raises(ValueError, match="not negative"):
        ff.gather_rows(str(path), names, [np.array([-1, 3])])


def test_keys_and_matching_against_the_stored_table(table) -> None:
    path, keys, _, _ = table
    stored = ff.read_keys(str(path), "key")
    assert isinstance(stored, pa.Array) and stored.to_pylist() == keys.tolist()
    asked = pa.array(["k00042", "stranger", "k09999", "k00000", "nobody"])
    match = match_keys(stored, asked)
    assert match.rows.tolist() == [42, 9_999, 0]
    assert match.hit.tolist() == [True, False, True, True, False]
    assert match.unmatched.tolist() == ["stranger", "nobody"]


@pytest.mark.parametrize(
    ("fkeys", "lkeys", "code"),
    [
        # a table not in key order is checked for duplicates the slow way
        (["b", "a", "b"], ["a"], "duplicate_feature_key"),
        (["a", "b"], ["b", "x", "b"], "duplicate_label_key"),
        # a key labelled twice that the table does not have is still labelled twice
        (["a", "b"], ["a", "x", "x"], "duplicate_label_key"),
        (["a", "b"], ["x", "y"], "no_key_matched"),
    ],
)
def test_match_errors(fkeys, lkeys, code) -> None:
    with pytest.raises(TrainingError) as err:
        match_keys(pa.array(fkeys), pa.array(lkeys))
    assert err.value.code == code
    if code.startswith("duplicate"):
        assert err.value.details["examples"]


def test_match_compares_integers_with_text_and_skips_missing_keys() -> None:
    match = match_keys(np.array([7, 17, 170]), np.array(["17", None, "7", 170], dtype=object))
    assert match.rows.tolist() == [1, 0, 2]
    assert match.hit.tolist() == [True, False, True, True]


def test_row_groups_give_the_whole_table_in_order(table) -> None:
    path, keys, X, names = table
    parts = list(ff.iter_row_groups(str(path), "key", names))
    assert [len(k) for k, _ in parts] == [1_000] * 10
    assert np.concatenate([k for k, _ in parts]).tolist() == keys.tolist()
    matrix = np.concatenate([m for _, m in parts])
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous
    np.testing.assert_array_equal(matrix, X)
