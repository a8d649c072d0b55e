"""Vector search: the documents nearest to a query vector (or text) in a vector field.

A search names one vector field and a query (``vector``, or ``text`` that the field's
encoder turns into a vector), or several weighted ``queries`` on one or more fields whose
scores are summed per document. Scores follow ``vectors.metrics`` ("higher is better":
cosine similarity, dot product, minus the l2 or l1 distance).

* **Exact by default.** A flat faiss index answers exactly; ``index="hnsw"`` asks for an
  approximate HNSW index, and ``index="auto"`` (the default) picks HNSW only for fields of
  at least ``Settings.search_hnsw_threshold`` vectors. Several queries are always exact.
* **Filters** (the core filter language) select candidate documents in SQL first; the index
  then searches only those. A filter, or a field holding fewer vectors, may leave fewer
  documents than ``top_k``: the answer then has what there is, never an error.
* **Paging**: ``page`` (from 1) of ``top_k`` results; ``next_page`` is null on the last.
* ``min_score`` drops results scoring below it (before paging).
* An unknown field, a field that is not a vector field or holds no vector, a query of the
  wrong dimension, an unknown metric and an empty dataset are errors: each a 4xx with a
  code and the field at fault.
* **Query vectors** (given or encoded from text) pass ``batches.query_vector``: a value
  that is not finite as float32 is refused as in a stored vector (``vector_not_finite``);
  under cosine the query is made unit length in float64, so ``[2**64, 0]`` ranks as
  ``[1, 0]``; under ``dp``, ``l2`` and ``l1``, a query whose float32 scores against the
  field's largest vector would overflow is refused with the same code ("magnitude is too
  large") rather than answered with inf or lost scores.

Indexes live in an in-process cache (``vectors.cache``) that follows every write: a search
sees every document committed before it began. A dataset's ``data_version`` (bumped with
every write to its documents) tells in one row whether its cached indexes are current.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson
from sqlalchemy import Connection, func, select

from taskloom.config import Settings
from taskloom.errors import Invalid
from taskloom.scope import Scope
from taskloom.services.batches import _Bad, check_magnitude, query_vector
from taskloom.services.documents import DocumentService
from taskloom.services.encoders import EncoderService
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.tables import documents
from taskloom.vectors import metrics
from taskloom.vectors.cache import IndexCache
from taskloom.vectors.faiss_index import HNSWParams, VectorIndex, threads

INDEXES = ("auto", "flat", "hnsw")
MAX_TOP_K = 10_000
MAX_DEPTH = 100_000  # top_k * page
MAX_QUERIES = 16
MAX_EF_SEARCH = 32_768
_CHUNK = 900


@dataclass
class _Query:
    field: str
    vector: np.ndarray | None
    text: str | None
    weight: float
    where: str  # the request field the query came from, for errors
    field_where: str

    @property
    def vec(self) -> np.ndarray:
        """The query vector (text queries are encoded before ranking)."""
        assert self.vector is not None
        return self.vector


def _bad(message: str, code: str, field: str, **details: Any) -> Invalid:
    return Invalid(message, code=code, field=field, details=details or None)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class SearchService:
    def __init__(
        self,
        store: Store,
        documents: DocumentService,
        settings: Settings,
        encoders: EncoderService | None = None,
    ) -> None:
        """``encoders``: turn text queries into vectors (without them, queries are vectors)."""
        self.store = store
        self.documents = documents
        self.encoders = encoders
        self._datasets: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.threads = settings.search_threads
        self.filters = documents.filters
        self.cache = IndexCache(
            store,
            max_bytes=settings.search_cache_bytes,
            hnsw=HNSWParams(
                m=settings.search_hnsw_m,
                ef_construction=settings.search_hnsw_ef_construction,
                ef_search=settings.search_hnsw_ef_search,
            ),
            hnsw_threshold=settings.search_hnsw_threshold,
            journal=documents.journal,
        )

    def search(
        self,
        scope: Scope,
        dataset: str,
        *,
        vector: Any = None,
        text: Any = None,
        vector_field: Any = None,
        queries: Any = None,
        metric: Any = "cosine",
        top_k: Any = 10,
        page: Any = 1,
        filter: Any = None,
        select: Any = None,
        include_vector: Any = False,
        min_score: Any = None,
        index: Any = "auto",
        ef_search: Any = None,
    ) -> dict[str, Any]:
        """``{"data": [{"_id", "_score", ...fields}], "count", "candidates", "next_page",
        "metric", "index", "exact"}``; see the module docstring."""
        metrics.check_metric(metric)
        self._check_options(top_k, page, min_score, index, ef_search, select, include_vector)
        qs = self._queries(vector, text, vector_field, queries, metric)
        if len(qs) > 1 and index == "hnsw":
            raise _bad(
                "several queries are scored exactly; use index 'auto' or 'flat'",
                "hnsw_single_query",
                "index",
            )
        with self.store.read() as conn:
            token = self.cache.token(conn)  # first, before anything is read
            ds = self._dataset(conn, token, scope, dataset)
            dims = self._check_fields(ds, qs)
            for q in qs:
                if q.text is not None:
                    q.vector = self._encode(conn, scope, ds, q, metric)
                self._check_dim(q, dims[q.field])
            allowed = self._candidates(conn, ds.id, filter)
            # the dataset's own version, not the database-wide token: writes elsewhere (job
            # heartbeats, other datasets) leave this dataset's indexes current
            version = ds.data_version
            ranked = self._rank(
                conn, version, ds, qs, metric, top_k, page, allowed, index, ef_search
            )
            pks, scores, candidates, kind, exact = ranked
            depth = top_k * page
            if min_score is not None:
                keep = scores >= min_score
                pks, scores = pks[keep], scores[keep]
            next_page = page + 1 if pks.size > depth else None
            start = (page - 1) * top_k
            pks, scores = pks[start:depth], scores[start:depth]
            data = self._render(conn, pks, scores, include_vector, select)
        return {
            "data": data,
            "count": len(data),
            "candidates": candidates,
            "next_page": next_page,
            "metric": metric,
            "index": kind,
            "exact": exact,
        }

    # -- indexes --------------------------------------------------------------------------

    def build_index(
        self,
        scope: Scope,
        dataset: str,
        *,
        vector_field: Any,
        metric: Any = "cosine",
        index: Any = "hnsw",
        wait: Any = False,
    ) -> dict[str, Any]:
        """Build an index of a vector field in the background (a no-op when it is built or
        being built); searches use it once ready. Returns its entry of ``indexes``."""
        metrics.check_metric(metric)
        if index not in ("flat", "hnsw"):
            raise _bad("index is 'flat' or 'hnsw'", "unknown_index", "index")
        if not isinstance(wait, bool):
            raise _bad("wait is true or false", "invalid", "wait")
        if not isinstance(vector_field, str) or not vector_field:
            raise _bad("vector_field names a vector field", "invalid", "vector_field")
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            q = _Query(vector_field, np.empty(0, np.float32), None, 1.0, "", "vector_field")
            dim = self._check_fields(ds, [q])[vector_field]
        self.cache.build(ds.id, vector_field, metric, index, dim, wait=wait)
        return self._index_entry(ds.id, vector_field, metric, index)

    def indexes(self, scope: Scope, dataset: str) -> builtins.list[dict[str, Any]]:
        """The dataset's indexes in this process: ready, building, or failed."""
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
        return self.cache.status(ds.id)

    def _index_entry(self, dataset_id: int, field: str, metric: str, kind: str) -> dict[str, Any]:
        for entry in self.cache.status(dataset_id):
            if (entry["vector_field"], entry["metric"], entry["index"]) == (field, metric, kind):
                return entry
        # built and already evicted, or never kept: say so rather than invent a state
        return {"vector_field": field, "metric": metric, "index": kind, "status": "evicted"}

    def _dataset(self, conn: Connection, token: Any, scope: Scope, name: str) -> Any:
        """The dataset's row; looked up again only when something was committed since."""
        key = (scope.app_id, name)
        memo = self._datasets.get(key)
        if token is not None and memo is not None and memo[0] == token:
            return memo[1]
        row = lookup(conn, scope, name)
        if len(self._datasets) >= 1024:
            self._datasets.clear()
        self._datasets[key] = (token, row)
        return row

    # -- input --------------------------------------------------------------------------

    @staticmethod
    def _check_options(
        top_k: Any,
        page: Any,
        min_score: Any,
        index: Any,
        ef_search: Any,
        select: Any,
        include_vector: Any,
    ) -> None:
        if not _is_int(top_k) or not 1 <= top_k <= MAX_TOP_K:
            raise _bad(f"top_k is a whole number from 1 to {MAX_TOP_K}", "invalid_top_k", "top_k")
        if not _is_int(page) or page < 1:
            raise _bad("page is a whole number from 1", "invalid_page", "page")
        if top_k * page > MAX_DEPTH:
            raise _bad(
                f"top_k * page is at most {MAX_DEPTH}; narrow the search with a filter",
                "page_too_deep",
                "page",
            )
        if min_score is not None and not _is_number(min_score):
            raise _bad("min_score is a finite number", "invalid_min_score", "min_score")
        if index not in INDEXES:
            raise _bad(
                f"unknown index {index!r}; use one of {', '.join(INDEXES)}",
                "unknown_index",
                "index",
            )
        if ef_search is not None and (
            not _is_int(ef_search) or not 1 <= ef_search <= MAX_EF_SEARCH
        ):
            raise _bad(
                f"ef_search is a whole number from 1 to {MAX_EF_SEARCH}",
                "invalid_ef_search",
                "ef_search",
            )
        if select is not None and (
            not isinstance(select, list) or not all(isinstance(s, str) and s for s in select)
        ):
            raise _bad("select is a list of field paths", "invalid_select", "select")
        if not isinstance(include_vector, bool):
            raise _bad("include_vector is true or false", "invalid", "include_vector")

    def _queries(
        self, vector: Any, text: Any, vector_field: Any, queries: Any, metric: str
    ) -> list[_Query]:
        if queries is not None:
            if vector is not None or text is not None or vector_field is not None:
                raise _bad(
                    "give either queries or vector/text with vector_field, not both",
                    "conflicting_query",
                    "queries",
                )
            if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
                raise _bad(
                    f"queries is a list of 1 to {MAX_QUERIES} queries", "invalid_queries", "queries"
                )
            out = []
            for i, raw in enumerate(queries):
                where = f"queries[{i}]"
                if not isinstance(raw, dict):
                    raise _bad("a query is an object", "invalid_queries", where)
                unknown = set(raw) - {"vector", "text", "field", "vector_field", "weight"}
                if unknown:
                    name = sorted(unknown)[0]
                    raise _bad(f"unknown query field {name!r}", "invalid", f"{where}.{name}")
                fname = "field" if "field" in raw else "vector_field"
                weight = raw.get("weight", 1.0)
                if not _is_number(weight):
                    raise _bad("weight is a finite number", "invalid_weight", f"{where}.weight")
                out.append(
                    self._query(
                        raw.get("vector"),
                        raw.get("text"),
                        raw.get(fname),
                        float(weight),
                        f"{where}.",
                        f"{where}.{fname}",
                        metric,
                    )
                )
            return out
        return [self._query(vector, text, vector_field, 1.0, "", "vector_field", metric)]

    @staticmethod
    def _query(
        vector: Any,
        text: Any,
        field: Any,
        weight: float,
        prefix: str,
        field_where: str,
        metric: str,
    ) -> _Query:
        if field is None:
            raise _bad("name the vector field to search", "missing_field", field_where)
        if not isinstance(field, str) or not field:
            raise _bad("a vector field is a field name", "invalid_field", field_where)
        if vector is None and text is None:
            raise _bad("give a query vector or text", "missing_query", f"{prefix}vector")
        if vector is not None and text is not None:
            raise _bad(
                "give a query vector or text, not both", "conflicting_query", prefix + "text"
            )
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise _bad("text is a non-empty string", "invalid_text", f"{prefix}text")
            return _Query(field, None, text, weight, f"{prefix}text", field_where)
        where = f"{prefix}vector"
        try:
            vec = query_vector(vector, where, metric)
        except _Bad as bad:
            raise _bad(bad.message, bad.code, where) from None
        return _Query(field, vec, None, weight, where, field_where)

    @staticmethod
    def _check_fields(ds: Any, qs: list[_Query]) -> dict[str, int]:
        fields = ds.fields or {}
        if not fields:
            raise _bad(f"dataset {ds.name!r} has no documents", "empty_dataset", "dataset")
        dims = {}
        for q in qs:
            spec = fields.get(q.field)
            if spec is None:
                have = sorted(k for k, v in fields.items() if v.get("type") == "vector")
                raise _bad(
                    f"dataset {ds.name!r} has no field {q.field!r}"
                    + (f"; its vector fields: {', '.join(have)}" if have else ""),
                    "unknown_field",
                    q.field_where,
                )
            if spec.get("type") != "vector":
                raise _bad(
                    f"{q.field!r} is not a vector field (it holds {spec.get('type')})",
                    "not_a_vector_field",
                    q.field_where,
                )
            dims[q.field] = int(spec["dim"])
        return dims

    @staticmethod
    def _check_dim(q: _Query, dim: int) -> None:
        assert q.vector is not None
        if q.vector.size != dim:
            raise _bad(
                f"{q.field} has {dim} dimensions; the query has {q.vector.size}",
                "wrong_dimension",
                q.where,
                expected=dim,
                got=int(q.vector.size),
            )

    def _encode(
        self, conn: Connection, scope: Scope, ds: Any, q: _Query, metric: str
    ) -> np.ndarray:
        """Text through the encoder that made the field, checked as a given vector is."""
        assert q.text is not None
        if self.encoders is None:
            raise _bad("text queries need the platform's encoders", "no_encoder", q.where)
        out = self.encoders.encode_query(scope, ds.name, q.field, q.text)
        with np.errstate(over="ignore"):
            vec = np.asarray(out, dtype=np.float32).reshape(-1)
        try:
            return query_vector(vec, q.where, metric)
        except _Bad as bad:
            raise _bad(bad.message, bad.code, q.where) from None

    @staticmethod
    def _check_magnitude(q: _Query, metric: str, idx: VectorIndex) -> None:
        """Refuse a query whose float32 scores against the index's vectors would overflow."""
        try:
            check_magnitude(q.vec, q.where, metric, idx.max_norm)
        except _Bad as bad:
            raise _bad(bad.message, bad.code, q.where) from None

    def _candidates(self, conn: Connection, dataset_id: int, flt: Any) -> np.ndarray | None:
        """The primary keys (sorted) of the documents the filter keeps; None: no filter."""
        if flt is None or flt == {}:
            return None
        cond = self.filters.compile(flt)
        rows = conn.execute(
            select(documents.c.id).where(documents.c.dataset_id == dataset_id, cond)
        ).all()
        return np.sort(np.fromiter((r[0] for r in rows), np.int64, len(rows)))

    # -- ranking ------------------------------------------------------------------------

    def _rank(
        self,
        conn: Connection,
        token: Any,
        ds: Any,
        qs: list[_Query],
        metric: str,
        top_k: int,
        page: int,
        allowed: np.ndarray | None,
        index: str,
        ef_search: int | None,
    ) -> tuple[np.ndarray, np.ndarray, int, str, bool]:
        """(primary keys, scores) of the best ``top_k * page + 1`` documents, best first;
        how many documents were candidates; the index kind; whether exact."""
        want = top_k * page + 1
        if len(qs) == 1 and qs[0].weight > 0:
            q = qs[0]
            kind = self.cache.resolve_kind(conn, ds.id, q.field, index)
            idx = self.cache.get(conn, token, ds.id, q.field, metric, kind, q.vec.size)
            self._check_top_k(conn, ds, q.field_where, len(idx), top_k)
            self._check_magnitude(q, metric, idx)
            candidates = len(idx) if allowed is None else int(np.isin(allowed, idx.pks).sum())
            with threads(self.threads):
                pks, scores = idx.search(
                    q.vec, min(want, len(idx)), allowed=allowed, ef_search=ef_search
                )
            # idx.kind: "flat" while an HNSW index asked for is still being built
            return pks, scores.astype(np.float64) * q.weight, candidates, idx.kind, idx.exact
        # several queries (or a weight that reverses the order): exact, summed per document
        indexes = [
            self.cache.get(conn, token, ds.id, q.field, metric, "flat", q.vec.size) for q in qs
        ]
        having_all = indexes[0].pks  # documents with every queried field, before the filter
        for idx in indexes[1:]:
            having_all = np.intersect1d(having_all, idx.pks, assume_unique=True)
        self._check_top_k(conn, ds, qs[0].field_where, having_all.size, top_k)
        for q, idx in zip(qs, indexes, strict=True):
            self._check_magnitude(q, metric, idx)
        common = having_all if allowed is None else np.intersect1d(having_all, allowed)
        summed = np.zeros(common.size, dtype=np.float64)
        for q, idx in zip(qs, indexes, strict=True):
            with threads(self.threads):
                _, s = idx.score(q.vec, common)
            summed += s.astype(np.float64) * q.weight  # both in primary key order
        best = metrics.top_k(summed, want, ids=common)
        return common[best], summed[best], int(common.size), "flat", True

    @staticmethod
    def _check_top_k(conn: Connection, ds: Any, field_where: str, n: int, top_k: int) -> None:
        """Refuse a search with nothing to search; a ``top_k`` beyond the ``n`` vectors
        there are answers those ``n``, as a filter leaving fewer does."""
        if n == 0:
            docs = conn.execute(
                select(func.count()).select_from(documents).where(documents.c.dataset_id == ds.id)
            ).scalar_one()
            if not docs:
                raise _bad(f"dataset {ds.name!r} has no documents", "empty_dataset", "dataset")
            raise _bad("no document has a vector in this field", "no_vectors", field_where)

    # -- output -------------------------------------------------------------------------

    def _render(
        self,
        conn: Connection,
        pks: np.ndarray,
        scores: np.ndarray,
        include_vector: bool,
        select_fields: builtins.list[str] | None,
    ) -> builtins.list[dict[str, Any]]:
        if not pks.size:
            return []
        ids = [int(p) for p in pks]
        rows = _documents_by_pk(conn, ids)
        # a document deleted since the index was read is left out
        present = [
            (rows[pk], float(s) + 0.0) for pk, s in zip(ids, scores, strict=True) if pk in rows
        ]
        docs = self.documents._render(conn, [r for r, _ in present], include_vector, select_fields)
        out = []
        for doc, (_, score) in zip(docs, present, strict=True):
            hit = {"_id": doc.pop("_id"), "_score": score}
            doc.pop("_score", None)
            hit.update(doc)
            out.append(hit)
        return out


class _Doc(NamedTuple):
    id: int
    doc_id: str
    data: dict[str, Any]


def _documents_by_pk(conn: Connection, ids: builtins.list[int]) -> dict[int, _Doc]:
    """The documents with these primary keys, read with the driver's own cursor in the
    transaction of ``conn``: the hot path of every search, where building a statement and
    wrapping its result would cost more than running it."""
    out: dict[int, _Doc] = {}
    pg = conn.dialect.name == "postgresql"
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            if pg:
                cur.execute("SELECT id, doc_id, data FROM documents WHERE id = ANY(%s)", (chunk,))
            else:
                marks = ",".join("?" * len(chunk))
                cur.execute(f"SELECT id, doc_id, data FROM documents WHERE id IN ({marks})", chunk)
            for pk, doc_id, data in cur.fetchall():
                if isinstance(data, str | bytes):
                    data = orjson.loads(data)
                out[pk] = _Doc(pk, doc_id, data)
    finally:
        cur.close()
    return out
