"""Feature tables ("features"): keyed rows of float32 features that models train and predict on.

A feature table is a row of ``features`` (id, name, description, key column, feature
columns with their types, source, row count) and its data, one Parquet file in the app's
``.features`` area of the blob store (see :mod:`taskloom.services.feature_files`). Tables
are immutable once built: to change one, build another (and delete the old).

Built from

- a dataset (:meth:`FeatureService.create_from_dataset`): number fields give one column,
  booleans one column of 0/1, vector fields one column per dimension (``field_0``,
  ``field_1``...); a missing value is NaN. The key is ``_id`` or a text/integer field.
- a file in a bucket (:meth:`FeatureService.create_from_file`): CSV, TSV or Parquet with a
  header; every column but the key (or the ``columns`` chosen) must be numeric or boolean.

Keys are text and unique; rows are stored in key order. :meth:`FeatureService.load` gives
the whole table as numpy arrays (vectorised, no per-row Python), :meth:`FeatureService.lookup`
the rows of given keys, aligned with them: what a trainer joins labels with and what a
predictor looks rows up with.
"""

from __future__ import annotations

import builtins
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from taskloom.blobs import Blobs, BlobStore
from taskloom.errors import Conflict, Invalid, NotFound
from taskloom.scope import Scope
from taskloom.services import feature_files as ff
from taskloom.services.buckets import BucketService, check_file_path
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup as dataset_row
from taskloom.store.model_tables import features
from taskloom.store.tables import documents
from taskloom.store.types import utcnow
from taskloom.validation import check_display_name
from taskloom.vectors.store import load_field

MAX_NAME = 128
MAX_DESCRIPTION = 10_000
MAX_FIELDS = 1000
_CHUNK = 10_000
_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class FeatureData:
    """A whole feature table: row ``i`` is ``keys[i]`` and ``matrix[i]``; rows in key order."""

    keys: np.ndarray  # str, (n,)
    matrix: np.ndarray  # float32, (n, d)
    columns: list[str]

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class StoredTable:
    """A stored feature table read piece by piece: its keys first, then only the rows that
    are asked for, converted on the way (what training does, so that the whole float32
    table is never in memory beside the float64 rows a model trains on)."""

    id: str
    columns: list[str]
    key_column: str
    rows: int
    area: Blobs
    artifact: str

    @contextmanager
    def _source(self) -> Iterator[Any]:
        if self.area.store.local:  # by path: pyarrow reads only the parts it is asked for
            yield self.area.full_path(self.artifact)
        else:
            with self.area.open(self.artifact) as f:
                yield f

    def keys(self) -> Any:
        """The keys (an arrow string array), in table row order."""
        with self._source() as src:
            return ff.read_keys(src, self.key_column)

    def row_groups(self, *, dtype: Any = np.float32) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The table a row group (65,536 rows) at a time: (keys, matrix), table order."""
        with self._source() as src:
            yield from ff.iter_row_groups(src, self.key_column, self.columns, dtype=dtype)

    def gather(
        self, requests: Sequence[np.ndarray], *, dtype: Any = np.float64
    ) -> builtins.list[np.ndarray]:
        """Per request (table row numbers), its rows as a matrix (float64 unless ``dtype``
        says otherwise); one pass, skipping the row groups no request needs."""
        with self._source() as src:
            return ff.gather_rows(src, self.columns, requests, dtype=dtype)


@dataclass(frozen=True)
class FeatureRows:
    """The rows of asked keys, aligned with them: ``matrix[i]`` is the row of ``keys[i]``
    when ``found[i]``, else NaN."""

    keys: np.ndarray  # str, (m,), as asked
    matrix: np.ndarray  # float32, (m, d)
    found: np.ndarray  # bool, (m,)
    columns: list[str]

    @property
    def missing(self) -> list[str]:
        return [str(k) for k in self.keys[~self.found]]


def check_feature_name(name: Any, field: str = "name") -> str:
    """A feature table's name is a display name ("Shopping behavior sequence - 2024", as
    NCLUE's own document names one): tables are referred to by their id."""
    return check_display_name(
        name, field, most=MAX_NAME, code="invalid_feature_name", what="a feature table name"
    )


def _check_description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise Invalid(
            f"a description is text of at most {MAX_DESCRIPTION} characters",
            code="invalid_description",
            field="description",
        )
    return value


