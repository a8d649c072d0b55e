"""Read a dataset's vectors of one field as one float32 matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, select

from taskloom.store.tables import documents, vectors

_CHUNK = 900


@dataclass
class FieldVectors:
    """The vectors of one field: row ``i`` belongs to document ``doc_ids[i]``
    (internal primary key ``pks[i]``)."""

    pks: np.ndarray  # int64, ascending
    doc_ids: list[str]
    matrix: np.ndarray  # float32, shape (n, dim)

    def __len__(self) -> int:
        return len(self.doc_ids)


def load_field(
    conn: Connection, dataset_id: int, field: str, *, pks: list[int] | None = None
) -> FieldVectors:
    """Every vector of ``field`` in the dataset (or of the documents ``pks``), in primary
    key order; documents without the field are left out."""
    # no ORDER BY: sorting a large field's blobs in SQL costs more than reading them;
    # the rows are put in primary-key order in numpy below
    q = (
        select(vectors.c.document_id, documents.c.doc_id, vectors.c.data)
        .join(documents, documents.c.id == vectors.c.document_id)
        .where(vectors.c.dataset_id == dataset_id, vectors.c.field == field)
    )
    rows: list[Any] = []
    if pks is None:
        rows = list(conn.execute(q))
    else:
        for i in range(0, len(pks), _CHUNK):
            rows.extend(conn.execute(q.where(vectors.c.document_id.in_(pks[i : i + _CHUNK]))))
    if not rows:
        return FieldVectors(np.empty(0, np.int64), [], np.empty((0, 0), np.float32))
    keys = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    order = np.argsort(keys, kind="stable")
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
    if not np.array_equal(order, np.arange(len(rows))):
        matrix = matrix[order]
        keys = keys[order]
        rows = [rows[i] for i in order]
    return FieldVectors(keys, [r[1] for r in rows], matrix)
