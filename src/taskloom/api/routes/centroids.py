"""Centroids of a dataset's clusterings: ``/v1/datasets/{name}/centroids/...``.

A clustering is named by ``vector_field`` and ``alias`` (query parameters on GET, body
fields on POST). The ``cluster`` job kind makes one (``POST /v1/jobs``); ``insert`` makes
one from the caller's own centers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import datasets as answers
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.datasets import (
    CentroidList,
    CentroidPage,
    Clustering,
    ClusteringDeleted,
    ClusteringList,
    ClusteringMetadata,
    ClusterSizes,
)

router = APIRouter(prefix="/v1/datasets/{name}/centroids", tags=["centroids"])

VectorField = Annotated[str, Query(min_length=1, description="The clustered vector field.")]
Alias = Annotated[str, Query(description="Names the clustering.")]


class ClusteringRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vector_field: str = Field(min_length=1)
    alias: str = "default"


class CentroidGet(ClusteringRef):
    cluster_ids: list[str] = Field(min_length=1, max_length=100_000)
    include_vector: bool = True


class CentroidInsert(ClusteringRef):
    # {cluster_id: vector}, or [{"_id": ..., "<vector_field>": [...]}], or [[...], ...]
    cluster_centers: dict[str, Any] | list[Any]


class CentroidDocuments(ClusteringRef):
    cluster_ids: list[str] = Field(min_length=1, max_length=10_000)
    metric: str = "cosine"
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=20, ge=1, le=1_000)
    cursor: str | None = None
    include_vector: bool = False
    select: list[str] | None = None


class CentroidExtremes(ClusteringRef):
    cluster_ids: list[str] | None = Field(default=None, max_length=100_000)
    k: int = Field(default=5, ge=1, le=1_000)
    metric: str = "cosine"
    include_vector: bool = False
    select: list[str] | None = None


class CentroidMetadata(ClusteringRef):
    metadata: dict[str, Any] | None = None


@router.get("", response_model=CentroidPage, responses=error_responses())
def list_centroids(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    vector_field: VectorField,
    alias: Alias = "default",
    page_size: Annotated[int, Query(ge=1, le=10_000)] = 5,
    cursor: str | None = None,
    include_vector: bool = False,
) -> FastJSONResponse:
    """The centroids in order: ``{"data": [{"_id", "size", <vector_field>?}], "count",
    "cursor"}``; ``size`` is the documents the last ``cluster`` job put in the cluster."""
    return ok(
        services.centroids.list(
            scope,
            name,
            vector_field,
            alias,
            page_size=page_size,
            cursor=cursor,
            include_vector=include_vector,
        )
    )


@router.delete("", response_model=ClusteringDeleted, responses=error_responses())
def delete_clustering(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    vector_field: VectorField,
    alias: Alias = "default",
    clear_labels: bool = False,
) -> FastJSONResponse:
    """Forget the clustering and its centroids; with ``clear_labels=true`` the documents'
    ``_cluster_.{vector_field}.{alias}`` labels go too (otherwise they stay)."""
    return ok(
        services.centroids.delete(scope, name, vector_field, alias, clear_labels=clear_labels)
    )


@router.get("/clusterings", response_model=ClusteringList, responses=error_responses())
def list_clusterings(name: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """Every clustering of the dataset."""
    data = services.centroids.list_clusterings(scope, name)
    return ok({"data": data, "count": len(data)})


@router.get("/info", response_model=Clustering, responses=error_responses())
def clustering_info(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    vector_field: VectorField,
    alias: Alias = "default",
) -> FastJSONResponse:
    """The clustering: params, what the fit found (inertia, sizes), metadata."""
    return ok(services.centroids.info(scope, name, vector_field, alias))


@router.get("/sizes", response_model=ClusterSizes, responses=error_responses())
def cluster_sizes(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    vector_field: VectorField,
    alias: Alias = "default",
) -> FastJSONResponse:
    """How many documents carry each cluster id now: ``{"data": {cluster_id: count}}``."""
    return ok({"data": services.centroids.sizes(scope, name, vector_field, alias)})


@router.post("/get", response_model=CentroidList, responses=error_responses(body=True))
def get_centroids(
    name: str, body: CentroidGet, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    data = services.centroids.get(
        scope,
        name,
        body.vector_field,
        body.alias,
        cluster_ids=body.cluster_ids,
        include_vector=body.include_vector,
    )
    return ok({"data": data, "count": len(data)})


@router.post(
    "/insert", status_code=201, response_model=Clustering, responses=error_responses(body=True)
)
def insert_centroids(
    name: str, body: CentroidInsert, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Make one's own centers the clustering (replacing the one there); answers the
    clustering."""
    out = services.centroids.insert(
        scope, name, body.vector_field, body.alias, cluster_centers=body.cluster_centers
    )
    return ok(out, 201)


@router.post(
    "/documents", response_model=answers.CentroidDocuments, responses=error_responses(body=True)
)
def centroid_documents(
    name: str, body: CentroidDocuments, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """The documents of each cluster, most similar to its centroid first:
    ``{"data": [{"cluster_id", "count", "documents": [{..., "_score"}]}], "metric",
    "cursor"}``."""
    return ok(
        services.centroids.documents(
            scope,
            name,
            body.vector_field,
            body.alias,
            cluster_ids=body.cluster_ids,
            metric=body.metric,
            page=body.page,
            page_size=body.page_size,
            cursor=body.cursor,
            include_vector=body.include_vector,
            select_fields=body.select,
        )
    )


def _extremes(
    name: str, body: CentroidExtremes, scope: ScopeDep, services: ServicesDep, furthest: bool
) -> FastJSONResponse:
    return ok(
        services.centroids.closest(
            scope,
            name,
            body.vector_field,
            body.alias,
            cluster_ids=body.cluster_ids,
            k=body.k,
            metric=body.metric,
            include_vector=body.include_vector,
            select_fields=body.select,
            furthest=furthest,
        )
    )


@router.post(
    "/closest", response_model=answers.CentroidExtremes, responses=error_responses(body=True)
)
def closest_documents(
    name: str, body: CentroidExtremes, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """The ``k`` documents of each cluster (all when ``cluster_ids`` is null) closest to
    its centroid."""
    return _extremes(name, body, scope, services, furthest=False)


@router.post(
    "/furthest", response_model=answers.CentroidExtremes, responses=error_responses(body=True)
)
def furthest_documents(
    name: str, body: CentroidExtremes, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """The ``k`` documents of each cluster furthest from its centroid."""
    return _extremes(name, body, scope, services, furthest=True)


@router.get("/metadata", response_model=ClusteringMetadata, responses=error_responses())
def read_metadata(
    name: str,
    scope: ScopeDep,
    services: ServicesDep,
    vector_field: VectorField,
    alias: Alias = "default",
) -> FastJSONResponse:
    return ok({"metadata": services.centroids.metadata(scope, name, vector_field, alias)})


@router.post("/metadata", response_model=ClusteringMetadata, responses=error_responses(body=True))
def metadata(
    name: str, body: CentroidMetadata, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Without ``metadata``: read it; with it: replace the clustering's metadata."""
    out = services.centroids.metadata(scope, name, body.vector_field, body.alias, body.metadata)
    return ok({"metadata": out})