def _check_column_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or "\x00" in value:
        raise Invalid(
            "a column or field name is 1-255 characters", code="invalid_column", field=field
        )
    return value


def public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "app_id": row.app_id,
        "key_column": row.key_column,
        "columns": row.columns,
        "column_count": len(row.columns),
        "source": row.source,
        "row_count": row.row_count,
        "created_at": row.created_at,
    }


def _not_found(feature_id: Any, field: str) -> NotFound:
    return NotFound(
        f"feature table {str(feature_id)[:100]!r} not found", code="feature_not_found", field=field
    )


def _dotted(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class FeatureService:
    def __init__(self, store: Store, blobs: BlobStore, buckets: BucketService) -> None:
        self.store = store
        self.blobs = blobs
        self.buckets = buckets

    def _area(self, scope: Scope) -> Blobs:
        # taskloom writes these itself: the users' upload limit does not bind them
        return self.blobs.area("features", scope.app_id, max_bytes=1 << 62)

    # -- reading the catalogue -----------------------------------------------------------

    def _row(self, scope: Scope, feature_id: Any, field: str = "feature_id") -> Any:
        if not isinstance(feature_id, str) or not _ID_RE.match(feature_id):
            raise _not_found(feature_id, field)
        with self.store.read() as conn:
            row = conn.execute(
                select(features).where(
                    features.c.app_id == scope.app_id, features.c.id == feature_id
                )
            ).first()
        if row is None:
            raise _not_found(feature_id, field)
        return row

    def get(self, scope: Scope, feature_id: str, field: str = "feature_id") -> dict[str, Any]:
        """The feature table's description (``NotFound`` for another app's)."""
        return public(self._row(scope, feature_id, field))

    def get_by_name(self, scope: Scope, name: str, field: str = "name") -> dict[str, Any]:
        with self.store.read() as conn:
            row = conn.execute(
                select(features).where(features.c.app_id == scope.app_id, features.c.name == name)
            ).first()
        if row is None:
            raise _not_found(name, field)
        return public(row)

    def list(self, scope: Scope) -> builtins.list[dict[str, Any]]:
        q = (
            select(features)
            .where(features.c.app_id == scope.app_id)
            .order_by(features.c.created_at, features.c.id)
        )
        with self.store.read() as conn:
            return [public(r) for r in conn.execute(q)]

    def delete(self, scope: Scope, feature_id: str) -> None:
        row = self._row(scope, feature_id)
        with self.store.write() as conn:
            conn.execute(delete(features).where(features.c.id == row.id))
        area = self._area(scope)
        if area.exists(row.artifact):
            area.delete(row.artifact)

    # -- the data ------------------------------------------------------------------------

    def load(self, scope: Scope, feature_id: str, field: str = "feature_id") -> FeatureData:
        """The whole table as numpy arrays: keys (str), matrix (float32, n x d), columns."""
        row = self._row(scope, feature_id, field)
        names = [c["name"] for c in row.columns]
        area = self._area(scope)
        if area.store.local:  # pyarrow memory-maps a local file: the fastest read there is
            keys, matrix = ff.read_artifact(area.full_path(row.artifact), row.key_column, names)
        else:
            with area.open(row.artifact) as f:
                keys, matrix = ff.read_artifact(f, row.key_column, names)
        return FeatureData(keys, matrix, names)

    def table(self, scope: Scope, feature_id: str, field: str = "feature_id") -> StoredTable:
        """The table for reading piece by piece (``NotFound`` for another app's)."""
        row = self._row(scope, feature_id, field)
        names = [c["name"] for c in row.columns]
        return StoredTable(
            row.id, names, row.key_column, int(row.row_count), self._area(scope), row.artifact
        )

    def lookup(
        self, scope: Scope, feature_id: str, keys: Sequence[Any] | np.ndarray
    ) -> FeatureRows:
        """The rows of ``keys`` (text or integers), in their order; NaN rows where a key is
        not in the table (``found`` says which)."""
        table = self.table(scope, feature_id)
        asked = np.asarray([str(k) for k in keys] if not isinstance(keys, np.ndarray) else keys)
        asked = asked.astype(str) if len(asked) else np.empty(0, dtype=str)
        matrix = np.full((len(asked), len(table.columns)), np.nan, np.float32)
        if len(asked) == 0:
            return FeatureRows(asked, matrix, np.zeros(0, bool), table.columns)
        # the key column (probed against the few asked keys: a small hash table), then only
        # the row groups that hold an asked key; never the whole table
        unique, inverse = np.unique(asked, return_inverse=True)
        where = pc.index_in(table.keys(), value_set=pa.array(unique, pa.string()))
        valid = where.is_valid()
        row_of = np.full(len(unique), -1, np.int64)
        row_of[where.filter(valid).to_numpy()] = np.flatnonzero(
            valid.to_numpy(zero_copy_only=False)
        )
        rows = row_of[inverse.reshape(-1)]
        found = rows >= 0
        if found.any():
            (matrix[found],) = table.gather([rows[found]], dtype=np.float32)
        return FeatureRows(asked, matrix, found, table.columns)

    # -- building ------------------------------------------------------------------------

    def create_from_file(
        self,
        scope: Scope,
        name: str,
        bucket: str,
        path: str,
        key_column: str,
        *,
        description: str | None = None,
        columns: Sequence[str] | None = None,
        format: str | None = None,
    ) -> dict[str, Any]:
        """A feature table from a CSV, TSV or Parquet file in a bucket (format from the
        extension unless ``format`` names it); every column but the key, or ``columns``."""
        check_feature_name(name)
        description = _check_description(description)
        _check_column_name(key_column, "key_column")
        if columns is not None:
            if not isinstance(columns, list | tuple) or not columns:
                raise Invalid("columns is a non-empty list", code="invalid", field="columns")
            for i, c in enumerate(columns):
                _check_column_name(c, f"columns[{i}]")
            if len(set(columns)) != len(columns):
                raise Invalid("a column is named twice", code="duplicate_column", field="columns")
        check_file_path(path, "path")
        fmt = ff.file_format(path, format)
        ff.require_pyarrow()
        self._check_name_free(scope, name)
        with self.buckets.open(scope, bucket, path) as f:
            table = ff.read_table(f, fmt, key_column)
        cols = ff.columns_of_table(table, key_column, columns)
        source = {
            "kind": "file",
            "bucket": bucket,
            "path": path,
            "format": fmt,
            "columns": list(columns) if columns is not None else None,
        }
        return self._save(scope, name, description, key_column, cols, source)

    def create_from_dataset(
        self,
        scope: Scope,
        name: str,
        dataset: str,
        key_field: str,
        fields: Sequence[str],
        *,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A feature table from a dataset's documents: ``fields`` (numbers, booleans,
        vectors) keyed by ``key_field`` (``_id`` or a text/integer field)."""
        check_feature_name(name)
        description = _check_description(description)
        _check_column_name(key_field, "key_field")
        if not isinstance(fields, list | tuple) or not fields or len(fields) > MAX_FIELDS:
            raise Invalid(
                f"fields is a list of 1-{MAX_FIELDS} field names", code="invalid", field="fields"
            )
        for i, f in enumerate(fields):
            _check_column_name(f, f"fields[{i}]")
        if len(set(fields)) != len(fields):
            raise Invalid("a field is named twice", code="duplicate_field", field="fields")
        if key_field in fields:
            raise Invalid("the key is not a feature", code="invalid_field", field="key_field")
        ff.require_pyarrow()
        self._check_name_free(scope, name)
        with self.store.read() as conn:
            ds = dataset_row(conn, scope, dataset)
            schema = ds.fields or {}
            kinds = []
            for i, f in enumerate(fields):
                t = (schema.get(f) or {}).get("type")
                if t not in ("number", "bool", "vector"):
                    raise Invalid(
                        f"{f!r} is not a number, boolean or vector field of dataset {dataset!r}"
                        + (f" (it is {t})" if t else ""),
                        code="invalid_feature_field",
                        field=f"fields[{i}]",
                    )
                kinds.append(t)
            if key_field != "_id" and (schema.get(key_field) or {}).get("type") not in (
                "text",
                "number",
            ):
                raise Invalid(
                    f"{key_field!r} is not a text or integer field of dataset {dataset!r}",
                    code="invalid_key_field",
                    field="key_field",
                )
            cols = self._read_dataset(conn, ds, key_field, list(fields), kinds)
        source = {
            "kind": "dataset",
            "dataset": dataset,
            "key_field": key_field,
            "fields": list(fields),
        }
        return self._save(scope, name, description, key_field, cols, source)

    def _read_dataset(
        self,
        conn: Any,
        ds: Any,
        key_field: str,
        fields: builtins.list[str],
        kinds: builtins.list[str],
    ) -> ff.Columns:
        scalar = [f for f, k in zip(fields, kinds, strict=True) if k != "vector"]
        pks: builtins.list[int] = []
        keys: builtins.list[str] = []
        values: builtins.list[builtins.list[float]] = [[] for _ in scalar]
        last = 0
        nan = float("nan")
        while True:  # documents a chunk at a time, in primary key order
            rows = conn.execute(
                select(documents.c.id, documents.c.doc_id, documents.c.data)
                .where(documents.c.dataset_id == ds.id, documents.c.id > last)
                .order_by(documents.c.id)
                .limit(_CHUNK)
            ).all()
            if not rows:
                break
            last = rows[-1][0]
            for pk, doc_id, data in rows:
                if key_field == "_id":
                    key = doc_id
                else:
                    key = _dotted(data, key_field)
                    if isinstance(key, bool) or not isinstance(key, str | int) or key == "":
                        raise Invalid(
                            f"document {doc_id!r} has no text or integer {key_field!r}",
                            code="missing_key",
                            field="key_field",
                        )
                pks.append(pk)
                keys.append(str(key))
                for j, f in enumerate(scalar):
                    v = _dotted(data, f)
                    values[j].append(float(v) if isinstance(v, int | float) else nan)
        n = len(pks)
        pk_arr = np.asarray(pks, np.int64)
        names: builtins.list[str] = []
        types: builtins.list[str] = []
        blocks: builtins.list[np.ndarray] = []
        s = 0
        for f, kind in zip(fields, kinds, strict=True):
            if kind == "vector":
                fv = load_field(conn, ds.id, f)
                dim = fv.matrix.shape[1] if fv.matrix.size else int(ds.fields[f].get("dim", 0))
                block = np.full((n, dim), np.nan, np.float32)
                if len(fv.pks) and n:
                    pos = np.searchsorted(pk_arr, fv.pks)
                    ok = (pos < n) & (pk_arr[np.minimum(pos, n - 1)] == fv.pks)
                    block[pos[ok]] = fv.matrix[ok]
                blocks.append(block)
                names += [f"{f}_{i}" for i in range(dim)]
                types += ["float"] * dim
            else:
                blocks.append(np.asarray(values[s], np.float32).reshape(n, 1))
                s += 1
                names.append(f)
                types.append("bool" if kind == "bool" else "float")
        if len(set(names)) != len(names) or ("_id" if key_field == "_id" else key_field) in names:
            raise Invalid(
                "two feature columns would have the same name",
                code="duplicate_column",
                field="fields",
            )
        matrix = np.hstack(blocks) if blocks else np.empty((n, 0), np.float32)
        return ff.Columns(np.asarray(keys, dtype=str), matrix, names, types)

    def _check_name_free(self, scope: Scope, name: str) -> None:
        with self.store.read() as conn:
            taken = conn.execute(
                select(features.c.id).where(
                    features.c.app_id == scope.app_id, features.c.name == name
                )
            ).first()
        if taken:
            raise Conflict(f"feature table {name!r} exists", code="feature_exists", field="name")

    def _save(
        self,
        scope: Scope,
        name: str,
        description: str,
        key_column: str,
        cols: ff.Columns,
        source: dict[str, Any],
    ) -> dict[str, Any]:
        cols = ff.sort_and_check(cols, "key_column" if source["kind"] == "file" else "key_field")
        if not cols.names:
            raise Invalid("a feature table has at least one column", code="no_feature_columns")
        feature_id = str(uuid.uuid4())
        artifact = f"{feature_id}.parquet"
        area = self._area(scope)
        with ff.parquet_file(cols, key_column) as tmp:
            area.put(artifact, Path(tmp), "application/vnd.apache.parquet")
        row = {
            "id": feature_id,
            "app_id": scope.app_id,
            "name": name,
            "description": description,
            "key_column": key_column,
            "columns": [
                {"name": n, "type": t} for n, t in zip(cols.names, cols.types, strict=True)
            ],
            "source": source,
            "row_count": len(cols.keys),
            "artifact": artifact,
        }
        try:
            with self.store.write() as conn:
                conn.execute(insert(features).values(**row, created_at=utcnow()))
        except IntegrityError as exc:  # a concurrent create of the same name
            area.delete(artifact)
            raise Conflict(
                f"feature table {name!r} exists", code="feature_exists", field="name"
            ) from exc
        return self.get(scope, feature_id)
