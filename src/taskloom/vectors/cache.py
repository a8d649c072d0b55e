"""The in-process cache of vector indexes, one per (dataset, field, metric, kind).

``get`` answers an index that holds exactly the vectors the database holds now:

* the dataset's ``data_version`` (bumped in the transaction of every write to its documents
  or vectors) is the one the entry was synced at: use it;
* it moved, and every write since was one of this process's (``vectors.changes``): load
  the vectors of the documents those writes touched, and nothing else;
* it moved otherwise: compare the dataset's documents with the state the entry was last
  compared with, load the vectors of the documents that changed;
* either way, and make a new snapshot of the index with
  them (``FaissIndex.updated``; the base is rebuilt from memory when the changes pile up);
  documents whose vectors did not change (a cluster job wrote labels, say) cost nothing;
* no entry yet: load the field (``vectors.store.load_field``) and build.

An HNSW index takes minutes to build on a large field, far too long for a request to wait:
it is built by a background thread (``build``, started by the first search that wants it or
by ``POST /v1/datasets/{id}/indexes``), and until it is ready ``get`` answers with the
exact flat index of the same field instead (so an answer is never worse, only slower). Once
built, it is synced with later writes like any entry.

One thread builds or syncs a given entry at a time; searches on the previous snapshot go on
meanwhile. Entries are evicted least recently used first beyond ``max_bytes``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from taskloom.store.engine import Store
from taskloom.store.tables import datasets, vectors
from taskloom.vectors.changes import ChangeJournal
from taskloom.vectors.faiss_index import FaissIndex, HNSWParams, prepare
from taskloom.vectors.store import FieldVectors, load_field
from taskloom.vectors.versions import ChangeToken, DocState, document_state

Key = tuple[int, str, str, str]  # dataset id, field, metric, kind
_NONE = np.empty(0, np.int64)
_RECENT = 32  # older versions' indexes kept per entry


def _older(token: Any, than: Any) -> bool:
    return isinstance(token, int) and isinstance(than, int) and token < than


log = logging.getLogger(__name__)


@dataclass
class _Entry:
    index: FaissIndex
    state: DocState
    token: Any
    built_at: float = field(default_factory=time.time)
    # indexes of the versions just before ``token``, for searches that began before the
    # last sync (they share the base with ``index``: a mask and a small delta each)
    recent: dict[Any, FaissIndex] = field(default_factory=dict)

    def keep(self, token: Any, index: FaissIndex) -> None:
        self.recent[token] = index
        while len(self.recent) > _RECENT:
            del self.recent[next(iter(self.recent))]


@dataclass
class _Build:
    """A background build of one index."""

    thread: threading.Thread
    started_at: float = field(default_factory=time.time)
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class IndexCache:
    def __init__(
        self,
        store: Store,
        *,
        background: bool = True,
        max_bytes: int = 4 << 30,
        hnsw: HNSWParams | None = None,
        hnsw_threshold: int = 1_000_000,
        journal: ChangeJournal | None = None,
    ) -> None:
        """``journal``: the writes of this process, noted by the document service; without
        it every change compares the dataset's documents."""
        self.store = store
        self.journal = journal
        self.tokens = ChangeToken(store)
        self.background = background
        self._builds: dict[Key, _Build] = {}
        self._failed: dict[Key, tuple[float, str]] = {}
        self.max_bytes = max_bytes
        self.hnsw = hnsw or HNSWParams()
        self.hnsw_threshold = hnsw_threshold
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._states: dict[int, tuple[Any, DocState]] = {}
        self._key_locks: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "syncs": 0, "builds": 0, "updates": 0, "journal": 0}
        if journal is not None:
            journal.follow(self._follow)

    def token(self, conn: Connection) -> Any:
        """The database-wide change token, read first in a search's transaction (see
        ``versions``); the search service uses it to skip looking the dataset up again."""
        return self.tokens.read(conn)

    # -- choosing the kind ----------------------------------------------------------------

    def resolve_kind(self, conn: Connection, dataset_id: int, field: str, kind: str) -> str:
        """``auto`` becomes ``hnsw`` for fields of at least ``hnsw_threshold`` vectors (the
        size an index of this field last had, or a count), else ``flat``."""
        if kind != "auto":
            return kind
        with self._lock:
            sizes = [len(e.index) for k, e in self._entries.items() if k[:2] == (dataset_id, field)]
        if sizes:
            n = max(sizes)
        else:
            n = conn.execute(
                select(func.count())
                .select_from(vectors)
                .where(vectors.c.dataset_id == dataset_id, vectors.c.field == field)
            ).scalar_one()
        return "hnsw" if n >= self.hnsw_threshold else "flat"

    # -- the index ---------------------------------------------------------------------------

    def get(
        self,
        conn: Connection,
        token: Any,
        dataset_id: int,
        field: str,
        metric: str,
        kind: str,
        dim: int,
    ) -> FaissIndex:
        key: Key = (dataset_id, field, metric, kind)
        entry = self._touch(key)
        if kind == "hnsw" and self.background and (entry is None or entry.index.dim != dim):
            # not built yet: build it in the background, answer exactly meanwhile
            self.build(dataset_id, field, metric, kind, dim)
            return self.get(conn, token, dataset_id, field, metric, "flat", dim)
        recent = self._recent(entry, token)
        journal = self.journal
        if recent is None and entry is not None and journal and _older(entry.token, token):
            # a write of this process that is noting itself brings the index up to date in
            # its own thread (``_follow``): wait for that, not for a lock
            journal.settle(dataset_id, entry.token, token)
            entry = self._touch(key)
            recent = self._recent(entry, token)
        if recent is not None:
            self.stats["hits"] += 1
            return recent
        with self._key_lock(key):
            entry = self._touch(key)
            recent = self._recent(entry, token)
            if recent is not None:
                self.stats["hits"] += 1
                return recent
            # a search whose transaction began before the entry's last sync sees an older
            # version: it gets an index of that version, and the entry stays as it is
            back = _older(token, entry.token) if entry is not None else False
            touched = known = None
            if entry is not None and entry.index.dim == dim and self.journal is not None:
                if not back:
                    known = self.journal.changes(dataset_id, entry.token, token, field, dim)
                if known is None:
                    span = (token, entry.token) if back else (entry.token, token)
                    touched = self.journal.touched(dataset_id, *span)
            if known is not None:
                # only this process wrote since, and the journal has the vectors it wrote:
                # the index follows from memory, without a query
                assert entry is not None
                self.stats["syncs"] += 1
                self.stats["journal"] += 1
                state = entry.state
                index = self._apply_known(entry.index, *known)
            elif touched is not None:
                # only this process wrote between the two versions: those documents are all
                # that changed. The state stays the one last compared: a later comparison
                # finds these documents changed too, and their vectors already indexed
                assert entry is not None
                self.stats["syncs"] += 1
                self.stats["journal"] += 1
                state = entry.state
                index = self._apply(conn, entry.index, touched, _NONE, dataset_id, field)
            elif back:
                assert entry is not None
                state = document_state(conn, dataset_id)
                index = self._sync(conn, entry, state, dataset_id, field)
            else:
                state = self._state(conn, token, dataset_id)
                if entry is None or entry.index.dim != dim:
                    index = self._build(conn, dataset_id, field, metric, kind, dim)
                else:
                    index = self._sync(conn, entry, state, dataset_id, field)
            with self._lock:
                if back:
                    assert entry is not None
                    entry.keep(token, index)
                    return index
                new = _Entry(index, state, token)
                if entry is not None and entry.index.dim == dim:
                    # searches still reading the version before find its index
                    new.recent = dict(entry.recent)
                    new.keep(entry.token, entry.index)
                self._entries[key] = new
                self._entries.move_to_end(key)
                self._evict(keep=key)
            return index

    def _follow(self, dataset_id: int, version: int) -> None:
        """A write of this process committed ``version`` of the dataset: bring the indexes
        that were current just before up to date from the vectors it wrote, in the writing
        thread, so that searches of the new version find them ready instead of queueing
        for one of them to sync (under load, handing a lock from thread to thread waits on
        the GIL each time). An index busy with a search's sync is left to that search."""
        assert self.journal is not None
        with self._lock:
            keys = [
                k
                for k, e in self._entries.items()
                if k[0] == dataset_id and isinstance(e.token, int) and e.token == version - 1
            ]
        for key in keys:
            lock = self._key_lock(key)
            if not lock.acquire(blocking=False):
                continue
            try:
                entry = self._touch(key)
                if entry is None or entry.token != version - 1:
                    continue
                known = self.journal.changes(
                    dataset_id, version - 1, version, key[1], entry.index.dim
                )
                if known is None:
                    continue
                self.stats["syncs"] += 1
                self.stats["journal"] += 1
                index = self._apply_known(entry.index, *known)
                with self._lock:
                    new = _Entry(index, entry.state, version)
                    new.recent = dict(entry.recent)
                    new.keep(entry.token, entry.index)
                    if key in self._entries:
                        self._entries[key] = new
            finally:
                lock.release()

    @staticmethod
    def _recent(entry: _Entry | None, token: Any) -> FaissIndex | None:
        """The entry's index of version ``token``, if it has one."""
        if entry is None or token is None:
            return None
        if entry.token == token:
            return entry.index
        return entry.recent.get(token)

    def build(
        self, dataset_id: int, field: str, metric: str, kind: str, dim: int, *, wait: bool = False
    ) -> bool:
        """Build the index ``(dataset_id, field, metric, kind)`` in a background thread unless
        it is built or being built; with ``wait``, return once it is ready. True when the
        index is ready (False: still building, or the build failed: see ``status``)."""
        key: Key = (dataset_id, field, metric, kind)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.index.dim == dim:
                return True
            job = self._builds.get(key)
            if job is None:
                self._failed.pop(key, None)
                thread = threading.Thread(
                    target=self._build_in_background,
                    args=(key, dim),
                    name=f"taskloom-index-{dataset_id}-{field}-{kind}",
                    daemon=True,
                )
                job = self._builds[key] = _Build(thread)
                thread.start()
        if wait:
            job.done.wait()
            with self._lock:
                return key in self._entries
        return False

    def status(self, dataset_id: int) -> list[dict[str, Any]]:
        """The dataset's indexes: ready ones, those being built, and failed builds."""
        out: list[dict[str, Any]] = []
        with self._lock:
            for (ds, fld, metric, kind), entry in self._entries.items():
                if ds == dataset_id:
                    out.append(
                        {
                            "vector_field": fld,
                            "metric": metric,
                            "index": kind,
                            "status": "ready",
                            "size": len(entry.index),
                            "bytes": entry.index.nbytes,
                            "since": entry.built_at,
                        }
                    )
            for (ds, fld, metric, kind), job in self._builds.items():
                if ds == dataset_id:
                    out.append(
                        {
                            "vector_field": fld,
                            "metric": metric,
                            "index": kind,
                            "status": "building",
                            "since": job.started_at,
                        }
                    )
            for (ds, fld, metric, kind), (at, error) in self._failed.items():
                if ds == dataset_id:
                    out.append(
                        {
                            "vector_field": fld,
                            "metric": metric,
                            "index": kind,
                            "status": "failed",
                            "since": at,
                            "error": error,
                        }
                    )
        return sorted(out, key=lambda e: (e["vector_field"], e["metric"], e["index"]))

    def _build_in_background(self, key: Key, dim: int) -> None:
        dataset_id, field, metric, kind = key
        job = self._builds[key]
        try:
            with self.store.read() as conn:
                # the version first, as a search reads it: later commits move it past this
                token = conn.execute(
                    select(datasets.c.data_version).where(datasets.c.id == dataset_id)
                ).scalar()
                state = document_state(conn, dataset_id)
                fv = load_field(conn, dataset_id, field)
            index = FaissIndex.build(metric, kind, dim, fv.pks, _matrix(fv, dim), self.hnsw)
            self.stats["builds"] += 1
            with self._lock:
                self._entries[key] = _Entry(index, state, token)
                self._entries.move_to_end(key)
                self._evict(keep=key)
        except Exception as exc:  # a search falls back to exact; status shows why
            log.exception("building the %s index of %s failed", kind, field)
            with self._lock:
                self._failed[key] = (time.time(), f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._builds.pop(key, None)
            job.done.set()

    def clear(self) -> None:
        """Forget every index."""
        with self._lock:
            self._entries.clear()
            self._states.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(e.index.nbytes for e in self._entries.values())

    # -- internals -------------------------------------------------------------------------

    def _touch(self, key: Key) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def _key_lock(self, key: Key) -> threading.Lock:
        with self._lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def _state(self, conn: Connection, token: Any, dataset_id: int) -> DocState:
        """The dataset's documents, read once per data version for all its indexes."""
        with self._lock:
            memo = self._states.get(dataset_id)
        if memo is not None and token is not None and memo[0] == token:
            return memo[1]
        state = document_state(conn, dataset_id)
        with self._lock:
            self._states[dataset_id] = (token, state)
        return state

    def _build(
        self, conn: Connection, dataset_id: int, field: str, metric: str, kind: str, dim: int
    ) -> FaissIndex:
        self.stats["builds"] += 1
        fv = load_field(conn, dataset_id, field)
        matrix = _matrix(fv, dim)
        return FaissIndex.build(metric, kind, dim, fv.pks, matrix, self.hnsw)

    def _sync(
        self, conn: Connection, entry: _Entry, state: DocState, dataset_id: int, field: str
    ) -> FaissIndex:
        self.stats["syncs"] += 1
        changed, gone = entry.state.diff(state)
        return self._apply(conn, entry.index, changed, gone, dataset_id, field)

    def _apply(
        self,
        conn: Connection,
        index: FaissIndex,
        changed: np.ndarray,
        gone: np.ndarray,
        dataset_id: int,
        field: str,
    ) -> FaissIndex:
        """``index`` with the documents ``changed`` (new, changed, or perhaps deleted or
        without the field now) read again and ``gone`` (deleted) left out."""
        if not changed.size and not gone.size:
            return index
        if changed.size * 2 > len(index) + 1024:
            fv = load_field(conn, dataset_id, field)
            keep = np.isin(fv.pks, changed, assume_unique=True)
            new_pks, new_raw = fv.pks[keep], _matrix(fv, index.dim)[keep]
        else:
            fv = load_field(conn, dataset_id, field, pks=changed.tolist())
            new_pks, new_raw = fv.pks, _matrix(fv, index.dim)
        # vectors that a write left as they were need no change in the index
        unchanged = _unchanged(index, new_pks, new_raw)
        add = ~np.isin(new_pks, unchanged, assume_unique=True)
        remove = np.union1d(gone, np.setdiff1d(changed, unchanged, assume_unique=True))
        remove = remove[index.contains(remove)]
        if not remove.size and not add.any():
            return index
        self.stats["updates"] += 1
        updated = index.updated(remove, new_pks[add], new_raw[add])
        return updated.compacted() if updated.needs_compaction() else updated

    def _apply_known(
        self, index: FaissIndex, set_pks: np.ndarray, raw: np.ndarray, gone: np.ndarray
    ) -> FaissIndex:
        """``index`` with the vectors ``raw`` of ``set_pks`` and without ``gone``."""
        unchanged = _unchanged(index, set_pks, raw) if set_pks.size else _NONE
        add = ~np.isin(set_pks, unchanged, assume_unique=True)
        remove = gone[index.contains(gone)] if gone.size else _NONE
        if not remove.size and not add.any():
            return index
        self.stats["updates"] += 1
        updated = index.updated(remove, set_pks[add], raw[add])
        return updated.compacted() if updated.needs_compaction() else updated

    def _evict(self, keep: Key) -> None:
        total = sum(e.index.nbytes for e in self._entries.values())
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            if key == keep:
                continue
            total -= self._entries.pop(key).index.nbytes


def _unchanged(index: FaissIndex, pks: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The keys among ``pks`` whose vector in ``raw`` is the one the index holds (compared
    as stored, a block at a time to bound the copies)."""
    out = []
    for start in range(0, pks.size, 16_384):
        block = pks[start : start + 16_384]
        old_pks, old_rows = index.vectors(block)
        new_rows = prepare(index.metric, raw[start : start + 16_384])
        _, i_old, i_new = np.intersect1d(old_pks, block, assume_unique=True, return_indices=True)
        same = (old_rows[i_old] == new_rows[i_new]).all(axis=1)
        out.append(old_pks[i_old[same]])
    return np.concatenate(out) if out else np.empty(0, np.int64)


def _matrix(fv: FieldVectors, dim: int) -> np.ndarray:
    if len(fv) == 0:
        return np.empty((0, dim), dtype=np.float32)
    if fv.matrix.shape[1] != dim:
        # the schema says one dimension, stored vectors another: never mix them silently
        raise ValueError(f"stored vectors have {fv.matrix.shape[1]} dimensions, not {dim}")
    return fv.matrix
