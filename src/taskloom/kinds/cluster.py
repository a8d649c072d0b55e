"""``cluster``: k-means on a vector field; labels into the documents, centroids stored.

The params are checked here; the work (fit or assign, labels, centroids, idempotence) is
:class:`taskloom.services.cluster_runs.ClusterRuns`, described there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from taskloom.errors import Invalid
from taskloom.jobs.registry import JobKind, Registry
from taskloom.kinds.checks import require_field
from taskloom.services.cluster_runs import ClusterSpec
from taskloom.services.clustering import ALIAS_RE, MAX_CLUSTERS

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext
    from taskloom.services.container import Services


class ClusterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vector_field: str = Field(min_length=1, max_length=255, description="The field to cluster.")
    n_clusters: int = Field(ge=1, le=MAX_CLUSTERS, description="How many clusters.")
    n_iter: int = Field(default=10, ge=1, le=1_000, description="Most iterations of each run.")
    n_init: int = Field(
        default=5, ge=1, le=100, description="Runs from different seeds; the best is kept."
    )
    alias: str = Field(
        default="default", pattern=ALIAS_RE.pattern, description="Names the clustering."
    )
    refresh: bool = Field(
        default=False,
        description="true: fit again on every document; false: only label the documents "
        "without a label when a clustering with n_clusters clusters exists.",
    )
    random_state: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="Seed; default: derived from the job id."
    )


def run_cluster(ctx: JobContext[Services], params: ClusterParams) -> dict[str, Any]:
    """k-means on a vector field; cluster labels written into the documents."""
    if ctx.dataset is None:
        raise Invalid("cluster runs on a dataset", code="dataset_required", field="dataset")
    return ctx.services.cluster_runs.run(
        ctx.scope,
        ctx.dataset,
        job_id=ctx.job_id,
        progress=ctx,
        spec=ClusterSpec(**params.model_dump()),
    )


def check_cluster(params: ClusterParams, fields: Mapping[str, Any]) -> None:
    require_field(fields, params.vector_field, param="params.vector_field", types={"vector"})


def register(registry: Registry) -> None:
    registry.register(
        JobKind(
            "cluster",
            ClusterParams,
            run_cluster,
            "k-means on a vector field: cluster-<n> labels written to "
            "_cluster_.{vector_field}.{alias}, centroids stored.",
            needs_dataset=True,
            check=check_cluster,
        )
    )
