"""Centroids: the API over a dataset's clusterings (``services/clustering.py`` stores them).

``list`` / ``get`` the centroids, ``insert`` one's own centers as a clustering, ``info``,
``metadata`` (the caller's, read or replaced), ``sizes`` (documents per cluster now), and
the documents of a cluster by similarity to its centroid: ``documents`` (paged),
``closest`` and ``furthest``.

Scores (``_score``) compare a document's vector with its cluster's centroid under
``cosine``, ``dp``, ``l2`` or ``l1`` as vector search scores them
(``taskloom.vectors.metrics``: higher is closer, so l2 and l1 scores are minus the
distance). "Closest first" is descending score, equal scores in insertion order.
"""

from __future__ import annotations

import base64
import binascii
import builtins
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update

from taskloom.errors import Invalid, NotFound
from taskloom.scope import Scope
from taskloom.services.clustering import (
    MAX_CLUSTERS,
    Clustering,
    Clusterings,
    check_alias,
    cluster_name,
    field_dim,
)
from taskloom.services.documents import DocumentService
from taskloom.store.engine import Store
from taskloom.store.lookups import lookup
from taskloom.store.paging import CursorFormat, check_limit
from taskloom.store.tables import clusterings
from taskloom.store.types import utcnow
from taskloom.vectors.metrics import check_metric, scores
from taskloom.vectors.store import load_field

_MAX_ID = 255
# the clusters rank their documents per call, so the cursor is the offset of the next page
CENTROID_CURSOR = CursorFormat("c", int)


