"""``taskloom.Client``: talk to a server (``url=``) or run one in-process (``path=``).

    c = Client()                                          # the server on 127.0.0.1:8000
    c = Client(url="http://127.0.0.1:8000", api_key=KEY)   # a server, a key
    c = Client(path="./data")                             # embedded, no server at all

Both run the same FastAPI app and give the same results. Without ``api_key=`` a client
for a server looks where the CLI looks (``sdk/credentials.py``): ``TASKLOOM_API_KEY``, then
the ``credentials.json`` that ``taskloom serve`` wrote in ``data_dir=`` (default
``TASKLOOM_DATA_DIR``, else ``./taskloom-data``). A 401 says where it looked.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from taskloom import wire
from taskloom.errors import TaskloomError, Unauthorized, Unavailable, error_for_status
from taskloom.sdk.blobs import Blobs
from taskloom.sdk.centroids import Centroids, query_vector
from taskloom.sdk.credentials import FoundKey, find_api_key
from taskloom.sdk.jobs import Jobs
from taskloom.sdk.progress import Bar

if TYPE_CHECKING:
    from taskloom.sdk.buckets import Buckets
    from taskloom.sdk.crowd import Crowd
    from taskloom.sdk.features import Features
    from taskloom.sdk.models import Models, TaskModels

DEFAULT_URL = "http://127.0.0.1:8000"
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass
class InsertResult:
    inserted: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class UpdateResult:
    updated: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)


class Client:
    """The taskloom client. See the module docstring."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        app_id: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        transport: httpx.BaseTransport | None = None,
        workers: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._platform: Any = None
        self._can_stream = True
        self._found_key: FoundKey | None = None
        if path is not None and url is not None:
            raise ValueError("give url= for a server or path= for embedded mode, not both")
        if path is not None:
            transport, api_key = self._start_embedded(Path(path), api_key, workers)
            url = "http://taskloom.embedded"
            self._can_stream = False
        else:
            # the same search as the CLI's: api_key=, TASKLOOM_API_KEY, credentials.json
            self._found_key = find_api_key(api_key, data_dir)
            api_key = self._found_key.key
        url = url or os.environ.get("TASKLOOM_URL") or DEFAULT_URL
        headers = {"User-Agent": "taskloom-python"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if app_id:
            headers["X-Taskloom-App"] = app_id
        self.url = url.rstrip("/")
        self.retries = retries
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
        )
        self.jobs = Jobs(self)

    def _start_embedded(
        self, path: Path, api_key: str | None, workers: int | None
    ) -> tuple[httpx.BaseTransport, str | None]:
        from taskloom.api.app import create_app
        from taskloom.config import Settings
        from taskloom.runtime import Platform, read_credentials
        from taskloom.sdk.transport import EmbeddedTransport

        settings = Settings(data_dir=path)
        platform = Platform(settings, workers=workers, lock="exclusive").start()
        self._platform = platform
        creds = read_credentials(path) or {}
        return EmbeddedTransport(create_app(platform)), api_key or creds.get("api_key")

    # -- plumbing ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        **kw: Any,
    ) -> Any:
        """One API call with retries on connection errors and 503; returns the JSON body."""
        headers = kw.pop("headers", {}) or {}
        if json is not None:
            content = orjson.dumps(json, option=_JSON_OPTS)
            headers["Content-Type"] = "application/json"
        elif content is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                resp = self._http.request(method, path, content=content, headers=headers, **kw)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if attempt >= self.retries:
                    raise Unavailable(f"cannot reach taskloom at {self.url}: {exc}") from exc
            else:
                if resp.status_code == 503 and attempt < self.retries:
                    pass
                elif resp.status_code >= 400:
                    try:
                        body = orjson.loads(resp.content)
                    except orjson.JSONDecodeError:
                        body = {"error": {"message": resp.text[:500]}}
                    raise self._explained(error_for_status(resp.status_code, body))
                else:
                    return orjson.loads(resp.content) if resp.content else None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise Unavailable(f"taskloom at {self.url} is unavailable")

    @property
    def api_key_source(self) -> str:
        """Where the API key came from (``api_key=``, ``TASKLOOM_API_KEY``, a credentials.json
        path); ``""`` when there is none or the client is embedded."""
        return self._found_key.source if self._found_key is not None else ""

    def _explained(self, exc: TaskloomError) -> TaskloomError:
        """A 401 says where the key came from, or where the client looked for one."""
        found = self._found_key
        if isinstance(exc, Unauthorized) and found is not None:
            if found.key is None:
                exc.message += f"; {found.missing()}"
            else:
                exc.message += f" (key from {found.source})"
            exc.args = (exc.message,)
        return exc

    def close(self) -> None:
        self._http.close()
        if self._platform is not None:
            transport = self._http._transport
            if hasattr(transport, "close"):
                transport.close()
            self._platform.stop()
            self._platform = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def crowd(self) -> Crowd:
        """Crowd labelling: projects, pools, tasks, assignments, workers (``sdk/crowd.py``)."""
        from taskloom.sdk.crowd import Crowd

        return Crowd(self)

    @property
    def buckets(self) -> Buckets:
        """Buckets: named areas of files (``put``, ``get``, ``ls``, ``create``...)."""
        from taskloom.sdk.buckets import Buckets

        return Buckets(self)

    @property
    def features(self) -> Features:
        """Feature tables: ``create_from_dataset``, ``create_from_file``, ``list``..."""
        from taskloom.sdk.features import Features

        return Features(self)

    @property
    def models(self) -> Models:
        """The model registry: ``list``, ``get``, ``versions``."""
        from taskloom.sdk.models import Models

        return Models(self)

    @property
    def task_models(self) -> TaskModels:
        """Task models: ``create``, ``wait``, ``predict``, ``batch_predict``, ``delete``..."""
        from taskloom.sdk.models import TaskModels

        return TaskModels(self)

    @property
    def blobs(self) -> Blobs:
        """The app's blob store: ``put``, ``get``, ``download``, ``info``, ``delete``, ``list``."""
        return Blobs(self)

    # -- account -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/v1/health")

    def me(self) -> dict[str, Any]:
        return self.request("GET", "/v1/me")

    def list_apps(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/apps")["data"]

    def create_app(self, name: str) -> dict[str, Any]:
        return self.request("POST", "/v1/apps", json={"name": name})

    def create_key(
        self, name: str = "key", app_id: str | None = None, *, hmac: bool = False
    ) -> dict[str, Any]:
        """A new API key; the secret is in ``["api_key"]`` and is shown only once.

        ``hmac=True`` adds an NCP pair, ``["ncp_access_key"]`` and ``["ncp_secret_key"]``
        (for the NCLUE front door; sign with ``taskloom.sdk.ncp.NcpSigner``)."""
        body: dict[str, Any] = {"name": name, "app_id": app_id}
        if hmac:
            body["hmac"] = True
        return self.request("POST", "/v1/keys", json=body)

    def list_keys(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/keys")["data"]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/v1/keys/{key_id}")

    def create_user(self, name: str, app_name: str = "default") -> dict[str, Any]:
        """Admin only: a user with an app and a key limited to it."""
        return self.request("POST", "/v1/users", json={"name": name, "app_name": app_name})

    # -- datasets --------------------------------------------------------------------------

    def create_dataset(self, name: str) -> Dataset:
        self.request("POST", "/v1/datasets", json={"name": name})
        return Dataset(self, name)

    def dataset(self, name: str) -> Dataset:
        """A handle on an existing dataset (no request is made)."""
        return Dataset(self, name)

    def list_datasets(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/datasets")["data"]

    def delete_dataset(self, name: str) -> None:
        self.request("DELETE", f"/v1/datasets/{name}")


class Dataset:
    """A dataset's documents. Writes are batched; reads page with cursors."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self._base = f"/v1/datasets/{name}"

    def __repr__(self) -> str:
        return f"Dataset({self.name!r})"

    def info(self) -> dict[str, Any]:
        return self.client.request("GET", self._base)

    def schema(self) -> dict[str, Any]:
        return self.client.request("GET", f"{self._base}/schema")

    def centroids(self, vector_field: str, alias: str = "default") -> Centroids:
        """The clustering of ``vector_field`` named ``alias`` (made by a ``cluster`` job or
        by ``Centroids.insert``); no request is made."""
        return Centroids(self, vector_field, alias)

    def insert(
        self,
        documents: Iterable[dict[str, Any]],
        *,
        batch_size: int = 1000,
        overwrite: bool = True,
        skip_invalid: bool = False,
        progress: bool = False,
        concurrency: int = 2,
    ) -> InsertResult:
        """Insert documents in batches; each batch is written whole or not at all.

        Up to ``concurrency`` batches are in flight at once (the server validates one while
        it writes another); a batch that repeats an ``_id`` of a batch still in flight waits
        for it, so the last version of a document always wins. Without ``skip_invalid`` an
        invalid batch raises ``Invalid`` (its ``details`` list the failures) and batches
        already sent stay written.
        """
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        out = InsertResult()
        bar = Bar("inserting", progress)
        path = f"{self._base}/documents"
        in_flight: dict[Future[Any], tuple[int, int, set[Any]]] = {}

        def send(batch: list[Any], start: int) -> Any:
            body = {"documents": batch, "overwrite": overwrite, "skip_invalid": skip_invalid}
            try:
                return self.client.request(
                    "POST", path, content=wire.encode(body), content_type=wire.MEDIA_TYPE
                )
            except TaskloomError as exc:
                _shift_failures(exc, start)
                raise

        def collect(fut: Future[Any]) -> None:
            offset, size, _ = in_flight.pop(fut)
            res = fut.result()
            out.inserted += res["inserted"]
            for f in res["failed"]:
                f["index"] += offset
                out.failed.append(f)
            bar.advance(size)

        offset = 0
        try:
            with ThreadPoolExecutor(max(1, concurrency)) as pool:
                for batch in _batches(documents, batch_size):
                    ids = {d.get("_id") for d in batch if isinstance(d, dict)} - {None}
                    while in_flight and (
                        len(in_flight) >= max(1, concurrency)
                        or any(ids & other for _, _, other in in_flight.values())
                    ):
                        done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                        for fut in done:
                            collect(fut)
                    in_flight[pool.submit(send, batch, offset)] = (offset, len(batch), ids)
                    offset += len(batch)
                while in_flight:
                    collect(next(iter(in_flight)))
        finally:
            for fut in list(in_flight):
                fut.cancel()
            bar.close()
        out.failed.sort(key=lambda f: f["index"])
        return out

    def update(
        self,
        documents: Iterable[dict[str, Any]],
        *,
        batch_size: int = 1000,
        skip_invalid: bool = False,
    ) -> UpdateResult:
        """Merge each document's fields into the stored one (dotted keys set nested fields)."""
        out = UpdateResult()
        offset = 0
        for batch in _batches(documents, batch_size):
            body = {"documents": batch, "skip_invalid": skip_invalid}
            try:
                res = self.client.request(
                    "PATCH",
                    f"{self._base}/documents",
                    content=wire.encode(body),
                    content_type=wire.MEDIA_TYPE,
                )
            except TaskloomError as exc:
                _shift_failures(exc, offset)
                raise
            out.updated += res["updated"]
            for f in res["failed"]:
                f["index"] += offset
                out.failed.append(f)
            offset += len(batch)
        return out

    def get(self, doc_id: str, *, include_vector: bool = True) -> dict[str, Any]:
        return self.client.request(
            "GET",
            f"{self._base}/documents/{doc_id}",
            params={"include_vector": include_vector},
        )

    def bulk_get(
        self, ids: list[str], *, include_vector: bool = True, select: list[str] | None = None
    ) -> list[dict[str, Any]]:
        body = {"ids": ids, "include_vector": include_vector, "select": select}
        return self.client.request("POST", f"{self._base}/documents/get", json=body)["data"]

    def delete(self, ids: list[str] | None = None, *, filter: dict[str, Any] | None = None) -> int:
        body = {"ids": ids, "filter": filter}
        return self.client.request("POST", f"{self._base}/documents/delete", json=body)["deleted"]

    def count(self, filter: dict[str, Any] | None = None) -> int:
        return self.client.request(
            "POST", f"{self._base}/documents/count", json={"filter": filter}
        )["count"]

    def page(
        self,
        *,
        filter: dict[str, Any] | None = None,
        page_size: int = 100,
        cursor: str | None = None,
        include_vector: bool = True,
        select: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        body = {
            "filter": filter,
            "page_size": page_size,
            "cursor": cursor,
            "include_vector": include_vector,
            "select": select,
        }
        res = self.client.request("POST", f"{self._base}/documents/query", json=body)
        return res["data"], res["cursor"]

    def iter(
        self,
        *,
        filter: dict[str, Any] | None = None,
        page_size: int = 500,
        include_vector: bool = True,
        select: list[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every matching document, one page in memory at a time."""
        cursor: str | None = None
        while True:
            docs, cursor = self.page(
                filter=filter,
                page_size=page_size,
                cursor=cursor,
                include_vector=include_vector,
                select=select,
            )
            yield from docs
            if cursor is None:
                return

    def search(
        self,
        vector: Any = None,
        *,
        field: str | None = None,
        text: str | None = None,
        queries: list[dict[str, Any]] | None = None,
        metric: str = "cosine",
        top_k: int = 10,
        page: int = 1,
        filter: dict[str, Any] | None = None,
        select: list[str] | None = None,
        include_vector: bool = False,
        min_score: float | None = None,
        index: str = "auto",
        ef_search: int | None = None,
    ) -> list[dict[str, Any]]:
        """The documents nearest to ``vector`` (a list or numpy array) or ``text`` in the
        vector ``field``, best first: ``[{"_id", "_score", ...fields}]``.

        ``queries=[{"vector": ..., "field": ..., "weight": 0.7}, ...]`` sums weighted
        scores per document. Scores are "higher is better" under every ``metric``
        (``cosine``, ``dp``, and minus the distance for ``l2`` and ``l1``). ``page`` (from 1)
        pages through ``top_k`` at a time; a page past the last is empty.
        """
        body: dict[str, Any] = {
            "metric": metric,
            "top_k": top_k,
            "page": page,
            "filter": filter,
            "select": select,
            "include_vector": include_vector,
            "min_score": min_score,
            "index": index,
            "ef_search": ef_search,
        }
        if queries is not None:
            body["queries"] = [
                {**q, "vector": query_vector(q["vector"])} if "vector" in q else q for q in queries
            ]
        else:
            body["vector_field"] = field
            body["vector"] = query_vector(vector)
            body["text"] = text
        return self.client.request("POST", f"{self._base}/search", json=body)["data"]

    def build_index(
        self,
        field: str,
        *,
        metric: str = "cosine",
        index: str = "hnsw",
        wait: bool = True,
        poll_interval: float = 0.5,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Build a search index of the vector ``field`` on the server (an HNSW index of a
        large field takes minutes); with ``wait``, poll until it is ready. Searches asking
        for it are answered exactly until then. Returns the index's state."""
        body = {"vector_field": field, "metric": metric, "index": index}
        state: dict[str, Any] = self.client.request("POST", f"{self._base}/indexes", json=body)
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait and state["status"] == "building":
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the {index} index of {field} is still building")
            time.sleep(poll_interval)
            state = next(
                (
                    e
                    for e in self.indexes()
                    if (e["vector_field"], e["metric"], e["index"]) == (field, metric, index)
                ),
                {**body, "status": "evicted"},
            )
        if state["status"] == "failed":
            raise TaskloomError(f"building the {index} index failed: {state.get('error')}")
        return state

    def indexes(self) -> list[dict[str, Any]]:
        """The search indexes the server holds for this dataset, with their status."""
        out: list[dict[str, Any]] = self.client.request("GET", f"{self._base}/indexes")["data"]
        return out


# -- helpers ----------------------------------------------------------------------------------


def _shift_failures(exc: TaskloomError, offset: int) -> None:
    """Make a refused batch's failure indexes count from the start of the whole insert."""
    failed = exc.details.get("failed")
    if not offset or not isinstance(failed, list):
        return
    for f in failed:
        if isinstance(f, dict) and isinstance(f.get("index"), int):
            f["index"] += offset
    field = exc.details.get("field")
    if isinstance(field, str) and field.startswith("documents["):
        num, _, rest = field[len("documents[") :].partition("]")
        if num.isdigit():
            exc.details["field"] = exc.field = f"documents[{int(num) + offset}]{rest}"


def _batches(items: Iterable[Any], size: int) -> Iterator[builtins.list[Any]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    batch: builtins.list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
