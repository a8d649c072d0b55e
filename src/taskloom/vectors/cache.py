"""The in-process cache of vector indexes, one per (dataset, field, metric, kind).

``get`` answers an index that holds exactly the vectors the database holds now:

* the change token (``versions``) has not moved since the entry was synced: use it;
* it moved: compare the dataset's documents with the state the entry was built from, load
  the vectors of the documents that changed, and make a new snapshot of the index with
  them (``FaissIndex.updated``; the base is rebuilt from memory when the changes pile up);
  documents whose vectors did not change (a cluster job wrote labels, say) cost nothing;
* no entry yet: load the field (``vectors.store.load_field``) and build.

One thread builds or syncs a given entry at a time; searches on the previous snapshot go on
meanwhile. Entries are evicted least recently used first beyond ``max_bytes``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from taskloom.store.engine import Store
from taskloom.store.tables import vectors
from taskloom.vectors.faiss_index import FaissIndex, HNSWParams, prepare
from taskloom.vectors.store import FieldVectors, load_field
from taskloom.vectors.versions import ChangeToken, DocState, document_state

Key = tuple[int, str, str, str]  # dataset id, field, metric, kind


@dataclass
class _Entry:
    index: FaissIndex
    state: DocState
    token: Any


class IndexCache:
    def __init__(
        self,
        store: Store,
        *,
        max_bytes: int = 4 << 30,
        hnsw: HNSWParams | None = None,
        hnsw_threshold: int = 1_000_000,
    ) -> None:
        self.tokens = ChangeToken(store)
        self.max_bytes = max_bytes
        self.hnsw = hnsw or HNSWParams()
        self.hnsw_threshold = hnsw_threshold
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._states: dict[int, tuple[Any, DocState]] = {}
        self._key_locks: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "syncs": 0, "builds": 0, "updates": 0}

    def token(self, conn: Connection) -> Any:
        """Read first in a search's transaction (see ``versions``)."""
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
        if entry is not None and token is not None and entry.token == token:
            self.stats["hits"] += 1
            return entry.index
        with self._key_lock(key):
            entry = self._touch(key)
            if entry is not None and token is not None and entry.token == token:
                self.stats["hits"] += 1
                return entry.index
            state = self._state(conn, token, dataset_id)
            if entry is None or entry.index.dim != dim:
                index = self._build(conn, dataset_id, field, metric, kind, dim)
            else:
                index = self._sync(conn, entry, state, dataset_id, field)
            with self._lock:
                self._entries[key] = _Entry(index, state, token)
                self._entries.move_to_end(key)
                self._evict(keep=key)
            return index

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
        """The dataset's documents, read once per token for all its indexes."""
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
        index = entry.index
        changed, gone = entry.state.diff(state)
        if not changed.size and not gone.size:
            return index
        if changed.size * 2 > len(state):
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
        remove = np.intersect1d(remove, index.pks, assume_unique=True)
        if not remove.size and not add.any():
            return index
        self.stats["updates"] += 1
        updated = index.updated(remove, new_pks[add], new_raw[add])
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
