"""Which documents each write of this process touched, by dataset and ``data_version``.

Every write to a dataset's documents bumps its ``data_version`` by one in the write's own
transaction, under the dataset's write lock (``store.lookups.lookup(lock=True)``), so the
versions of one dataset are consecutive integers. A writer of this process notes, once its
transaction has committed, the version it wrote and the primary keys of the documents it
inserted, replaced, updated or deleted. When a cached index was synced at version ``a`` and
the dataset is now at ``b``, and every version in ``(a, b]`` was noted, the union of those
keys is exactly what changed: the cache reloads those documents' vectors and nothing else,
so a write of a few documents costs a search what those documents cost.

A version that was not noted (a write by another process, by code that writes without
noting, a write whose note was not in yet when a search looked, or one that has been
forgotten: the journal keeps a bounded history) leaves ``touched`` with no answer, and the
cache compares the whole dataset's documents instead (``versions.document_state``), which
is always right. The keys are only ever taken after the commit, so a rolled back write
never leaves any behind. A write announces its version inside its transaction
(``writing``): a search that sees the version committed before the note is in waits for
the note (it follows the commit at once) instead of comparing everything.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

# per dataset: this many versions, and this many keys in all, at most
_KEEP_VERSIONS = 1024
_KEEP_KEYS = 1 << 20


class _Note:
    __slots__ = ("done", "keys")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.keys: np.ndarray | None = None  # None until the write committed


class ChangeJournal:
    """The documents touched by the recent writes of this process (see the module)."""

    def __init__(
        self,
        keep_versions: int = _KEEP_VERSIONS,
        keep_keys: int = _KEEP_KEYS,
        wait: float = 2.0,
    ) -> None:
        """``wait``: how long a search waits for a write that committed and has not been
        noted yet (its note follows the commit at once) before comparing everything."""
        self.keep_versions = keep_versions
        self.keep_keys = keep_keys
        self.wait = wait
        self._lock = threading.Lock()
        self._notes: dict[int, OrderedDict[int, _Note]] = {}
        self._keys: dict[int, int] = {}

    def writing(self, dataset_id: int, version: int) -> None:
        """A write of this process, inside its transaction, is about to commit
        ``version``: a search that sees the version before ``note`` waits for it rather
        than comparing the whole dataset. A write that rolls back is never noted; a search
        can only see its version if another process committed it, and compares."""
        with self._lock:
            notes = self._notes.setdefault(dataset_id, OrderedDict())
            self._drop(dataset_id, notes, version)
            notes[version] = _Note()
            self._trim(dataset_id, notes)

    def note(self, dataset_id: int, version: int, pks: Iterable[int]) -> None:
        """The committed write that moved ``dataset_id`` to ``version`` touched ``pks``."""
        keys = np.unique(np.fromiter(pks, np.int64))
        with self._lock:
            notes = self._notes.setdefault(dataset_id, OrderedDict())
            note = notes.get(version)
            if note is None or note.keys is not None:
                self._drop(dataset_id, notes, version)
                note = notes[version] = _Note()
            note.keys = keys
            self._keys[dataset_id] = self._keys.get(dataset_id, 0) + keys.size
            self._trim(dataset_id, notes)
        note.done.set()

    def touched(self, dataset_id: int, since: int, until: int) -> np.ndarray | None:
        """The sorted keys of the documents touched by the writes that moved the dataset
        from version ``since`` to ``until``; None when one of them was not noted."""
        if not isinstance(since, int) or not isinstance(until, int) or until < since:
            return None
        if until == since:
            return np.empty(0, np.int64)
        if until - since > self.keep_versions:
            return None
        with self._lock:
            notes = self._notes.get(dataset_id)
            if notes is None:
                return None
            wanted = [notes.get(v) for v in range(since + 1, until + 1)]
        if any(n is None for n in wanted):
            return None
        parts = []
        for n in wanted:
            assert n is not None
            if n.keys is None:
                n.done.wait(self.wait)
            keys = n.keys
            if keys is None:  # rolled back, or not committed yet: compare everything
                return None
            parts.append(keys)
        return np.unique(np.concatenate(parts))

    def forget(self, dataset_id: int) -> None:
        with self._lock:
            self._notes.pop(dataset_id, None)
            self._keys.pop(dataset_id, None)

    def _drop(self, dataset_id: int, notes: OrderedDict[int, _Note], version: int) -> None:
        old = notes.pop(version, None)
        if old is not None and old.keys is not None:
            self._keys[dataset_id] -= old.keys.size

    def _trim(self, dataset_id: int, notes: OrderedDict[int, _Note]) -> None:
        total = self._keys.get(dataset_id, 0)
        while notes and (len(notes) > self.keep_versions or total > self.keep_keys):
            _, dropped = notes.popitem(last=False)
            if dropped.keys is not None:
                total -= dropped.keys.size
        self._keys[dataset_id] = total
