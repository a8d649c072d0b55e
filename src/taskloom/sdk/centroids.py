"""A clustering's centroids from the SDK (``ds.centroids(vector_field)``)."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskloom.sdk.client import Dataset


def query_vector(vector: Any) -> Any:
    """numpy arrays travel as exact float32 (``{"$f32": base64}``); anything else as is."""
    import numpy as np

    if isinstance(vector, np.ndarray):
        import base64

        raw = np.ascontiguousarray(vector, dtype="<f4").reshape(-1).tobytes()
        return {"$f32": base64.b64encode(raw).decode()}
    return vector


class Centroids:
    """A clustering of a dataset's vector field: its centroids, its clusters' documents.

        ds.client.jobs.submit("cluster", dataset=ds.name,
                              params={"vector_field": "emb_vector_", "n_clusters": 8}).wait()
        cents = ds.centroids("emb_vector_")
        cents.closest(k=3)          # the 3 documents nearest each centroid

    Scores (``_score``) are "higher is closer" under every metric (minus the distance for
    ``l2`` and ``l1``), as in ``Dataset.search``.
    """

    def __init__(self, dataset: Dataset, vector_field: str, alias: str = "default") -> None:
        self.dataset = dataset
        self.client = dataset.client
        self.vector_field = vector_field
        self.alias = alias
        self._base = f"{dataset._base}/centroids"
        self._ref = {"vector_field": vector_field, "alias": alias}

    def __repr__(self) -> str:
        return f"Centroids({self.dataset.name!r}, {self.vector_field!r}, alias={self.alias!r})"

    def _post(self, path: str, **body: Any) -> Any:
        return self.client.request("POST", f"{self._base}/{path}", json={**self._ref, **body})

    def _get(self, path: str = "", **params: Any) -> Any:
        url = f"{self._base}/{path}" if path else self._base
        return self.client.request("GET", url, params={**self._ref, **params})

    def list(
        self, *, page_size: int = 5, cursor: str | None = None, include_vector: bool = False
    ) -> dict[str, Any]:
        """One page of centroids in order: ``{"data": [{"_id", "size", ...}], "count",
        "cursor"}``; pass ``cursor`` back for the next page."""
        params: dict[str, Any] = {"page_size": page_size, "include_vector": include_vector}
        if cursor:
            params["cursor"] = cursor
        return self._get(**params)

    def iter(self, *, include_vector: bool = False, page_size: int = 100) -> Iterator[dict]:
        """Every centroid, one page in memory at a time."""
        cursor: str | None = None
        while True:
            page = self.list(page_size=page_size, cursor=cursor, include_vector=include_vector)
            yield from page["data"]
            cursor = page["cursor"]
            if cursor is None:
                return

    def get(
        self, cluster_ids: builtins.list[str], *, include_vector: bool = True
    ) -> builtins.list[dict[str, Any]]:
        """The centroids ``cluster_ids`` in that order (``NotFound`` for an unknown one)."""
        return self._post("get", cluster_ids=cluster_ids, include_vector=include_vector)["data"]

    def insert(self, cluster_centers: Any) -> dict[str, Any]:
        """Make one's own centers this clustering (replacing it): ``{cluster_id: vector}``,
        ``[{"_id": "cluster-0", "<vector_field>": [...]}, ...]`` or a list of vectors.
        A ``cluster`` job with ``refresh=False`` then labels the unlabelled documents."""
        if isinstance(cluster_centers, dict):
            centers: Any = {str(k): query_vector(v) for k, v in cluster_centers.items()}
        elif isinstance(cluster_centers, builtins.list):
            centers = [
                {k: query_vector(v) for k, v in c.items()}
                if isinstance(c, dict)
                else query_vector(c)
                for c in cluster_centers
            ]
        else:  # a 2-d numpy array
            centers = [query_vector(row) for row in cluster_centers]
        return self._post("insert", cluster_centers=centers)

    def documents(
        self,
        cluster_ids: builtins.list[str],
        *,
        metric: str = "cosine",
        page: int = 1,
        page_size: int = 20,
        cursor: str | None = None,
        include_vector: bool = False,
        select: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        """One page of each cluster's documents, closest to the centroid first:
        ``{"data": [{"cluster_id", "count", "documents"}], "metric", "cursor"}``."""
        return self._post(
            "documents",
            cluster_ids=cluster_ids,
            metric=metric,
            page=page,
            page_size=page_size,
            cursor=cursor,
            include_vector=include_vector,
            select=select,
        )

    def closest(
        self,
        cluster_ids: builtins.list[str] | None = None,
        *,
        k: int = 5,
        metric: str = "cosine",
        include_vector: bool = False,
        select: builtins.list[str] | None = None,
    ) -> dict[str, builtins.list[dict[str, Any]]]:
        """``{cluster_id: [the k documents closest to its centroid]}`` (every cluster when
        ``cluster_ids`` is None)."""
        res = self._post(
            "closest",
            cluster_ids=cluster_ids,
            k=k,
            metric=metric,
            include_vector=include_vector,
            select=select,
        )
        return {g["cluster_id"]: g["documents"] for g in res["data"]}

    def furthest(
        self,
        cluster_ids: builtins.list[str] | None = None,
        *,
        k: int = 5,
        metric: str = "cosine",
        include_vector: bool = False,
        select: builtins.list[str] | None = None,
    ) -> dict[str, builtins.list[dict[str, Any]]]:
        """``{cluster_id: [the k documents furthest from its centroid]}``."""
        res = self._post(
            "furthest",
            cluster_ids=cluster_ids,
            k=k,
            metric=metric,
            include_vector=include_vector,
            select=select,
        )
        return {g["cluster_id"]: g["documents"] for g in res["data"]}

    def sizes(self) -> dict[str, int]:
        """Documents per cluster now."""
        return self._get("sizes")["data"]

    def info(self) -> dict[str, Any]:
        """The clustering: ``params``, ``info`` (inertia, sizes...), ``metadata``."""
        return self._get("info")

    def metadata(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """The clustering's metadata; given ``metadata``, replace it (and return it)."""
        return self._post("metadata", metadata=metadata)["metadata"]

    def delete(self, *, clear_labels: bool = False) -> dict[str, Any]:
        """Forget the clustering; documents keep their labels unless ``clear_labels``."""
        params = {**self._ref, "clear_labels": "true" if clear_labels else "false"}
        out: dict[str, Any] = self.client.request("DELETE", self._base, params=params)
        return out
