"""Columnar feature data: reading CSV, TSV and Parquet files into keys and float32 columns,
and the Parquet artifact a feature table is stored as. Pure code over pyarrow and numpy;
no database, no HTTP.

The artifact is one Parquet file: a string key column (rows sorted by key) and one float32
column per feature. Parquet holds plain typed columns, never pickled objects, so reading a
file that a user supplied or a stored artifact runs no code.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from taskloom.errors import Invalid

try:  # pyarrow is what feature tables are made of; the API says so when it is missing
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover - the "parquet" extra is not installed
    pa = None

FORMATS = ("csv", "tsv", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
MAX_COLUMNS = 10_000
MAX_KEY_CHARS = 255
# Rows per Parquet row group of a stored table: reading it piece by piece (training reads
# only the rows it needs) holds one group in memory at a time, not the whole table.
ROW_GROUP_ROWS = 65_536


def require_pyarrow() -> None:
    if pa is None:
        raise Invalid(
            "feature tables need pyarrow: pip install 'taskloom[parquet]'",
            code="pyarrow_missing",
        )


@dataclass(frozen=True)
class Columns:
    """Keys and feature columns read from somewhere, before they are stored."""

    keys: np.ndarray  # str ("<U"), one per row
    matrix: np.ndarray  # float32 (rows, columns)
    names: list[str]
    types: list[str]  # "float", "int" or "bool": what each column was at the source


def file_format(path: str, given: str | None) -> str:
    """The format named by ``given``, else by the path's extension."""
    if given is not None:
        if given not in FORMATS:
            raise Invalid(
                f"format is one of {', '.join(FORMATS)}", code="invalid_format", field="format"
            )
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise Invalid(
            f"cannot tell the format of {path!r} from its extension; give format "
            f"({', '.join(FORMATS)})",
            code="unknown_file_format",
            field="format",
        )
    return _EXTENSIONS[ext]


def read_table(f: IO[bytes], fmt: str, key_column: str) -> Any:
    """The file as a pyarrow Table; a file pyarrow cannot read is ``Invalid`` (field path)."""
    require_pyarrow()
    try:
        if fmt == "parquet":
            return pq.read_table(f)
        return pacsv.read_csv(
            f,
            parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
            # keys stay text: "00123" is not 123
            convert_options=pacsv.ConvertOptions(column_types={key_column: pa.string()}),
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Invalid(
            f"cannot read the file as {fmt}: {exc}", code="unreadable_file", field="path"
        ) from exc


def _kind(t: Any) -> str | None:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return "float"
    return None


def float32_column(col: Any) -> np.ndarray:
    """A numeric or boolean arrow column as float32, nulls as NaN, without a Python loop."""
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan, np.float32)
    if pa.types.is_float32(col.type) and col.null_count == 0:
        return np.asarray(col.to_numpy())  # a stored column: a view, nothing to convert
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.int8())
    col = pc.fill_null(pc.cast(col, pa.float32(), safe=False), np.float32("nan"))
    return np.asarray(col.to_numpy(), dtype=np.float32)


def columns_of_table(table: Any, key_column: str, columns: Sequence[str] | None) -> Columns:
    """Keys and float32 columns of ``table``: every column but the key, or ``columns``."""
    names = table.column_names
    if key_column not in names:
        raise Invalid(
            f"the file has no column {key_column!r} (it has {', '.join(names[:20])})",
            code="unknown_column",
            field="key_column",
        )
    if len(set(names)) != len(names):
        raise Invalid("the file has two columns of the same name", code="duplicate_column")
    if columns is None:
        chosen = [n for n in names if n != key_column]
    else:
        chosen = list(columns)
        for i, n in enumerate(chosen):
            if n not in names or n == key_column:
                raise Invalid(
                    f"{n!r} is not a feature column of the file",
                    code="unknown_column",
                    field=f"columns[{i}]",
                )
    if not chosen:
        raise Invalid("the file has no feature column besides the key", code="no_feature_columns")
    kinds = [_kind(table.schema.field(n).type) for n in chosen]
    bad = [
        f"{n} ({table.schema.field(n).type})" for n, k in zip(chosen, kinds, strict=True) if not k
    ]
    if bad:
        raise Invalid(
            "feature columns are numbers or booleans; not: "
            + ", ".join(bad[:10])
            + " (choose the columns with `columns`)",
            code="invalid_feature_column",
            field="columns",
            details={"columns": bad},
        )
    keys = key_strings(table.column(key_column))
    matrix = np.empty((table.num_rows, len(chosen)), np.float32)
    for j, n in enumerate(chosen):
        matrix[:, j] = float32_column(table.column(n))
    return Columns(keys, matrix, chosen, [k for k in kinds if k])


