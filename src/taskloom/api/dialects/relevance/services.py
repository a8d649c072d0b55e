"""Relevance's ``/services/...`` endpoints: vector search and cluster centroids.

``POST /services/search/vector`` translates to ``SearchService.search``:

=========================  =================================================================
Relevance                  taskloom
=========================  =================================================================
``multivector_query``      ``queries``: each entry's ``vector`` on each of its ``fields``
                           (a list: weight 1; an object: ``{field: weight}``); the scores
                           are summed per document (``sum_fields=true``)
``similarity_metric``      ``metric`` (``cosine``, ``dp``, ``l2``, ``l1``; scores are "higher
                           is better", so l2/l1 scores are minus the distance)
``page_size``, ``page``    ``top_k``, ``page``
``filters``                ``filter`` (``filters``)
``select_fields``          ``select`` (empty: every field)
``include_vector``         ``include_vector``
``min_score``              ``min_score``; Relevance's default 0 means no minimum
``approximation_depth``    0 (the default): exact search; more: an HNSW index
``hundred_scale``          scores times 100
=========================  =================================================================

The answer is ``{"results": [{"_id", "_search_score", ...fields}], "count"}`` (``count``:
the documents that were candidates). ``positive_document_ids``, ``negative_document_ids``,
``facets``, ``asc=true`` and ``sum_fields=false`` have no taskloom equivalent and answer
422 ``unsupported``; ``query``, ``keep_search_history`` and ``search_history_id`` are
ignored.

``/services/cluster/centroids/{list,get,insert,documents,metadata}`` (GET or POST, as the
SDK versions send them) and ``list_closest_to_center`` / ``list_furthest_from_center``
translate to ``CentroidService``. A clustering is named by the dataset, the vector field
and the alias (``default``). Centroids are ``{"_id": "cluster-<n>", "size", <vector_field>:
[...]}`` (the vector with ``include_vector``); documents carry ``_search_score``, their
similarity to the centroid under ``similarity_metric``, most similar first.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from taskloom.api.deps import ServicesDep
from taskloom.api.dialects.relevance import filters as relevance_filters
from taskloom.api.dialects.relevance.http import (
    END_CURSOR,
    Params,
    RelevanceIn,
    RelevanceRoute,
    RelevanceScope,
    StrList,
    parse,
    selected,
    unsupported,
)
from taskloom.api.responses import ok
from taskloom.errors import Invalid, TaskloomError
from taskloom.runtime import Services
from taskloom.scope import Scope

router = APIRouter(route_class=RelevanceRoute, include_in_schema=False)


def vector_field_of(vector_field: str | None, vector_fields: builtins.list[str] | None) -> str:
    """The one vector field named by 0.22's ``vector_field`` or 0.24+'s ``vector_fields``."""
    if vector_fields:
        if len(vector_fields) != 1:
            raise Invalid(
                "vector_fields is a list of one vector field name",
                code="invalid_vector_fields",
                field="vector_fields",
            )
        if vector_field not in (None, vector_fields[0]):
            raise Invalid(
                "vector_field and vector_fields name different fields",
                code="invalid_vector_fields",
                field="vector_fields",
            )
        return vector_fields[0]
    if not vector_field:
        raise Invalid(
            "name the vector field (vector_fields, or vector_field)",
            code="missing_field",
            field="vector_fields",
        )
    return vector_field


# -- vector search -----------------------------------------------------------------------------


class VectorSearch(RelevanceIn):
    dataset_id: str
    multivector_query: builtins.list[Any] = Field(min_length=1)
    positive_document_ids: dict[str, Any] = Field(default_factory=dict)
    negative_document_ids: dict[str, Any] = Field(default_factory=dict)
    approximation_depth: int = Field(default=0, ge=0)
    sum_fields: bool = True
    page_size: int = 20
    page: int = 1
    similarity_metric: str = "cosine"
    facets: builtins.list[Any] = Field(default_factory=list)
    filters: Any = None
    min_score: float | None = 0
    select_fields: StrList = Field(default_factory=list)
    include_vector: bool = False
    include_count: bool = True
    asc: bool = False
    hundred_scale: bool = False


def _queries(
    multivector_query: builtins.list[Any],
) -> tuple[builtins.list[dict[str, Any]], builtins.list[int]]:
    """taskloom's weighted queries, and for each the index of the entry it came from."""
    out: builtins.list[dict[str, Any]] = []
    origins: builtins.list[int] = []
    for i, entry in enumerate(multivector_query):
        where = f"multivector_query[{i}]"
        if not isinstance(entry, dict):
            raise Invalid("a query is an object", code="invalid_query", field=where)
        fields = entry.get("fields")
        if isinstance(fields, str):
            fields = [fields]
        if isinstance(fields, list):
            weights = {f: 1.0 for f in fields}
        elif isinstance(fields, dict):
            weights = fields
        else:
            raise Invalid(
                "fields is a list of vector fields or an object of weights",
                code="invalid_query",
                field=f"{where}.fields",
            )
        if not weights:
            raise Invalid("name at least one field", code="invalid_query", field=f"{where}.fields")
        query = {k: entry[k] for k in ("vector", "text") if k in entry}
        out.extend({**query, "field": f, "weight": w} for f, w in weights.items())
        origins.extend(i for _ in weights)
    return out, origins


