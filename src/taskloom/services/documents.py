"""Documents: bulk writes (one transaction per batch), reads, filters, paging.

A document is a JSON object with a unique ``_id`` in its dataset. Top-level fields whose
name ends in ``_vector_`` are vectors: validated by ``batches`` (numbers only, finite, one
dimension per field and dataset), stored as float32 in the ``vectors`` table and kept out
of the document's JSON. Over JSON a vector is a list of numbers or
``{"$f32": "<base64 of little-endian float32>"}``; the SDK sends binary batches
(``taskloom.wire``).

A document nests objects and arrays at most ``wire.MAX_DEPTH`` (64) levels, the document
itself being the first; a deeper one refuses the batch with 400 ``too_deep`` and the path of
the first field beyond the limit (``documents[3].a.b...``), whatever ``skip_invalid`` says:
like JSON that does not parse, it is not a document to list among the failed.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import UTC
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, bindparam, delete, func, select, update

from taskloom import wire
from taskloom.errors import Invalid, MalformedJSON, NotFound
from taskloom.scope import Scope
from taskloom.services.batches import (
    Failure,
    Prepared,
    check_dims,
    merge_fields,
    prepare,
    raise_failures,
    written_fields,
)
from taskloom.store.engine import Store
from taskloom.store.filters import FilterCompiler
from taskloom.store.lookups import lookup
from taskloom.store.paging import CursorFormat, check_limit, page
from taskloom.store.tables import datasets, documents, vectors
from taskloom.store.types import utcnow
from taskloom.vectors.changes import ChangeJournal

_CHUNK = 900  # ids per IN (...) list
DOCUMENT_CURSOR = CursorFormat("d", int)  # resumes after a document's primary key


class DocumentService:
    def __init__(self, store: Store, *, max_batch: int = 10_000) -> None:
        self.store = store
        self.max_batch = max_batch
        # the documents each committed write touched, for the search indexes to follow
        self.journal = ChangeJournal()
        self.filters = FilterCompiler(documents, store.dialect)
        pg = store.dialect == "postgresql"
        self._ph = "%s" if pg else "?"
        self._json_ph = "%s::jsonb" if pg else "?"

    def _check_batch(self, docs: Any) -> None:
        if isinstance(docs, list) and len(docs) > self.max_batch:
            raise Invalid(
                f"at most {self.max_batch} documents per request; the SDK batches for you",
                code="batch_too_large",
                field="documents",
            )
        if isinstance(docs, list):
            _check_nesting(docs)  # an update's dotted keys are expanded first

    # -- writes --------------------------------------------------------------------------

    def insert(
        self,
        scope: Scope,
        dataset: str,
        docs: Any,
        *,
        overwrite: bool = True,
        skip_invalid: bool = False,
        blob: Any = None,
    ) -> dict[str, Any]:
        """Insert (or replace, with ``overwrite``) a batch in one transaction. ``blob`` is
        the float block of a binary batch (``taskloom.wire``)."""
        self._check_batch(docs)
        good, failures, types = prepare(docs, blob=blob)
        if failures and not skip_invalid:
            raise_failures(failures, len(docs))
        early = len(failures)  # prepare's types already leave these out
        now = utcnow()
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            self.journal.writing(ds.id, ds.data_version)
            good, new_dims = check_dims(good, ds.fields, failures)
            if failures and not skip_invalid:
                raise_failures(failures, len(docs))
            touched: dict[int, dict[str, Any]] = {}  # written whole: key -> vectors
            written = self._write_documents(conn, ds.id, good, now, overwrite, failures, touched)
            if failures and not skip_invalid:
                raise_failures(failures, len(docs))  # rolls the transaction back
            if len(failures) > early:
                types, new_dims = written_fields(good, failures, new_dims)
            self._update_fields(conn, ds, types, new_dims, now)
        self.journal.note(ds.id, ds.data_version, touched, whole=touched)
        failures.sort(key=lambda f: f.index)
        return {"inserted": written, "failed": [f.to_dict() for f in failures]}

    def _write_documents(
        self,
        conn: Connection,
        dataset_id: int,
        good: list[Prepared],
        now: Any,
        overwrite: bool,
        failures: list[Failure],
        touched: dict[int, dict[str, Any]] | None = None,
    ) -> int:
        """Write documents and their vectors. The hot path of bulk insert: it goes to the
        driver's ``executemany`` with pre-serialised JSON, ids allocated up front."""
        if not good:
            return 0
        existing: dict[str, int] = {}
        for chunk in _chunks([p.id for p in good]):
            for r in conn.execute(
                select(documents.c.id, documents.c.doc_id).where(
                    documents.c.dataset_id == dataset_id, documents.c.doc_id.in_(chunk)
                )
            ):
                existing[r.doc_id] = r.id
        if existing and not overwrite:
            for p in good:
                if p.id in existing:
                    failures.append(
                        Failure(p.index, p.id, "_id", "already_exists", "this _id exists")
                    )
            good = [p for p in good if p.id not in existing]
        fresh = [p for p in good if p.id not in existing]
        replaced = [p for p in good if p.id in existing]
        ids = self._allocate_ids(conn, len(fresh))
        pk_by_doc = dict(existing)
        pk_by_doc.update(zip((p.id for p in fresh), ids, strict=True))
        ts = self._ts(now)
        dumps = orjson.dumps
        ph = self._ph
        if fresh:
            conn.exec_driver_sql(
                "INSERT INTO documents (id, dataset_id, doc_id, data, created_at, updated_at) "
                f"VALUES ({ph}, {ph}, {ph}, {self._json_ph}, {ph}, {ph})",
                [
                    (pk, dataset_id, p.id, dumps(p.data).decode(), ts, ts)
                    for p, pk in zip(fresh, ids, strict=True)
                ],
            )
        if replaced:
            conn.exec_driver_sql(
                f"UPDATE documents SET data = {self._json_ph}, updated_at = {ph} WHERE id = {ph}",
                [(dumps(p.data).decode(), ts, existing[p.id]) for p in replaced],
            )
            for chunk in _chunks([existing[p.id] for p in replaced]):
                conn.execute(delete(vectors).where(vectors.c.document_id.in_(chunk)))
        vec_rows = [
            (pk_by_doc[p.id], name, dataset_id, vec.size, vec.astype("<f4", copy=False).tobytes())
            for p in good
            for name, vec in p.vectors.items()
        ]
        if vec_rows:
            conn.exec_driver_sql(
                "INSERT INTO vectors (document_id, field, dataset_id, dim, data) "
                f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
                vec_rows,
            )
        if touched is not None:
            touched.update((pk_by_doc[p.id], p.vectors) for p in good)
        return len(good)

    def _allocate_ids(self, conn: Connection, n: int) -> list[int]:
        if n == 0:
            return []
        if self.store.dialect == "postgresql":
            rows = conn.exec_driver_sql(
                "SELECT nextval(pg_get_serial_sequence('documents', 'id')) "
                "FROM generate_series(1, %s)",
                (n,),
            ).all()
            return [r[0] for r in rows]
        # SQLite: the write transaction (BEGIN IMMEDIATE) holds the database's write lock
        top = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM documents").scalar() or 0
        return list(range(top + 1, top + n + 1))

    def _ts(self, now: Any) -> Any:
        if self.store.dialect == "sqlite":
            # the storage format of SQLAlchemy's SQLite DateTime, naive UTC (see UTCDateTime)
            return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return now

    def _update_fields(
        self, conn: Connection, ds: Any, types: dict, new_dims: dict, now: Any
    ) -> None:
        merged = merge_fields(ds.fields, types, new_dims)
        if merged != ds.fields:
            conn.execute(
                update(datasets).where(datasets.c.id == ds.id).values(fields=merged, updated_at=now)
            )

    def update(
        self,
        scope: Scope,
        dataset: str,
        docs: Any,
        *,
        skip_invalid: bool = False,
        blob: Any = None,
    ) -> dict[str, Any]:
        """Partial update: each document's fields are merged into the stored one.

        Dotted keys (``"meta.source"``) set nested fields; a vector field set to null is
        removed.
        """
        if isinstance(docs, list):
            docs = [_expand_dotted(d) if isinstance(d, dict) else d for d in docs]
        self._check_batch(docs)
        good, failures, types = prepare(docs, require_id=True, blob=blob)
        if failures and not skip_invalid:
            raise_failures(failures, len(docs))
        now = utcnow()
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            self.journal.writing(ds.id, ds.data_version)
            good, new_dims = check_dims(good, ds.fields, failures)
            stored: dict[str, Any] = {}
            for chunk in _chunks([p.id for p in good]):
                for r in conn.execute(
                    select(documents.c.id, documents.c.doc_id, documents.c.data).where(
                        documents.c.dataset_id == ds.id, documents.c.doc_id.in_(chunk)
                    )
                ):
                    stored[r.doc_id] = r
            found = []
            for p in good:
                if p.id in stored:
                    found.append(p)
                else:
                    failures.append(
                        Failure(p.index, p.id, "_id", "not_found", "no document with this _id")
                    )
            if failures and not skip_invalid:
                raise_failures(failures, len(docs))
            if found:
                conn.execute(
                    update(documents)
                    .where(documents.c.id == bindparam("pk"))
                    .values(data=bindparam("new_data"), updated_at=now),
                    [
                        {"pk": stored[p.id].id, "new_data": _deep_merge(stored[p.id].data, p.data)}
                        for p in found
                    ],
                )
                removals = [(stored[p.id].id, name) for p in found for name in p.vectors]
                for pk, name in removals:
                    conn.execute(
                        delete(vectors).where(vectors.c.document_id == pk, vectors.c.field == name)
                    )
                vec_rows = [
                    {
                        "document_id": stored[p.id].id,
                        "field": name,
                        "dataset_id": ds.id,
                        "dim": vec.size,
                        "data": vec.astype("<f4", copy=False).tobytes(),
                    }
                    for p in found
                    for name, vec in p.vectors.items()
                    if vec is not None
                ]
                if vec_rows:
                    conn.execute(vectors.insert(), vec_rows)
            types, new_dims = written_fields(found, failures, new_dims)
            self._update_fields(conn, ds, types, new_dims, now)
        patched = {stored[p.id].id: p.vectors for p in found}
        self.journal.note(ds.id, ds.data_version, patched, patch=patched)
        failures.sort(key=lambda f: f.index)
        return {"updated": len(found), "failed": [f.to_dict() for f in failures]}

    def delete(
        self, scope: Scope, dataset: str, ids: Any = None, *, filter: Any = None
    ) -> dict[str, int]:
        if ids is None and filter is None:
            raise Invalid("give ids or a filter", code="missing_ids", field="ids")
        if ids is not None and (
            not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids)
        ):
            raise Invalid("ids is a list of document ids", code="invalid_ids", field="ids")
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            self.journal.writing(ds.id, ds.data_version)
            gone: builtins.list[int] = []
            if ids is not None:
                for chunk in _chunks([str(i) for i in ids]):
                    rows = conn.execute(
                        delete(documents)
                        .where(documents.c.dataset_id == ds.id, documents.c.doc_id.in_(chunk))
                        .returning(documents.c.id)
                    )
                    gone.extend(r[0] for r in rows)
            else:
                cond = self.filters.compile(filter)
                rows = conn.execute(
                    delete(documents)
                    .where(documents.c.dataset_id == ds.id, cond)
                    .returning(documents.c.id)
                )
                gone.extend(r[0] for r in rows)
        self.journal.deleted(ds.id, ds.data_version, gone)
        return {"deleted": len(gone)}

    # -- reads ---------------------------------------------------------------------------

    def get(
        self, scope: Scope, dataset: str, doc_id: str, *, include_vector: bool = True
    ) -> dict[str, Any]:
        docs = self.bulk_get(scope, dataset, [doc_id], include_vector=include_vector)
        if not docs:
            raise NotFound(f"document {doc_id!r} not found", code="document_not_found", field="_id")
        return docs[0]

    def bulk_get(
        self,
        scope: Scope,
        dataset: str,
        ids: Any,
        *,
        include_vector: bool = True,
        select_fields: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            raise Invalid("ids is a list of document ids", code="invalid_ids", field="ids")
        if len(ids) > self.max_batch:
            raise Invalid(f"at most {self.max_batch} ids", code="batch_too_large", field="ids")
        ids = [str(i) for i in ids]
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            rows: builtins.list[Any] = []
            for chunk in _chunks(ids):
                rows.extend(
                    conn.execute(
                        select(documents.c.id, documents.c.doc_id, documents.c.data).where(
                            documents.c.dataset_id == ds.id, documents.c.doc_id.in_(chunk)
                        )
                    ).all()
                )
            out = self._render(conn, rows, include_vector, select_fields)
        order = {d: i for i, d in enumerate(ids)}
        out.sort(key=lambda d: order[d["_id"]])
        return out

    def count(self, scope: Scope, dataset: str, filter: Any = None) -> int:
        cond = self.filters.compile(filter)
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            return conn.execute(
                select(func.count())
                .select_from(documents)
                .where(documents.c.dataset_id == ds.id, cond)
            ).scalar_one()

    def list(
        self,
        scope: Scope,
        dataset: str,
        *,
        filter: Any = None,
        page_size: int = 100,
        cursor: str | None = None,
        include_vector: bool = True,
        select_fields: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        """One page in insertion order; ``cursor`` continues after the previous page."""
        check_limit(page_size, most=self.max_batch, field="page_size", code="invalid_page_size")
        (after,) = DOCUMENT_CURSOR.decode(cursor) or (0,)
        cond = self.filters.compile(filter)
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            rows = conn.execute(
                select(documents.c.id, documents.c.doc_id, documents.c.data)
                .where(documents.c.dataset_id == ds.id, documents.c.id > after, cond)
                .order_by(documents.c.id)
                .limit(page_size + 1)
            ).all()
            rows, next_cursor = page(rows, page_size, DOCUMENT_CURSOR, lambda r: (r.id,))
            out = self._render(conn, rows, include_vector, select_fields)
        return {"documents": out, "cursor": next_cursor}

    def _render(
        self,
        conn: Connection,
        rows: Iterable[Any],
        include_vector: bool,
        select_fields: builtins.list[str] | None,
    ) -> builtins.list[dict[str, Any]]:
        rows = list(rows)
        vecs: dict[int, dict[str, np.ndarray]] = {}
        if include_vector and rows:
            for chunk in _chunks([r.id for r in rows]):
                for v in conn.execute(
                    select(vectors.c.document_id, vectors.c.field, vectors.c.data).where(
                        vectors.c.document_id.in_(chunk)
                    )
                ):
                    vecs.setdefault(v.document_id, {})[v.field] = np.frombuffer(v.data, "<f4")
        out = []
        for r in rows:
            doc = {"_id": r.doc_id, **r.data}
            if include_vector:
                doc.update(vecs.get(r.id, {}))
            if select_fields is not None:
                doc = _project(doc, select_fields)
            out.append(doc)
        return out


# -- helpers ----------------------------------------------------------------------------------


def _check_nesting(docs: builtins.list[Any]) -> None:
    """Refuse a batch with a document nested deeper than ``wire.MAX_DEPTH`` levels (before
    anything recurses into it, or orjson refuses to store it). Vector fields are left to
    the vector checks: a number list is not walked."""
    limit = wire.MAX_DEPTH - 1  # below the document's own level
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            continue
        for key, value in doc.items():
            if not isinstance(value, dict | list) or (
                isinstance(key, str) and key.endswith(wire.VECTOR_SUFFIX)
            ):
                continue
            path = wire.too_deep(value, limit)
            if path is not None:
                where = wire.field_path([key, *path], f"documents[{i}]")
                raise MalformedJSON(
                    f"{where}: a document nests at most {wire.MAX_DEPTH} levels of objects and "
                    "arrays",
                    code="too_deep",
                    field=where,
                    details={"max_depth": wire.MAX_DEPTH},
                )


def _chunks(items: builtins.list[Any], size: int = _CHUNK) -> Iterable[builtins.list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _expand_dotted(doc: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}`` for partial updates."""
    if not any(isinstance(k, str) and "." in k for k in doc):
        return doc
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(k, str) and "." in k and k != "_id":
            parts = k.split(".")
            node = out
            for p in parts[:-1]:
                nxt = node.get(p)
                if not isinstance(nxt, dict):
                    nxt = node[p] = {}
                node = nxt
            node[parts[-1]] = v
        else:
            out[k] = v
    return out


def _project(doc: dict[str, Any], fields: builtins.list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": doc["_id"]}
    for f in fields:
        node: Any = doc
        parts = f.split(".")
        for p in parts:
            if not isinstance(node, dict) or p not in node:
                break
            node = node[p]
        else:
            tgt = out
            for p in parts[:-1]:
                tgt = tgt.setdefault(p, {})
            tgt[parts[-1]] = node
    return out
