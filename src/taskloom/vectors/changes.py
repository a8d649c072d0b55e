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

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import numpy as np

log = logging.getLogger(__name__)

# per dataset: this many versions, keys and bytes of vectors in all, at most
_KEEP_VERSIONS = 1024
_KEEP_KEYS = 1 << 20
_KEEP_BYTES = 64 << 20

Vectors = Mapping[str, "np.ndarray | None"]  # a document's vector fields (None: removed)


class _Note:
    __slots__ = ("done", "keys", "whole", "patch", "nbytes")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.keys: np.ndarray | None = None  # None until the write committed
        # the vectors written, when known: documents written whole (their vector fields
        # are exactly these), documents patched (these fields set, or removed if None)
        self.whole: dict[int, Vectors] | None = None
        self.patch: dict[int, Vectors] | None = None
        self.nbytes = 0

    @property
    def known(self) -> bool:
        return self.whole is not None or self.patch is not None


class ChangeJournal:
    """The documents touched by the recent writes of this process (see the module)."""

    def __init__(
        self,
        keep_versions: int = _KEEP_VERSIONS,
        keep_keys: int = _KEEP_KEYS,
        wait: float = 2.0,
        keep_bytes: int = _KEEP_BYTES,
    ) -> None:
        """``wait``: how long a search waits for a write that committed and has not been
        noted yet (its note follows the commit at once) before comparing everything."""
        self.keep_versions = keep_versions
        self.keep_keys = keep_keys
        self.keep_bytes = keep_bytes
        self.wait = wait
        self._lock = threading.Lock()
        self._notes: dict[int, OrderedDict[int, _Note]] = {}
        self._keys: dict[int, int] = {}
        self._bytes: dict[int, int] = {}
        self._followers: list[Callable[[int, int], None]] = []

    def follow(self, fn: Callable[[int, int], None]) -> None:
        """Call ``fn(dataset_id, version)`` with each note, in the writing thread, before
        searches waiting for the note go on (the index cache brings its indexes up to date
        there, so that searches of the new version find them ready)."""
        self._followers.append(fn)

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

    def note(
        self,
        dataset_id: int,
        version: int,
        pks: Iterable[int],
        *,
        whole: Mapping[int, Vectors] | None = None,
        patch: Mapping[int, Vectors] | None = None,
    ) -> None:
        """The committed write that moved ``dataset_id`` to ``version`` touched ``pks``.
        With ``whole`` (documents written whole: their vector fields are exactly these) or
        ``patch`` (these vector fields set, or removed where None), the vectors it wrote:
        an index then follows from memory, without reading them back."""
        keys = np.unique(np.fromiter(pks, np.int64))
        nbytes = 0
        for docs in (whole, patch):
            for vecs in (docs or {}).values():
                nbytes += sum(v.nbytes for v in vecs.values() if v is not None)
        if nbytes > self.keep_bytes // 4:  # too large to keep: read back when needed
            whole = patch = None
            nbytes = 0
        with self._lock:
            notes = self._notes.setdefault(dataset_id, OrderedDict())
            note = notes.get(version)
            if note is None or note.keys is not None:
                self._drop(dataset_id, notes, version)
                note = notes[version] = _Note()
            note.whole = _own(whole)
            note.patch = _own(patch)
            note.nbytes = nbytes
            note.keys = keys
            self._keys[dataset_id] = self._keys.get(dataset_id, 0) + keys.size
            self._bytes[dataset_id] = self._bytes.get(dataset_id, 0) + nbytes
            self._trim(dataset_id, notes)
        for fn in self._followers:
            try:
                fn(dataset_id, version)
            except Exception:  # the write is committed: a search will catch up itself
                log.exception("following the write of version %s failed", version)
        note.done.set()

    def deleted(self, dataset_id: int, version: int, pks: Iterable[int]) -> None:
        """The committed write that moved ``dataset_id`` to ``version`` deleted ``pks``."""
        keys = list(pks)
        self.note(dataset_id, version, keys, whole=dict.fromkeys(keys, {}))

    def touched(self, dataset_id: int, since: int, until: int) -> np.ndarray | None:
        """The sorted keys of the documents touched by the writes that moved the dataset
        from version ``since`` to ``until``; None when one of them was not noted."""
        wanted = self._wanted(dataset_id, since, until)
        if wanted is None:
            return None
        if not wanted:
            return np.empty(0, np.int64)
        parts = [n.keys for n in wanted if n.keys is not None]
        return np.unique(np.concatenate(parts))

    def changes(
        self, dataset_id: int, since: int, until: int, field: str, dim: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """What the writes from version ``since`` to ``until`` did to ``field``, from the
        vectors they wrote: (keys set, their vectors as written, keys whose vector is
        gone), keys sorted; None when a write was not noted with its vectors."""
        wanted = self._wanted(dataset_id, since, until)
        if wanted is None or not all(n.known for n in wanted):
            return None
        final: dict[int, np.ndarray | None] = {}
        for n in wanted:
            for pk, vecs in (n.whole or {}).items():
                final[pk] = vecs.get(field)
            for pk, vecs in (n.patch or {}).items():
                if field in vecs:
                    final[pk] = vecs[field]
        set_pks = sorted(pk for pk, v in final.items() if v is not None)
        if any(final[pk].size != dim for pk in set_pks):  # type: ignore[union-attr]
            return None  # the index reads them back, and refuses the mix
        gone = np.array(sorted(pk for pk, v in final.items() if v is None), np.int64)
        rows = (
            np.stack([final[pk] for pk in set_pks])  # type: ignore[misc]
            if set_pks
            else np.empty((0, dim), np.float32)
        )
        return np.array(set_pks, np.int64), rows, gone

    def settle(self, dataset_id: int, since: int, until: int) -> None:
        """Wait (at most ``wait``) until the writes of this process from ``since`` to
        ``until`` are noted, and their followers have run."""
        self._wanted(dataset_id, since, until)

    def _wanted(self, dataset_id: int, since: int, until: int) -> list[_Note] | None:
        """The notes of versions ``since + 1 .. until``, once committed; None if one is
        missing (or does not come within ``wait``)."""
        if not isinstance(since, int) or not isinstance(until, int) or until < since:
            return None
        if until - since > self.keep_versions:
            return None
        if until == since:
            return []
        with self._lock:
            notes = self._notes.get(dataset_id)
            if notes is None:
                return None
            wanted = [notes.get(v) for v in range(since + 1, until + 1)]
        out = []
        for n in wanted:
            if n is None:
                return None
            if n.keys is None:
                n.done.wait(self.wait)
            if n.keys is None:  # rolled back, or not committed yet: compare everything
                return None
            out.append(n)
        return out

    def forget(self, dataset_id: int) -> None:
        with self._lock:
            self._notes.pop(dataset_id, None)
            self._keys.pop(dataset_id, None)
            self._bytes.pop(dataset_id, None)

    def _drop(self, dataset_id: int, notes: OrderedDict[int, _Note], version: int) -> None:
        old = notes.pop(version, None)
        if old is not None and old.keys is not None:
            self._keys[dataset_id] -= old.keys.size
            self._bytes[dataset_id] -= old.nbytes

    def _trim(self, dataset_id: int, notes: OrderedDict[int, _Note]) -> None:
        keys = self._keys.get(dataset_id, 0)
        nbytes = self._bytes.get(dataset_id, 0)
        while notes and (
            len(notes) > self.keep_versions or keys > self.keep_keys or nbytes > self.keep_bytes
        ):
            _, dropped = notes.popitem(last=False)
            if dropped.keys is not None:
                keys -= dropped.keys.size
                nbytes -= dropped.nbytes
        self._keys[dataset_id] = keys
        self._bytes[dataset_id] = nbytes


def _own(docs: Mapping[int, Vectors] | None) -> dict[int, Vectors] | None:
    """The vectors as float32 copies of their own (a binary batch's vectors are views
    into its whole request body, which the journal must not keep alive)."""
    if docs is None:
        return None
    return {
        pk: {f: None if v is None else np.array(v, dtype=np.float32) for f, v in vecs.items()}
        for pk, vecs in docs.items()
    }
