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
is always right. A note is only ever taken after the commit, so a rolled back write never
leaves one behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np

# per dataset: this many versions, and this many keys in all, at most
_KEEP_VERSIONS = 1024
_KEEP_KEYS = 1 << 20


class ChangeJournal:
    """The documents touched by the recent writes of this process (see the module)."""

    def __init__(self, keep_versions: int = _KEEP_VERSIONS, keep_keys: int = _KEEP_KEYS) -> None:
        self.keep_versions = keep_versions
        self.keep_keys = keep_keys
        self._lock = threading.Lock()
        self._notes: dict[int, OrderedDict[int, np.ndarray]] = {}
        self._keys: dict[int, int] = {}

    def note(self, dataset_id: int, version: int, pks: Iterable[int]) -> None:
        """The committed write that moved ``dataset_id`` to ``version`` touched ``pks``."""
        keys = np.unique(np.fromiter(pks, np.int64))
        with self._lock:
            notes = self._notes.setdefault(dataset_id, OrderedDict())
            old = notes.pop(version, None)
            if old is not None:
                self._keys[dataset_id] -= old.size
            notes[version] = keys
            total = self._keys.get(dataset_id, 0) + keys.size
            while notes and (len(notes) > self.keep_versions or total > self.keep_keys):
                _, dropped = notes.popitem(last=False)
                total -= dropped.size
            self._keys[dataset_id] = total

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
            parts = []
            for v in range(since + 1, until + 1):
                keys = notes.get(v)
                if keys is None:
                    return None
                parts.append(keys)
        return np.unique(np.concatenate(parts))

    def forget(self, dataset_id: int) -> None:
        with self._lock:
            self._notes.pop(dataset_id, None)
            self._keys.pop(dataset_id, None)
