"""The ``cluster`` job's work: k-means on a vector field, labels into the documents,
centroids stored (``taskloom.kinds.cluster`` parses the params and calls :class:`ClusterRuns`).

Each document gets ``_cluster_.{vector_field}.{alias} = "cluster-<n>"``; the centroids and
what the fit found (params, inertia, sizes) become the clustering of (vector_field, alias),
replacing the previous one. ``refresh=false`` with a clustering of ``n_clusters`` clusters
already there fits nothing: only the documents without a label get their nearest
centroid (the way to label documents with centroids one inserted, too).

Idempotent: a retried job draws the same seed (from its job id when ``random_state`` is
not given), so it finds the same clustering and overwrites its own labels; documents that
already carry their label are not rewritten.

Each step is one transaction of :class:`~taskloom.services.clustering.Clusterings` (read the
clustering, read the vectors, store the centroids, one per label batch, the sizes), and each
looks the dataset up in its own transaction: a long fit must not hold a transaction open,
and every write re-reads (and locks) the dataset row it changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from taskloom.errors import Invalid
from taskloom.jobs.progress import Progress
from taskloom.scope import Scope
from taskloom.services.clustering import Clustering, Clusterings, cluster_name

LABEL_BATCH = 20_000  # documents per label-writing transaction


@dataclass(frozen=True)
class ClusterSpec:
    """What to cluster and how (the ``cluster`` kind's params, checked)."""

    vector_field: str
    n_clusters: int
    n_iter: int = 10
    n_init: int = 5
    alias: str = "default"
    refresh: bool = False
    random_state: int | None = None

    def recorded(self) -> dict[str, Any]:
        """The params stored with the clustering (``refresh`` is how, not what)."""
        out = asdict(self)
        del out["refresh"]
        return out


@dataclass(frozen=True)
class _Target:
    scope: Scope
    dataset: str
    job_id: str
    progress: Progress
    spec: ClusterSpec


class ClusterRuns:
    """Runs a clustering of one dataset's vector field for a job."""

    def __init__(self, clusterings: Clusterings) -> None:
        self.clusterings = clusterings

    def run(
        self, scope: Scope, dataset: str, *, job_id: str, progress: Progress, spec: ClusterSpec
    ) -> dict[str, Any]:
        """Fit (or only assign the unlabelled documents, see the module text); the result
        the job reports."""
        t = _Target(scope, dataset, job_id, progress, spec)
        progress.progress(0.0, "reading the clustering")
        existing = self.clusterings.get(scope, dataset, spec.vector_field, spec.alias)
        if (
            existing is not None
            and not spec.refresh
            and existing.n_clusters == spec.n_clusters
            # an earlier attempt of this job stored it: fit again, as that attempt did
            and existing.info.get("job_id") != job_id
        ):
            return self._assign_new(t, existing)
        return self._fit(t)

    def _fit(self, t: _Target) -> dict[str, Any]:
        from taskloom.vectors.kmeans import KMeans  # faiss: loaded by the workers that need it

        spec, ctx, svc = t.spec, t.progress, self.clusterings
        ctx.progress(1.0, f"reading {spec.vector_field}")
        pks, x = svc.load_vectors(t.scope, t.dataset, spec.vector_field)
        if len(x) < spec.n_clusters:
            raise Invalid(
                f"{len(x)} documents have {spec.vector_field}; too few for "
                f"{spec.n_clusters} clusters",
                code="too_few_documents",
                field="params.n_clusters",
            )
        seed = spec.random_state
        if seed is None:  # the same for every attempt of this job
            seed = int.from_bytes(hashlib.sha256(t.job_id.encode()).digest()[:7], "big")
        total = spec.n_init * spec.n_iter

        def step(run: int, it: int, inertia: float) -> None:
            done = run * spec.n_iter + it
            ctx.progress(10.0 + 60.0 * done / total, f"run {run + 1}/{spec.n_init}, iteration {it}")

        ctx.progress(10.0, f"k-means: {len(x)} points, {spec.n_clusters} clusters")
        km = KMeans(spec.n_clusters, n_iter=spec.n_iter, n_init=spec.n_init, random_state=seed).fit(
            x, callback=step
        )
        del x
        sizes = [int(s) for s in km.sizes_]
        info = {
            "inertia": km.inertia_,
            "sizes": sizes,
            "n_documents": len(pks),
            "n_iter": km.n_iter_,
            "random_state": seed,
            "job_id": t.job_id,
        }
        ctx.progress(70.0, "storing the centroids")
        names = [cluster_name(i) for i in range(spec.n_clusters)]
        svc.save(
            t.scope,
            t.dataset,
            spec.vector_field,
            spec.alias,
            params=spec.recorded(),
            info=info,
            cluster_ids=names,
            centers=km.cluster_centers_,
            sizes=sizes,
        )
        written = self._write(t, pks, [names[i] for i in km.labels_], 70.0)
        return {
            "n_clusters": spec.n_clusters,
            "inertia": km.inertia_,
            "sizes": sizes,
            "n_documents": len(pks),
            "n_iter": km.n_iter_,
            "labels_written": written,
            "refit": True,
        }

    def _assign_new(self, t: _Target, existing: Clustering) -> dict[str, Any]:
        from taskloom.vectors.kmeans import assign

        spec, ctx, svc = t.spec, t.progress, self.clusterings
        ctx.progress(1.0, "reading the documents without a label")
        pks, x = svc.load_vectors(t.scope, t.dataset, spec.vector_field, unlabelled=spec.alias)
        info = dict(existing.info)
        if len(pks):
            ctx.progress(10.0, f"assigning {len(pks)} documents to the nearest centroid")
            labels, dist = assign(x, existing.centers)
            del x
            names = existing.cluster_ids
            self._write(t, pks, [names[i] for i in labels], 10.0)
            if isinstance(info.get("inertia"), int | float):
                info["inertia"] = info["inertia"] + float(dist.sum(dtype=np.float64))
            info["n_documents"] = int(info.get("n_documents") or 0) + len(pks)
        info["assigned_by"] = t.job_id
        sizes = svc.update_sizes(t.scope, t.dataset, spec.vector_field, spec.alias, info)
        info["sizes"] = [sizes[n] for n in existing.cluster_ids]
        return {
            "n_clusters": existing.n_clusters,
            "inertia": info.get("inertia"),
            "sizes": info["sizes"],
            "assigned": len(pks),
            "refit": False,
        }

    def _write(self, t: _Target, pks: np.ndarray, labels: list[str], start: float) -> int:
        """Labels in batches (one transaction each), progress and a cancel check between."""
        written = 0
        for i in range(0, len(pks), LABEL_BATCH):
            t.progress.progress(
                start + (99.0 - start) * i / len(pks), f"writing labels {i}/{len(pks)}"
            )
            written += self.clusterings.write_labels(
                t.scope,
                t.dataset,
                t.spec.vector_field,
                t.spec.alias,
                pks[i : i + LABEL_BATCH],
                labels[i : i + LABEL_BATCH],
            )
        return written
