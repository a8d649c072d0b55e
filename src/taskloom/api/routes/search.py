"""Vector search in a dataset: ``POST /v1/datasets/{name}/search``; the dataset's search
indexes: ``GET`` / ``POST /v1/datasets/{name}/indexes``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from taskloom.api.deps import ScopeDep, ServicesDep
from taskloom.api.responses import FastJSONResponse, ok
from taskloom.api.schemas import error_responses
from taskloom.api.schemas.datasets import IndexList, IndexStatus, SearchResult
from taskloom.api.schemas.errors import also

router = APIRouter(prefix="/v1/datasets", tags=["search"])


class VectorQuery(BaseModel):
    """One of several weighted queries; their scores are summed per document."""

    model_config = ConfigDict(extra="forbid")
    field: str
    vector: Any = None  # a list of numbers or {"$f32": base64}; checked by the service
    text: str | None = None
    weight: float = 1.0


class SearchRequest(BaseModel):
    """A query ``vector`` (or ``text``) in ``vector_field``, or several weighted ``queries``.

    Scores are "higher is better": cosine similarity, dot product (``dp``), or minus the
    ``l2`` / ``l1`` distance. Exact unless ``index`` is ``hnsw`` (or ``auto`` on a field past
    the server's HNSW threshold).
    """

    model_config = ConfigDict(extra="forbid")
    vector: Any = None  # a list of numbers or {"$f32": base64}; checked by the service
    text: str | None = None
    vector_field: str | None = None
    queries: list[VectorQuery] | None = None
    metric: str = "cosine"  # cosine | dp | l2 | l1, checked by the service (unknown_metric)
    top_k: int = Field(default=10, description="Results per page (at most the field's vectors).")
    page: int = Field(default=1, description="Page number, from 1.")
    filter: Any = None  # checked by the filter compiler (code invalid_filter)
    select: list[str] | None = None
    include_vector: bool = False
    min_score: float | None = None
    index: str = "auto"  # auto | flat | hnsw
    ef_search: int | None = None


@router.post(
    "/{name}/search", response_model=SearchResult, responses=error_responses(503, body=True)
)
def search(
    name: str, body: SearchRequest, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """``{"data": [{"_id", "_score", ...fields}], "count", "candidates", "next_page",
    "metric", "index", "exact"}``, best first."""
    queries = (
        [q.model_dump(exclude_none=True) for q in body.queries]
        if body.queries is not None
        else None
    )
    out = services.search.search(
        scope,
        name,
        vector=body.vector,
        text=body.text,
        vector_field=body.vector_field,
        queries=queries,
        metric=body.metric,
        top_k=body.top_k,
        page=body.page,
        filter=body.filter,
        select=body.select,
        include_vector=body.include_vector,
        min_score=body.min_score,
        index=body.index,
        ef_search=body.ef_search,
    )
    return ok(out)


class IndexRequest(BaseModel):
    """Build an index of a vector field ahead of the searches that need it."""

    model_config = ConfigDict(extra="forbid")
    vector_field: str
    metric: str = "cosine"  # cosine | dp | l2 | l1
    index: str = "hnsw"  # hnsw | flat
    wait: bool = Field(
        default=False, description="Answer once the index is ready (a large HNSW takes minutes)."
    )


@router.post(
    "/{name}/indexes",
    response_model=IndexStatus,
    responses={
        **also(202, IndexStatus, "Building: the index is not ready yet"),
        **error_responses(body=True),
    },
)
def build_index(
    name: str, body: IndexRequest, scope: ScopeDep, services: ServicesDep
) -> FastJSONResponse:
    """Start building the index in the background (no-op when built or building): 202 with
    ``status: building``, or 200 once ``ready``. Searches that ask for it answer exactly
    until it is ready."""
    out = services.search.build_index(
        scope,
        name,
        vector_field=body.vector_field,
        metric=body.metric,
        index=body.index,
        wait=body.wait,
    )
    return ok(out, 200 if out["status"] == "ready" else 202)


@router.get("/{name}/indexes", response_model=IndexList, responses=error_responses())
def list_indexes(name: str, scope: ScopeDep, services: ServicesDep) -> FastJSONResponse:
    """``{"data": [{vector_field, metric, index, status: ready|building|failed, size, ...}]}``
    for the indexes this server holds in memory."""
    return ok({"data": services.search.indexes(scope, name)})