class CentroidService:
    def __init__(self, store: Store, documents: DocumentService) -> None:
        self.store = store
        self.docs = documents
        self.clusterings = Clusterings(store)
        self.pg = store.dialect == "postgresql"

    def list(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        page_size: int = 5,
        cursor: str | None = None,
        include_vector: bool = False,
    ) -> dict[str, Any]:
        """The centroids in order, one page at a time."""
        check_limit(page_size, most=10_000, field="page_size", code="invalid_page_size")
        start = CENTROID_CURSOR.offset(cursor)
        with self.store.read() as conn:
            _, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
        end = start + page_size
        data = [
            _centroid(found, i, include_vector) for i in range(start, min(end, found.n_clusters))
        ]
        return {
            "data": data,
            "count": found.n_clusters,
            "cursor": CENTROID_CURSOR.encode(end) if end < found.n_clusters else None,
        }

    def get(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        cluster_ids: Any,
        include_vector: bool = True,
    ) -> builtins.list[dict[str, Any]]:
        """The centroids ``cluster_ids``, in that order; an unknown id is a 404."""
        with self.store.read() as conn:
            _, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
        pos = _positions(found, cluster_ids)
        return [_centroid(found, i, include_vector) for i in pos]

    def insert(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        cluster_centers: Any,
    ) -> dict[str, Any]:
        """Make the caller's centers the clustering of (vector_field, alias), replacing what
        was there. ``cluster_centers`` is ``{cluster_id: vector}``, a list of centroid
        documents ``[{"_id": "cluster-0", "<vector_field>": [...]}, ...]`` (as the relevanceai
        client sends them; ``centroid_vector_`` or ``vector`` also name the vector), or a
        list of vectors (ids ``cluster-0``, ``cluster-1``...). An id that is a number ``n``
        becomes ``cluster-n``. Documents keep their labels: a ``cluster`` job with
        ``refresh=false`` labels those that have none with their nearest center."""
        check_alias(alias)
        with self.store.read() as conn:
            dim = field_dim(lookup(conn, scope, dataset), vector_field)
        ids, centers = _parse_centers(cluster_centers, vector_field, dim)
        return self.clusterings.save(
            scope,
            dataset,
            vector_field,
            alias,
            params={"source": "inserted", "n_clusters": len(ids)},
            info={"source": "inserted"},
            cluster_ids=ids,
            centers=centers,
        )

    def info(
        self, scope: Scope, dataset: str, vector_field: str, alias: str = "default"
    ) -> dict[str, Any]:
        """The clustering: its params, what the fit found (inertia, sizes) and metadata."""
        with self.store.read() as conn:
            _, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
        return found.public()

    def list_clusterings(self, scope: Scope, dataset: str) -> builtins.list[dict[str, Any]]:
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            rows = conn.execute(
                select(clusterings.c.vector_field, clusterings.c.alias)
                .where(clusterings.c.dataset_id == ds.id)
                .order_by(clusterings.c.vector_field, clusterings.c.alias)
            ).all()
            out = []
            for r in rows:
                found = self.clusterings.load(conn, ds, r.vector_field, r.alias)
                assert found is not None
                out.append(found.public())
        return out

    def delete(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        clear_labels: bool = False,
    ) -> dict[str, Any]:
        """Forget the clustering and its centroids. Documents keep their labels unless
        ``clear_labels``: then ``_cluster_.{vector_field}.{alias}`` is removed from every
        document of the dataset in the same transaction."""
        if not isinstance(clear_labels, bool):
            raise Invalid("clear_labels is true or false", field="clear_labels")
        cleared = 0
        with self.store.write() as conn:
            ds, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
            conn.execute(delete(clusterings).where(clusterings.c.id == found.id))
            if clear_labels:
                cleared = self.clusterings.clear_labels(conn, ds, vector_field, alias)
        out: dict[str, Any] = {"deleted": {"vector_field": vector_field, "alias": alias}}
        if clear_labels:
            out["labels_cleared"] = cleared
        return out

    def metadata(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The caller's metadata of the clustering; given ``metadata``, replace it first."""
        if metadata is not None and not isinstance(metadata, dict):
            raise Invalid("metadata is a JSON object", code="invalid_metadata", field="metadata")
        if metadata is None:
            with self.store.read() as conn:
                _, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
            return found.user_metadata or {}
        with self.store.write() as conn:
            _, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
            conn.execute(
                update(clusterings)
                .where(clusterings.c.id == found.id)
                .values(user_metadata=metadata, updated_at=utcnow())
            )
        return metadata

    def sizes(
        self, scope: Scope, dataset: str, vector_field: str, alias: str = "default"
    ) -> dict[str, int]:
        """How many documents carry each cluster id now (0 for an empty cluster)."""
        with self.store.read() as conn:
            ds, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
            counts = self.clusterings.live_sizes(conn, ds, found)
        return {name: counts[name] for name in found.cluster_ids}

    def documents(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        cluster_ids: Any,
        metric: str = "cosine",
        page: int = 1,
        page_size: int = 20,
        cursor: str | None = None,
        include_vector: bool = False,
        select_fields: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        """The documents of each cluster in ``cluster_ids``, most similar to the centroid first
        (``_score`` on each); one page of each cluster per call. ``cursor`` (from the previous
        answer) takes precedence over ``page``."""
        check_metric(metric)
        check_limit(page_size, most=1_000, field="page_size", code="invalid_page_size")
        if cursor in (None, ""):
            if isinstance(page, bool) or not isinstance(page, int) or page < 1:
                raise Invalid("page is 1 or more", code="invalid_page", field="page")
            start = (page - 1) * page_size
        else:
            start = CENTROID_CURSOR.offset(cursor)
        if not isinstance(cluster_ids, builtins.list) or not cluster_ids:
            raise Invalid(
                "cluster_ids is a non-empty list", code="invalid_cluster_ids", field="cluster_ids"
            )
        ranked = self._ranked(scope, dataset, vector_field, alias, cluster_ids, metric)
        end = start + page_size
        groups = [
            (name, total, ids[start:end], score[start:end]) for name, total, ids, score in ranked
        ]
        more = any(total > end for _, total, _, _ in ranked)
        return {
            "data": self._render(scope, dataset, groups, include_vector, select_fields),
            "metric": metric,
            "cursor": CENTROID_CURSOR.encode(end) if more else None,
        }

    def closest(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str = "default",
        *,
        cluster_ids: Any = None,
        k: int = 5,
        metric: str = "cosine",
        include_vector: bool = False,
        select_fields: builtins.list[str] | None = None,
        furthest: bool = False,
    ) -> dict[str, Any]:
        """The ``k`` documents of each cluster (all clusters when ``cluster_ids`` is None)
        closest to its centroid, or furthest from it with ``furthest``."""
        check_metric(metric)
        check_limit(k, most=1_000, field="k", code="invalid_k")
        if cluster_ids is not None and not isinstance(cluster_ids, builtins.list):
            raise Invalid("cluster_ids is a list", code="invalid_cluster_ids", field="cluster_ids")
        ranked = self._ranked(scope, dataset, vector_field, alias, cluster_ids, metric)
        groups = [
            (name, total, (pks[::-1] if furthest else pks)[:k], (sc[::-1] if furthest else sc)[:k])
            for name, total, pks, sc in ranked
        ]
        return {
            "data": self._render(scope, dataset, groups, include_vector, select_fields),
            "metric": metric,
        }

    def furthest(self, *args: Any, **kw: Any) -> dict[str, Any]:
        """``closest`` in reverse: the documents furthest from their centroid first."""
        return self.closest(*args, furthest=True, **kw)

    def _ranked(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str,
        cluster_ids: builtins.list[Any] | None,
        metric: str,
    ) -> builtins.list[tuple[str, int, builtins.list[str], np.ndarray]]:
        """Per cluster: (id, members with a vector, their doc ids and scores, best first)."""
        with self.store.read() as conn:
            ds, found = self.clusterings.open(conn, scope, dataset, vector_field, alias)
            pos = (
                list(range(found.n_clusters))
                if cluster_ids is None
                else _positions(found, cluster_ids)
            )
            names = [found.cluster_ids[i] for i in pos]
            expr = self.clusterings.label_sql("data", vector_field, alias)
            ph = "%s" if self.pg else "?"
            members: dict[str, builtins.list[int]] = {n: [] for n in names}
            wanted = sorted(set(names))
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                rows = conn.exec_driver_sql(
                    f"SELECT id, {expr} FROM documents WHERE dataset_id = {ph} "
                    f"AND {expr} IN ({', '.join([ph] * len(chunk))})",
                    (ds.id, *chunk),
                )
                for pk, label in rows:
                    members[label].append(pk)
            all_pks = sorted(pk for n in wanted for pk in members[n])
            fv = load_field(conn, ds.id, vector_field, pks=all_pks)
        row_of = {int(pk): i for i, pk in enumerate(fv.pks)}
        out: builtins.list[tuple[str, int, builtins.list[str], np.ndarray]] = []
        for p, name in zip(pos, names, strict=True):
            rows_ = [row_of[pk] for pk in sorted(members[name]) if pk in row_of]
            if not rows_:
                out.append((name, 0, [], np.empty(0)))
                continue
            score = scores(metric, found.centers[p], fv.matrix[rows_])
            order = rank(score)
            out.append((name, len(rows_), [fv.doc_ids[rows_[j]] for j in order], score[order]))
        return out

    def _render(
        self,
        scope: Scope,
        dataset: str,
        groups: builtins.list[tuple[str, int, builtins.list[str], np.ndarray]],
        include_vector: bool,
        select_fields: builtins.list[str] | None,
    ) -> builtins.list[dict[str, Any]]:
        wanted = [d for _, _, ids, _ in groups for d in ids]
        docs = {}
        for i in range(0, len(wanted), self.docs.max_batch):
            for doc in self.docs.bulk_get(
                scope,
                dataset,
                wanted[i : i + self.docs.max_batch],
                include_vector=include_vector,
                select_fields=select_fields,
            ):
                docs[doc["_id"]] = doc
        out = []
        for name, total, ids, group_scores in groups:
            page = []
            for doc_id, score in zip(ids, group_scores, strict=True):
                found = docs.get(doc_id)
                if found is not None:  # deleted meanwhile
                    page.append({**found, "_score": float(score)})
            out.append({"cluster_id": name, "count": total, "documents": page})
        return out


def rank(score: np.ndarray) -> np.ndarray:
    """Best score first; equal scores keep their order (insertion order)."""
    return np.argsort(-score, kind="stable")


# -- helpers ----------------------------------------------------------------------------------


def _centroid(found: Clustering, i: int, include_vector: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": found.cluster_ids[i], "size": found.sizes[i]}
    if include_vector:
        out[found.vector_field] = found.centers[i]
    return out


def _positions(found: Clustering, cluster_ids: Any) -> builtins.list[int]:
    if not isinstance(cluster_ids, builtins.list) or not all(
        isinstance(c, str) for c in cluster_ids
    ):
        raise Invalid(
            "cluster_ids is a list of cluster ids", code="invalid_cluster_ids", field="cluster_ids"
        )
    index = {name: i for i, name in enumerate(found.cluster_ids)}
    missing = [c for c in cluster_ids if c not in index]
    if missing:
        raise NotFound(
            f"no cluster {missing[0]!r} in this clustering",
            code="cluster_not_found",
            field="cluster_ids",
            details={"missing": missing},
        )
    return [index[c] for c in cluster_ids]


def _normalise_id(key: Any, where: str) -> str:
    if isinstance(key, bool):
        raise Invalid("a cluster id is a string", code="invalid_cluster_id", field=where)
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
        return cluster_name(int(key))
    if not isinstance(key, str) or not 1 <= len(key) <= _MAX_ID:
        raise Invalid(
            f"a cluster id is 1 to {_MAX_ID} characters", code="invalid_cluster_id", field=where
        )
    return key


def _parse_vector(value: Any, dim: int, where: str) -> np.ndarray:
    if isinstance(value, dict) and set(value) == {"$f32"} and isinstance(value["$f32"], str):
        try:
            value = np.frombuffer(base64.b64decode(value["$f32"], validate=True), "<f4")
        except (binascii.Error, ValueError) as exc:
            raise Invalid("invalid $f32 vector", code="invalid_vector", field=where) from exc
    if isinstance(value, builtins.list) and not all(type(v) in (int, float) for v in value):
        raise Invalid("a vector holds numbers only", code="invalid_vector", field=where)
    if not isinstance(value, builtins.list | np.ndarray):
        raise Invalid("a vector is a list of numbers", code="invalid_vector", field=where)
    with np.errstate(over="ignore"):
        arr = np.asarray(value, dtype=np.float32)
    if arr.ndim != 1:
        raise Invalid("a vector is a list of numbers", code="invalid_vector", field=where)
    if arr.size != dim:
        raise Invalid(
            f"this vector field has {dim} dimensions, this vector has {arr.size}",
            code="dimension_mismatch",
            field=where,
        )
    if not np.isfinite(arr).all():
        raise Invalid("a vector holds finite numbers", code="vector_not_finite", field=where)
    return arr


def _parse_centers(
    centers: Any, vector_field: str, dim: int
) -> tuple[builtins.list[str], np.ndarray]:
    items: builtins.list[tuple[Any, Any, str]] = []
    if isinstance(centers, dict):
        items = [(k, v, f"cluster_centers.{k}") for k, v in centers.items()]
    elif isinstance(centers, builtins.list):
        for i, c in enumerate(centers):
            where = f"cluster_centers[{i}]"
            if isinstance(c, dict) and set(c) != {"$f32"}:
                key = next(
                    (k for k in (vector_field, "centroid_vector_", "vector") if k in c), None
                )
                if key is None:
                    raise Invalid(
                        f"a centroid document has its vector under {vector_field!r}",
                        code="missing_vector",
                        field=where,
                    )
                if "_id" not in c:
                    raise Invalid("a centroid document has an _id", code="missing_id", field=where)
                items.append((c["_id"], c[key], f"{where}.{key}"))
            else:
                items.append((i, c, where))
    else:
        raise Invalid(
            "cluster_centers is an object {cluster_id: vector} or a list of centroids",
            code="invalid_cluster_centers",
            field="cluster_centers",
        )
    if not items:
        raise Invalid(
            "cluster_centers is empty", code="invalid_cluster_centers", field="cluster_centers"
        )
    if len(items) > MAX_CLUSTERS:
        raise Invalid(
            f"at most {MAX_CLUSTERS} centroids",
            code="invalid_cluster_centers",
            field="cluster_centers",
        )
    ids = [_normalise_id(k, where) for k, _, where in items]
    seen: set[str] = set()
    for name, (_, _, where) in zip(ids, items, strict=True):
        if name in seen:
            raise Invalid(f"cluster id {name!r} appears twice", code="duplicate_id", field=where)
        seen.add(name)
    matrix = np.stack([_parse_vector(v, dim, where) for _, v, where in items])
    return ids, matrix
