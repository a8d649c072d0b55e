"""Clusterings as stored: a vector field's clustering under an alias, its centroids in
order, and the cluster labels in the documents (the ``cluster`` job's reads and writes).

A clustering is named by its vector field and an alias (``default``). Its centroids keep
their order (``position``) and ids (``cluster-<n>``, or the ids a caller inserted); each
member document carries its cluster id at ``_cluster_.{vector_field}.{alias}``, a field
like any other (filters select on it). ``CentroidService`` (``services/centroids.py``)
is the API on top.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Connection, delete, insert, select, update

from taskloom.errors import Invalid, NotFound
from taskloom.scope import Scope
from taskloom.services.batches import merge_fields
from taskloom.store.engine import Store
from taskloom.store.lookups import bump_version, lookup
from taskloom.store.tables import centroids, clusterings, datasets
from taskloom.store.types import utcnow

ALIAS_RE = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")
MAX_CLUSTERS = 100_000
_FETCH = 10_000  # rows per fetch when reading a whole vector field


def label_path(vector_field: str, alias: str) -> str:
    """Where a document keeps its cluster id: ``_cluster_.{vector_field}.{alias}``."""
    return f"_cluster_.{vector_field}.{alias}"


def cluster_name(i: int) -> str:
    return f"cluster-{i}"


@dataclass
class Clustering:
    """A stored clustering with its centroids in order."""

    id: int
    dataset_id: int
    vector_field: str
    alias: str
    params: dict[str, Any]
    info: dict[str, Any]
    user_metadata: dict[str, Any] | None
    cluster_ids: list[str]
    centers: np.ndarray  # float32 (k, dim)
    sizes: list[int | None]
    created_at: Any
    updated_at: Any

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_ids)

    def public(self) -> dict[str, Any]:
        return {
            "vector_field": self.vector_field,
            "alias": self.alias,
            "n_clusters": self.n_clusters,
            "params": self.params,
            "info": self.info,
            "metadata": self.user_metadata or {},
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def check_alias(alias: Any) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise Invalid(
            "an alias is 1-100 letters, digits, '_' or '-'", code="invalid_alias", field="alias"
        )
    return alias


def field_dim(ds: Any, vector_field: Any) -> int:
    """The dimension of a vector field of the dataset, or a 422 that says what is wrong."""
    if not isinstance(vector_field, str) or not vector_field:
        raise Invalid("vector_field is required", code="missing_field", field="vector_field")
    spec = ds.fields.get(vector_field)
    if spec is None:
        raise Invalid(
            f"dataset {ds.name!r} has no field {vector_field!r}",
            code="unknown_field",
            field="vector_field",
        )
    if spec.get("type") != "vector":
        raise Invalid(
            f"{vector_field!r} is not a vector field (its type is {spec.get('type')})",
            code="not_a_vector_field",
            field="vector_field",
        )
    if '"' in vector_field or "\\" in vector_field:
        raise Invalid(
            "a clustered vector field's name has no quotes or backslashes",
            code="invalid_field_name",
            field="vector_field",
        )
    return int(spec["dim"])


class Clusterings:
    """Reads and writes clusterings, and the labels and vectors of their documents."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pg = store.dialect == "postgresql"

    # -- clusterings -------------------------------------------------------------------------

    def load(
        self, conn: Connection, ds: Any, vector_field: str, alias: str, *, required: bool = True
    ) -> Clustering | None:
        row = conn.execute(
            select(clusterings).where(
                clusterings.c.dataset_id == ds.id,
                clusterings.c.vector_field == vector_field,
                clusterings.c.alias == alias,
            )
        ).first()
        if row is None:
            if not required:
                return None
            raise NotFound(
                f"no clustering of {vector_field!r} with alias {alias!r} in dataset {ds.name!r}; "
                "run a `cluster` job or insert centroids first",
                code="clustering_not_found",
                field="alias",
            )
        cents = conn.execute(
            select(centroids.c.cluster_id, centroids.c.data, centroids.c.size)
            .where(centroids.c.clustering_id == row.id)
            .order_by(centroids.c.position)
        ).all()
        dim = int(ds.fields.get(vector_field, {}).get("dim") or 0)
        matrix = (
            np.frombuffer(b"".join(c.data for c in cents), "<f4").reshape(len(cents), -1)
            if cents
            else np.empty((0, dim), np.float32)
        )
        return Clustering(
            id=row.id,
            dataset_id=ds.id,
            vector_field=vector_field,
            alias=alias,
            params=row.params,
            info=row.info,
            user_metadata=row.user_metadata,
            cluster_ids=[c.cluster_id for c in cents],
            centers=matrix,
            sizes=[c.size for c in cents],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def open(
        self, conn: Connection, scope: Scope, dataset: str, vector_field: Any, alias: Any
    ) -> tuple[Any, Clustering]:
        check_alias(alias)
        ds = lookup(conn, scope, dataset)
        field_dim(ds, vector_field)
        found = self.load(conn, ds, vector_field, alias)
        assert found is not None
        return ds, found

    def get(
        self, scope: Scope, dataset: str, vector_field: str, alias: str = "default"
    ) -> Clustering | None:
        """The stored clustering, or None (the field must be a vector field)."""
        check_alias(alias)
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            field_dim(ds, vector_field)
            return self.load(conn, ds, vector_field, alias, required=False)

    def save(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str,
        *,
        params: dict[str, Any],
        info: dict[str, Any],
        cluster_ids: builtins.list[str],
        centers: np.ndarray,
        sizes: builtins.list[int] | None = None,
    ) -> dict[str, Any]:
        """Create or replace the clustering of (vector_field, alias) with these centroids,
        in one transaction. The caller's metadata survives a replacement."""
        check_alias(alias)
        centers = np.ascontiguousarray(centers, dtype="<f4")
        now = utcnow()
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            dim = field_dim(ds, vector_field)
            if centers.ndim != 2 or centers.shape[1] != dim or len(centers) != len(cluster_ids):
                raise Invalid(
                    f"{vector_field} has {dim} dimensions; centroids must match",
                    code="dimension_mismatch",
                    field="cluster_centers",
                )
            row = conn.execute(
                select(clusterings.c.id).where(
                    clusterings.c.dataset_id == ds.id,
                    clusterings.c.vector_field == vector_field,
                    clusterings.c.alias == alias,
                )
            ).first()
            if row is None:
                cid = conn.execute(
                    insert(clusterings)
                    .values(
                        dataset_id=ds.id,
                        vector_field=vector_field,
                        alias=alias,
                        params=params,
                        info=info,
                        user_metadata=None,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(clusterings.c.id)
                ).scalar_one()
            else:
                cid = row.id
                conn.execute(
                    update(clusterings)
                    .where(clusterings.c.id == cid)
                    .values(params=params, info=info, updated_at=now)
                )
                conn.execute(delete(centroids).where(centroids.c.clustering_id == cid))
            if len(cluster_ids):
                conn.execute(
                    insert(centroids),
                    [
                        {
                            "clustering_id": cid,
                            "cluster_id": name,
                            "position": i,
                            "dim": dim,
                            "data": centers[i].tobytes(),
                            "size": None if sizes is None else int(sizes[i]),
                        }
                        for i, name in enumerate(cluster_ids)
                    ],
                )
            found = self.load(conn, ds, vector_field, alias)
            assert found is not None
            return found.public()

    def update_sizes(
        self, scope: Scope, dataset: str, vector_field: str, alias: str, info: dict[str, Any]
    ) -> dict[str, int]:
        """Store the live cluster sizes (and ``info``) on the clustering; returns them."""
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            found = self.load(conn, ds, vector_field, alias)
            assert found is not None
            counts = self.live_sizes(conn, ds, found)
            for name in found.cluster_ids:
                conn.execute(
                    update(centroids)
                    .where(centroids.c.clustering_id == found.id, centroids.c.cluster_id == name)
                    .values(size=counts[name])
                )
            conn.execute(
                update(clusterings)
                .where(clusterings.c.id == found.id)
                .values(info=info, updated_at=utcnow())
            )
        return counts

    # -- reading a whole field, writing labels (the cluster job's I/O) -----------------------

    def load_vectors(
        self, scope: Scope, dataset: str, vector_field: str, *, unlabelled: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(primary keys ascending, float32 matrix) of every document with ``vector_field``;
        with ``unlabelled=alias`` only those without a label of that clustering.

        A straight read of the vectors table (no join, no ORDER BY: the database would sort
        the whole field's bytes) into one preallocated matrix."""
        with self.store.read() as conn:
            ds = lookup(conn, scope, dataset)
            dim = field_dim(ds, vector_field)
            ph = "%s" if self.pg else "?"
            where = f"v.dataset_id = {ph} AND v.field = {ph}"
            args: builtins.list[Any] = [ds.id, vector_field]
            source = "vectors v"
            if unlabelled is not None:
                source += " JOIN documents d ON d.id = v.document_id"
                where += f" AND {self.label_sql('d.data', vector_field, unlabelled)} IS NULL"
            total = conn.exec_driver_sql(
                f"SELECT count(*) FROM {source} WHERE {where}", tuple(args)
            )
            n = int(total.scalar_one())
            matrix = np.empty((n, dim), np.float32)
            pks = np.empty(n, np.int64)
            flat = matrix.reshape(-1).view(np.uint8)
            row_bytes = dim * 4
            # the driver's own cursor: a few hundred thousand rows skip SQLAlchemy's wrapping
            cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cur.execute(f"SELECT v.document_id, v.data FROM {source} WHERE {where}", tuple(args))
            i = 0
            extra_pks: builtins.list[int] = []
            extra: builtins.list[bytes] = []
            while rows := cur.fetchmany(_FETCH):
                take = rows[: max(0, n - i)]
                if take:
                    blob = b"".join([r[1] for r in take])
                    if len(blob) != len(take) * row_bytes:
                        raise Invalid(f"{vector_field} holds vectors of another dimension")
                    flat[i * row_bytes : (i + len(take)) * row_bytes] = np.frombuffer(
                        blob, np.uint8
                    )
                    pks[i : i + len(take)] = np.fromiter((r[0] for r in take), np.int64, len(take))
                    i += len(take)
                for r in rows[len(take) :]:  # written since the count (PostgreSQL)
                    extra_pks.append(r[0])
                    extra.append(bytes(r[1]))
            cur.close()
        if i < n:  # deleted since the count
            matrix, pks = matrix[:i], pks[:i]
        if extra:
            more = np.frombuffer(b"".join(extra), "<f4").reshape(len(extra), dim)
            matrix = np.concatenate([matrix, more])
            pks = np.concatenate([pks, np.asarray(extra_pks, np.int64)])
        if len(pks) > 1 and not (np.diff(pks) > 0).all():
            order = np.argsort(pks, kind="stable")
            pks, matrix = pks[order], matrix[order]
        return pks, matrix

    def label_sql(self, column: str, vector_field: str, alias: str) -> str:
        """SQL for a document's label of a clustering, as text (NULL when it has none).
        The names are inlined as SQL literals: ``field_dim`` refused quotes and backslashes
        in the field's name and ``check_alias`` allows only letters, digits, ``_``, ``-``."""
        if self.pg:
            # walks objects only, like SQLite's path; '%' doubled for the driver's paramstyle
            field, name = _literal(vector_field, pg=True), _literal(alias, pg=True)
            return f"jsonb_extract_path_text({column}, '_cluster_', {field}, {name})"
        path = _literal(f'$."_cluster_"."{vector_field}"."{alias}"', pg=False)
        return f"json_extract({column}, {path})"

    def write_labels(
        self,
        scope: Scope,
        dataset: str,
        vector_field: str,
        alias: str,
        pks: np.ndarray,
        labels: builtins.list[str],
    ) -> int:
        """Set ``_cluster_.{vector_field}.{alias}`` of the documents ``pks`` (internal keys)
        in one transaction; documents that already carry their label are not rewritten, and
        documents deleted meanwhile are skipped. Returns the documents changed."""
        check_alias(alias)
        if len(pks) == 0:
            return 0
        now = utcnow()
        path = label_path(vector_field, alias)
        with self.store.write() as conn:
            ds = lookup(conn, scope, dataset, lock=True)
            field_dim(ds, vector_field)
            current = self.label_sql("data", vector_field, alias)
            ids = [int(p) for p in pks]
            if self.pg:
                sub = "d.data -> '_cluster_'"
                field_obj = f"{sub} -> %(field)s::text"
                expr = (
                    "d.data || jsonb_build_object('_cluster_', "
                    f"(CASE WHEN jsonb_typeof({sub}) = 'object' THEN {sub} ELSE '{{}}'::jsonb END)"
                    " || jsonb_build_object(%(field)s::text, "
                    f"(CASE WHEN jsonb_typeof({field_obj}) = 'object' THEN {field_obj} "
                    "ELSE '{}'::jsonb END) || jsonb_build_object(%(alias)s::text, v.label)))"
                )
                res = conn.exec_driver_sql(
                    f"UPDATE documents AS d SET data = {expr}, updated_at = %(now)s "
                    "FROM unnest(%(pks)s::bigint[], %(labels)s::text[]) AS v(pk, label) "
                    f"WHERE d.id = v.pk AND d.dataset_id = %(ds)s "
                    f"AND {self.label_sql('d.data', vector_field, alias)} "
                    "IS DISTINCT FROM v.label",
                    {
                        "field": vector_field,
                        "alias": alias,
                        "now": now,
                        "pks": ids,
                        "labels": list(labels),
                        "ds": ds.id,
                    },
                )
                changed = res.rowcount
            else:
                ts = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                patches = {
                    name: orjson.dumps({"_cluster_": {vector_field: {alias: name}}}).decode()
                    for name in set(labels)
                }
                before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
                conn.exec_driver_sql(
                    "UPDATE documents SET data = json_patch(data, ?), updated_at = ? "
                    f"WHERE id = ? AND dataset_id = ? AND {current} IS NOT ?",
                    [
                        (patches[name], ts, pk, ds.id, name)
                        for pk, name in zip(ids, labels, strict=True)
                    ],
                )
                changed = conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before
            if (ds.fields.get(path) or {}).get("type") != "text":
                merged = merge_fields(ds.fields, {path: "text"}, {})
                if merged != ds.fields:
                    conn.execute(
                        update(datasets)
                        .where(datasets.c.id == ds.id)
                        .values(fields=merged, updated_at=now)
                    )
        return int(changed)

    def clear_labels(self, conn: Connection, ds: Any, vector_field: str, alias: str) -> int:
        """Remove ``_cluster_.{vector_field}.{alias}`` from the dataset's documents (and the
        objects that leaves empty), in the caller's write transaction. Returns the documents
        changed."""
        check_alias(alias)
        now = utcnow()
        bump_version(conn, ds.id)
        has = self.label_sql("data", vector_field, alias) + " IS NOT NULL"
        if self.pg:
            field, name = _literal(vector_field, pg=True), _literal(alias, pg=True)
            inner = f"(data -> '_cluster_' -> {field}) - {name}"
            cluster = (
                f"CASE WHEN {inner} = '{{}}'::jsonb THEN (data -> '_cluster_') - {field} "
                f"ELSE jsonb_set(data -> '_cluster_', ARRAY[{field}], {inner}) END"
            )
            expr = (
                f"CASE WHEN {cluster} = '{{}}'::jsonb THEN data - '_cluster_' "
                f"ELSE jsonb_set(data, '{{_cluster_}}', {cluster}) END"
            )
            res = conn.exec_driver_sql(
                f"UPDATE documents SET data = {expr}, updated_at = %(now)s "
                f"WHERE dataset_id = %(ds)s AND {has}",
                {"now": now, "ds": ds.id},
            )
        else:
            ts = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            leaf = _literal(f'$."_cluster_"."{vector_field}"."{alias}"', pg=False)
            parent = _literal(f'$."_cluster_"."{vector_field}"', pg=False)
            removed = f"json_remove(data, {leaf})"
            # drop _cluster_.{field} and then _cluster_ when the removal leaves them empty
            step1 = (
                f"CASE WHEN json_extract({removed}, {parent}) = '{{}}' "
                f"THEN json_remove({removed}, {parent}) ELSE {removed} END"
            )
            expr = (
                f"CASE WHEN json_extract({step1}, '$._cluster_') = '{{}}' "
                f"THEN json_remove({step1}, '$._cluster_') ELSE {step1} END"
            )
            res = conn.exec_driver_sql(
                f"UPDATE documents SET data = {expr}, updated_at = ? "
                f"WHERE dataset_id = ? AND {has}",
                (ts, ds.id),
            )
        return int(res.rowcount)

    def live_sizes(self, conn: Connection, ds: Any, found: Clustering) -> dict[str, int]:
        """How many documents carry each of the clustering's ids now."""
        expr = self.label_sql("data", found.vector_field, found.alias)
        ph = "%s" if self.pg else "?"
        rows = conn.exec_driver_sql(
            f"SELECT {expr}, count(*) FROM documents WHERE dataset_id = {ph} GROUP BY 1",
            (ds.id,),
        ).all()
        got = {r[0]: int(r[1]) for r in rows if r[0] is not None}
        return {name: got.get(name, 0) for name in found.cluster_ids}


def _literal(text: str, *, pg: bool) -> str:
    """``text`` as an SQL string literal (for an exec_driver_sql statement)."""
    quoted = "'" + text.replace("'", "''") + "'"
    return quoted.replace("%", "%%") if pg else quoted