_NAMES = {
    "top_k": "page_size",
    "metric": "similarity_metric",
    "select": "select_fields",
    "filter": "filters",
}


def _relevance_field(field: str, origins: builtins.list[int]) -> str:
    """A search error's field path in the request's own names."""
    head, dot, tail = field.partition(".")
    if head.startswith("queries[") and head.endswith("]") and head[8:-1].isdigit():
        entry = origins[int(head[8:-1])] if int(head[8:-1]) < len(origins) else 0
        tail = {"field": "fields", "vector_field": "fields"}.get(tail, tail)
        return f"multivector_query[{entry}]" + (f".{tail}" if dot else "")
    return _NAMES.get(head, head) + dot + tail


@router.post("/services/search/vector")
def vector_search(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    body = parse(VectorSearch, params)
    for name, given in (
        ("positive_document_ids", body.positive_document_ids),
        ("negative_document_ids", body.negative_document_ids),
        ("facets", body.facets),
        ("asc", body.asc),
        ("sum_fields", not body.sum_fields),
    ):
        if given:
            raise unsupported(f"{name} is not supported by taskloom's vector search", name)
    queries, origins = _queries(body.multivector_query)
    try:
        out = services.search.search(
            scope,
            body.dataset_id,
            queries=queries,
            metric=body.similarity_metric,
            top_k=body.page_size,
            page=body.page,
            filter=relevance_filters.translate(body.filters),
            select=selected(body.select_fields),
            include_vector=body.include_vector,
            min_score=body.min_score or None,
            index="hnsw" if body.approximation_depth and len(queries) == 1 else "flat",
        )
    except Invalid as exc:
        if exc.field:
            exc.field = exc.details["field"] = _relevance_field(exc.field, origins)
        raise
    scale = 100.0 if body.hundred_scale else 1.0
    results = []
    for hit in out["data"]:
        score = hit.pop("_score")
        results.append({**hit, "_search_score": score * scale})
    answer: dict[str, Any] = {"results": results}
    if body.include_count:
        answer["count"] = out["candidates"]
    return ok(answer)


# -- centroids ---------------------------------------------------------------------------------

CENTROIDS = "/services/cluster/centroids"


@contextmanager
def _named(**names: str) -> Iterator[None]:
    """Errors whose field taskloom names differently come back under the request's name."""
    try:
        yield
    except TaskloomError as exc:
        if exc.field in names:
            exc.field = exc.details["field"] = names[exc.field]
        raise


class ClusteringRef(RelevanceIn):
    dataset_id: str
    vector_field: str | None = None
    vector_fields: StrList | None = None
    alias: str = "default"

    def clustered_field(self) -> str:
        return vector_field_of(self.vector_field, self.vector_fields)


class CentroidList(ClusteringRef):
    page_size: int = 5
    cursor: str | None = None
    include_vector: bool = False


class CentroidGet(ClusteringRef):
    cluster_ids: StrList = Field(default_factory=list)
    include_vector: bool = True


class CentroidInsert(ClusteringRef):
    cluster_centers: Any = None


class CentroidDocuments(ClusteringRef):
    cluster_ids: StrList = Field(default_factory=list)
    page_size: int = 5
    cursor: str | None = None
    page: int = 1
    include_vector: bool = False
    similarity_metric: str = "cosine"
    select_fields: StrList = Field(default_factory=list)


class CentroidExtremes(ClusteringRef):
    cluster_ids: StrList = Field(default_factory=list)
    centroid_vector_fields: StrList = Field(default_factory=list)
    select_fields: StrList = Field(default_factory=list)
    page_size: int = Field(default=1, ge=1)
    page: int = Field(default=1, ge=1)
    similarity_metric: str = "cosine"
    filters: builtins.list[Any] = Field(default_factory=list)
    facets: builtins.list[Any] = Field(default_factory=list)
    include_vector: bool = False


class CentroidMetadata(ClusteringRef):
    metadata: dict[str, Any] | None = None


def _scored(docs: builtins.list[dict[str, Any]]) -> builtins.list[dict[str, Any]]:
    out = []
    for doc in docs:
        doc = dict(doc)
        doc["_search_score"] = doc.pop("_score")
        out.append(doc)
    return out


@router.api_route(f"{CENTROIDS}/list", methods=["GET", "POST"])
def list_centroids(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """A page of the centroids: ``{"documents", "count", "cursor"}``."""
    body = parse(CentroidList, params)
    with _named(vector_field="vector_fields"):
        out = services.centroids.list(
            scope,
            body.dataset_id,
            body.clustered_field(),
            body.alias,
            page_size=body.page_size,
            cursor=None if body.cursor == END_CURSOR else body.cursor,
            include_vector=body.include_vector,
        )
    if body.cursor == END_CURSOR:
        return ok({"documents": [], "count": out["count"], "cursor": END_CURSOR})
    cursor = out["cursor"] or END_CURSOR
    return ok({"documents": out["data"], "count": out["count"], "cursor": cursor})


@router.api_route(f"{CENTROIDS}/get", methods=["GET", "POST"])
def get_centroids(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """The centroids ``cluster_ids``: ``{"documents"}``; an unknown id answers 404."""
    body = parse(CentroidGet, params)
    with _named(vector_field="vector_fields"):
        docs = services.centroids.get(
            scope,
            body.dataset_id,
            body.clustered_field(),
            body.alias,
            cluster_ids=body.cluster_ids,
            include_vector=body.include_vector,
        )
    return ok({"documents": docs})


@router.post(f"{CENTROIDS}/insert")
def insert_centroids(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """Your own centers (``[{"_id": "cluster-0", <vector_field>: [...]}, ...]``) become the
    clustering of the vector field and alias, replacing the one there."""
    body = parse(CentroidInsert, params)
    with _named(vector_field="vector_fields"):
        out = services.centroids.insert(
            scope,
            body.dataset_id,
            body.clustered_field(),
            body.alias,
            cluster_centers=body.cluster_centers,
        )
    return ok({"status": "success", "message": f"{out['n_clusters']} centroids inserted", **out})


@router.post(f"{CENTROIDS}/documents")
def centroid_documents(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """Each cluster's documents, most similar to the centroid first: ``{"results":
    {cluster_id: [documents]}, "counts": {cluster_id: documents in all}, "cursor"}``."""
    body = parse(CentroidDocuments, params)
    if body.cursor == END_CURSOR:
        empty: dict[str, builtins.list[Any]] = {c: [] for c in body.cluster_ids}
        return ok({"results": empty, "counts": {}, "cursor": END_CURSOR})
    with _named(vector_field="vector_fields", metric="similarity_metric"):
        out = services.centroids.documents(
            scope,
            body.dataset_id,
            body.clustered_field(),
            body.alias,
            cluster_ids=body.cluster_ids,
            metric=body.similarity_metric,
            page=body.page,
            page_size=body.page_size,
            cursor=body.cursor,
            include_vector=body.include_vector,
            select_fields=selected(body.select_fields),
        )
    return ok(
        {
            "results": {g["cluster_id"]: _scored(g["documents"]) for g in out["data"]},
            "counts": {g["cluster_id"]: g["count"] for g in out["data"]},
            "cursor": out["cursor"] or END_CURSOR,
        }
    )


def _extremes(scope: Scope, services: Services, params: dict[str, Any], furthest: bool) -> Response:
    body = parse(CentroidExtremes, params)
    field = body.clustered_field()
    if body.filters or body.facets:
        name = "filters" if body.filters else "facets"
        raise unsupported(f"{name} are not supported here", name)
    if body.centroid_vector_fields not in ([], [field]):
        raise unsupported(
            "centroids are compared in the clustered vector field only", "centroid_vector_fields"
        )
    depth = body.page * body.page_size
    with _named(vector_field="vector_fields", metric="similarity_metric", k="page_size"):
        out = services.centroids.closest(
            scope,
            body.dataset_id,
            field,
            body.alias,
            cluster_ids=body.cluster_ids or None,
            k=depth,
            metric=body.similarity_metric,
            include_vector=body.include_vector,
            select_fields=selected(body.select_fields),
            furthest=furthest,
        )
    start = depth - body.page_size
    return ok({"results": {g["cluster_id"]: _scored(g["documents"][start:]) for g in out["data"]}})


@router.post(f"{CENTROIDS}/list_closest_to_center")
def closest_to_center(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """Each cluster's documents closest to its centroid (``page_size`` per page)."""
    return _extremes(scope, services, params, furthest=False)


@router.post(f"{CENTROIDS}/list_furthest_from_center")
def furthest_from_center(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """Each cluster's documents furthest from its centroid (``page_size`` per page)."""
    return _extremes(scope, services, params, furthest=True)


@router.api_route(f"{CENTROIDS}/metadata", methods=["GET", "POST"])
def centroid_metadata(scope: RelevanceScope, services: ServicesDep, params: Params) -> Response:
    """``{"metadata"}``: read it, or replace it first when the request gives ``metadata``."""
    body = parse(CentroidMetadata, params)
    with _named(vector_field="vector_fields"):
        out = services.centroids.metadata(
            scope, body.dataset_id, body.clustered_field(), body.alias, body.metadata
        )
    return ok({"metadata": out})