def key_strings(col: Any) -> np.ndarray:
    """A key column as a numpy str array: text or integers, no empty or missing key."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if not pa.types.is_integer(col.type):
            raise Invalid(
                f"a key column holds text or integers, not {col.type}",
                code="invalid_key_column",
                field="key_column",
            )
        col = pc.cast(col, pa.string())
    if col.null_count or (len(col) and pc.any(pc.equal(pc.utf8_length(col), 0)).as_py()):
        raise Invalid("a key column has no empty key", code="missing_key", field="key_column")
    if len(col) and pc.max(pc.utf8_length(col)).as_py() > MAX_KEY_CHARS:
        raise Invalid(
            f"a key is at most {MAX_KEY_CHARS} characters", code="invalid_key", field="key_column"
        )
    return np.asarray(col.to_numpy(zero_copy_only=False).astype(str))


def sort_and_check(cols: Columns, key_field: str) -> Columns:
    """Rows in key order (what lookups search); a key twice is ``Invalid``."""
    order = np.argsort(cols.keys, kind="stable")
    keys = cols.keys[order]
    if len(keys) > 1:
        dup = np.flatnonzero(keys[1:] == keys[:-1])
        if len(dup):
            raise Invalid(
                f"the key {keys[dup[0]]!r} is there twice: keys are unique",
                code="duplicate_key",
                field=key_field,
                details={"keys": [str(k) for k in keys[dup[:10]]]},
            )
    return Columns(keys, cols.matrix[order], cols.names, cols.types)


@contextmanager
def parquet_file(cols: Columns, key_column: str) -> Iterator[str]:
    """A temporary Parquet file of ``cols`` (key column first); removed on exit."""
    require_pyarrow()
    arrays = [pa.array(cols.keys, pa.string())]
    arrays += [pa.array(cols.matrix[:, j]) for j in range(cols.matrix.shape[1])]
    table = pa.table(arrays, names=[key_column, *cols.names])
    fd, tmp = tempfile.mkstemp(suffix=".parquet")
    os.close(fd)
    try:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)
        yield tmp
    finally:
        os.unlink(tmp)


def read_artifact(source: Any, key_column: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, float32 matrix) of a stored artifact (a local path or a binary file)."""
    require_pyarrow()
    table = pq.read_table(source, columns=[key_column, *names])
    # columns are filled as rows of the transpose (contiguous writes), then turned once:
    # twice as fast as writing strided columns into a row-major matrix
    by_column = np.empty((len(names), table.num_rows), np.float32)
    for j, n in enumerate(names):
        by_column[j] = table.column(n).to_numpy()
    matrix = np.ascontiguousarray(by_column.T)
    keys = np.asarray(table.column(key_column).to_numpy(zero_copy_only=False).astype(str))
    return keys, matrix


def read_keys(source: Any, key_column: str) -> Any:
    """The key column of a stored artifact as one arrow string array (table row order),
    without reading the feature columns."""
    require_pyarrow()
    return pq.read_table(source, columns=[key_column]).column(key_column).combine_chunks()


# Feature columns decoded per read of a row group (with the row group size, this bounds the
# reader's temporary memory).
GATHER_COLUMNS = 10


