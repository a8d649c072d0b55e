"""``cluster``: k-means on a vector field; labels into the documents, centroids stored.

Each document gets ``_cluster_.{vector_field}.{alias} = "cluster-<n>"``; the centroids and
what the fit found (params, inertia, sizes) become the clustering of (vector_field, alias),
replacing the previous one. ``refresh=false`` with a clustering of ``n_clusters`` clusters
already there fits nothing: only the documents without a label get their nearest
centroid (the way to label documents with centroids one inserted, too).

Idempotent: a retried job draws the same seed (from its job id when ``random_state`` is
not given), so it finds the same clustering and overwrites its own labels; documents that
already carry their label are not rewritten.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from taskloom.errors import Invalid
from taskloom.jobs.registry import JobKind, Registry
from taskloom.services.clustering import ALIAS_RE, MAX_CLUSTERS, cluster_name

if TYPE_CHECKING:
    from taskloom.jobs.context import JobContext
    from taskloom.services.clustering import Clustering, Clusterings
    from taskloom.services.container import Services

LABEL_BATCH = 20_000  # documents per label-writing transaction


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
    svc: Clusterings = ctx.services.centroids.clusterings
    if ctx.dataset is None:
        raise Invalid("cluster runs on a dataset", code="dataset_required", field="dataset")
    ctx.progress(0.0, "reading the clustering")
    existing = svc.get(ctx.scope, ctx.dataset, params.vector_field, params.alias)
    if (
        existing is not None
        and not params.refresh
        and existing.n_clusters == params.n_clusters
        # an earlier attempt of this job stored it: fit again, as that attempt did
        and existing.info.get("job_id") != ctx.job_id
    ):
        return _assign_new(ctx, svc, params, existing)
    return _fit(ctx, svc, params)


def _fit(ctx: JobContext[Services], svc: Clusterings, params: ClusterParams) -> dict[str, Any]:
    from taskloom.vectors.kmeans import KMeans  # faiss: loaded by the workers that need it

    assert ctx.dataset is not None
    ctx.progress(1.0, f"reading {params.vector_field}")
    pks, x = svc.load_vectors(ctx.scope, ctx.dataset, params.vector_field)
    if len(x) < params.n_clusters:
        raise Invalid(
            f"{len(x)} documents have {params.vector_field}; too few for "
            f"{params.n_clusters} clusters",
            code="too_few_documents",
            field="params.n_clusters",
        )
    seed = params.random_state
    if seed is None:  # the same for every attempt of this job
        seed = int.from_bytes(hashlib.sha256(ctx.job_id.encode()).digest()[:7], "big")
    total = params.n_init * params.n_iter

    def step(run: int, it: int, inertia: float) -> None:
        done = run * params.n_iter + it
        ctx.progress(10.0 + 60.0 * done / total, f"run {run + 1}/{params.n_init}, iteration {it}")

    ctx.progress(10.0, f"k-means: {len(x)} points, {params.n_clusters} clusters")
    km = KMeans(
        params.n_clusters, n_iter=params.n_iter, n_init=params.n_init, random_state=seed
    ).fit(x, callback=step)
    del x
    sizes = [int(s) for s in km.sizes_]
    info = {
        "inertia": km.inertia_,
        "sizes": sizes,
        "n_documents": len(pks),
        "n_iter": km.n_iter_,
        "random_state": seed,
        "job_id": ctx.job_id,
    }
    ctx.progress(70.0, "storing the centroids")
    names = [cluster_name(i) for i in range(params.n_clusters)]
    svc.save(
        ctx.scope,
        ctx.dataset,
        params.vector_field,
        params.alias,
        params=params.model_dump(exclude={"refresh"}),
        info=info,
        cluster_ids=names,
        centers=km.cluster_centers_,
        sizes=sizes,
    )
    written = _write(ctx, svc, params, pks, [names[i] for i in km.labels_], 70.0)
    return {
        "n_clusters": params.n_clusters,
        "inertia": km.inertia_,
        "sizes": sizes,
        "n_documents": len(pks),
        "n_iter": km.n_iter_,
        "labels_written": written,
        "refit": True,
    }


def _assign_new(
    ctx: JobContext[Services], svc: Clusterings, params: ClusterParams, existing: Clustering
) -> dict[str, Any]:
    from taskloom.vectors.kmeans import assign

    assert ctx.dataset is not None
    ctx.progress(1.0, "reading the documents without a label")
    pks, x = svc.load_vectors(ctx.scope, ctx.dataset, params.vector_field, unlabelled=params.alias)
    info = dict(existing.info)
    if len(pks):
        ctx.progress(10.0, f"assigning {len(pks)} documents to the nearest centroid")
        labels, dist = assign(x, existing.centers)
        del x
        names = existing.cluster_ids
        _write(ctx, svc, params, pks, [names[i] for i in labels], 10.0)
        if isinstance(info.get("inertia"), int | float):
            info["inertia"] = info["inertia"] + float(dist.sum(dtype=np.float64))
        info["n_documents"] = int(info.get("n_documents") or 0) + len(pks)
    info["assigned_by"] = ctx.job_id
    sizes = svc.update_sizes(ctx.scope, ctx.dataset, params.vector_field, params.alias, info)
    info["sizes"] = [sizes[n] for n in existing.cluster_ids]
    return {
        "n_clusters": existing.n_clusters,
        "inertia": info.get("inertia"),
        "sizes": info["sizes"],
        "assigned": len(pks),
        "refit": False,
    }


def _write(
    ctx: JobContext[Services],
    svc: Clusterings,
    params: ClusterParams,
    pks: np.ndarray,
    labels: list[str],
    start: float,
) -> int:
    """Labels in batches (one transaction each), progress and a cancel check between."""
    assert ctx.dataset is not None
    written = 0
    for i in range(0, len(pks), LABEL_BATCH):
        ctx.progress(start + (99.0 - start) * i / len(pks), f"writing labels {i}/{len(pks)}")
        written += svc.write_labels(
            ctx.scope,
            ctx.dataset,
            params.vector_field,
            params.alias,
            pks[i : i + LABEL_BATCH],
            labels[i : i + LABEL_BATCH],
        )
    return written


def register(registry: Registry) -> None:
    registry.register(
        JobKind(
            "cluster",
            ClusterParams,
            run_cluster,
            "k-means on a vector field: cluster-<n> labels written to "
            "_cluster_.{vector_field}.{alias}, centroids stored.",
            needs_dataset=True,
        )
    )
