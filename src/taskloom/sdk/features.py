"""``Client.features``: feature tables (``/v1/features``).

f = c.features.create_from_file("users", "training", "users.csv", "user_id")
f = c.features.create_from_dataset("users", "people", "_id", ["age", "emb_vector_"])
c.features.list(); c.features.get(f["id"]); c.features.delete(f["id"])
c.features.lookup(f["id"], ["u1", "u2"])   # {"columns", "rows": [{key, values}], "missing"}
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from taskloom.sdk.client import Client


class Features:
    """The feature tables of the client's app."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Features({self.client.url!r})"

    def _create(self, name: str, source: dict[str, Any], description: str | None) -> Any:
        body: dict[str, Any] = {"name": name, "source": source}
        if description is not None:
            body["description"] = description
        return self.client.request("POST", "/v1/features", json=body)

    def create_from_dataset(
        self,
        name: str,
        dataset: str,
        key_field: str = "_id",
        fields: builtins.list[str] | None = None,
        *,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A feature table of ``fields`` (numbers, booleans, vectors) of a dataset's documents,
        keyed by ``key_field``."""
        source = {"kind": "dataset", "dataset": dataset, "key_field": key_field, "fields": fields}
        return self._create(name, source, description)

    def create_from_file(
        self,
        name: str,
        bucket: str,
        path: str,
        key_column: str,
        *,
        columns: builtins.list[str] | None = None,
        format: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A feature table from a CSV, TSV or Parquet file in a bucket."""
        source: dict[str, Any] = {
            "kind": "file",
            "bucket": bucket,
            "path": path,
            "key_column": key_column,
        }
        if columns is not None:
            source["columns"] = columns
        if format is not None:
            source["format"] = format
        return self._create(name, source, description)

    def list(self) -> builtins.list[dict[str, Any]]:
        return self.client.request("GET", "/v1/features")["data"]

    def get(self, feature_id: str) -> dict[str, Any]:
        return self.client.request("GET", f"/v1/features/{quote(feature_id, safe='')}")

    def delete(self, feature_id: str) -> None:
        self.client.request("DELETE", f"/v1/features/{quote(feature_id, safe='')}")

    def lookup(self, feature_id: str, keys: builtins.list[str | int]) -> dict[str, Any]:
        """The rows of ``keys``: ``{"columns", "rows": [{"key", "values"}], "missing"}``."""
        return self.client.request(
            "POST", f"/v1/features/{quote(feature_id, safe='')}/lookup", json={"keys": keys}
        )