def _group_columns(reader: Any, group: int, names: Sequence[str]) -> Iterator[np.ndarray]:
    """Row group ``group``'s columns ``names`` in order, as float32, decoded
    :data:`GATHER_COLUMNS` at a time so that the reader's buffers stay small."""
    pool = pa.default_memory_pool()
    for c0 in range(0, len(names), GATHER_COLUMNS):
        part = reader.read_row_group(
            group, columns=list(names[c0 : c0 + GATHER_COLUMNS]), use_threads=False
        )
        for j in range(part.num_columns):
            yield float32_column(part.column(j).combine_chunks())
        del part
        pool.release_unused()  # else the pool keeps every read's pages


def gather_rows(
    source: Any, names: Sequence[str], requests: Sequence[np.ndarray], *, dtype: Any = np.float64
) -> list[np.ndarray]:
    """For each request (table row numbers, any order, repeats allowed), a matrix whose row
    ``i`` is table row ``request[i]``, columns ``names``, in ``dtype``.

    One pass over the artifact, a row group and :data:`GATHER_COLUMNS` columns at a time,
    serves every request, and the whole float32 table is never in memory: the peak is the
    outputs plus one row group's few columns. (Models train in float64, so gathering
    straight into float64 spares the copy scikit-learn would otherwise make.)
    """
    require_pyarrow()
    d = len(names)
    # per request: its rows sorted, the order that sorts them (None: sorted already), output
    plans: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []
    for rows in requests:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and rows.min() < 0:
            raise ValueError("table row numbers are not negative")
        out = np.empty((len(rows), d), dtype=dtype)
        if len(rows) < 2 or bool((rows[1:] >= rows[:-1]).all()):
            plans.append((rows, None, out))  # in table order already: written in place
        else:
            perm = np.argsort(rows, kind="stable")
            plans.append((rows[perm], perm, out))
    if not any(len(p[0]) for p in plans):
        return [p[2] for p in plans]
    cursors = [0] * len(plans)
    start = 0
    # no pre-buffering: it would read every row group's pages before the first one is used
    reader = pq.ParquetFile(source, pre_buffer=False)
    for group in range(reader.metadata.num_row_groups):
        stop = start + reader.metadata.row_group(group).num_rows
        # per request: its rows in this group, gathered column by column into a
        # (columns x rows) block (contiguous writes), then copied into the output rows
        # with one transposing copy: 2.5x faster than writing strided columns
        spans = []
        for i, (sorted_rows, _, _) in enumerate(plans):
            lo = cursors[i]
            hi = int(np.searchsorted(sorted_rows, stop, side="left"))
            spans.append((lo, hi, sorted_rows[lo:hi] - start, np.empty((d, hi - lo), np.float32)))
            cursors[i] = hi
        if any(hi > lo for lo, hi, _, _ in spans):
            for j, col in enumerate(_group_columns(reader, group, names)):
                for lo, hi, local, block in spans:
                    if hi > lo:
                        np.take(col, local, out=block[j])
            for (lo, hi, _, block), (_, sorter, out) in zip(spans, plans, strict=True):
                if hi > lo:
                    if sorter is None:
                        out[lo:hi] = block.T
                    else:
                        out[sorter[lo:hi]] = block.T
        start = stop
    for (sorted_rows, _, _), done in zip(plans, cursors, strict=True):
        if done != len(sorted_rows):
            raise ValueError(f"row {int(sorted_rows[done])} is beyond the table's {start} rows")
    return [p[2] for p in plans]


def iter_row_groups(
    source: Any, key_column: str, names: Sequence[str], *, dtype: Any = np.float32
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The stored table a row group at a time: (keys as str, matrix rows x ``names``), in
    table order; one row group's few columns decoded at a time, as :func:`gather_rows`."""
    require_pyarrow()
    reader = pq.ParquetFile(source, pre_buffer=False)
    for group in range(reader.metadata.num_row_groups):
        keys = reader.read_row_group(group, columns=[key_column], use_threads=False)
        key_strings = np.asarray(keys.column(0).to_numpy().astype(str))
        block = np.empty((len(names), len(key_strings)), np.float32)
        for j, col in enumerate(_group_columns(reader, group, names)):
            block[j] = col
        yield key_strings, np.ascontiguousarray(block.T, dtype=dtype)
