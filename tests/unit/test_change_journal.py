"""vectors.changes.ChangeJournal: which documents the writes between two versions touched."""

from __future__ import annotations

import threading
import time

import numpy as np

from taskloom.vectors.changes import ChangeJournal


def test_consecutive_notes_give_the_union_and_a_gap_gives_none():
    j = ChangeJournal()
    j.note(1, 11, [5, 3])
    j.note(1, 12, [3, 9])
    j.note(2, 12, [100])  # another dataset
    assert j.touched(1, 10, 12).tolist() == [3, 5, 9]
    assert j.touched(1, 11, 12).tolist() == [3, 9]
    assert j.touched(1, 12, 12).tolist() == []
    assert j.touched(1, 9, 12) is None  # version 10 was written by someone else
    assert j.touched(1, 10, 13) is None
    assert j.touched(3, 1, 2) is None
    assert j.touched(1, None, 12) is None  # no version: compare everything


def test_history_is_bounded():
    j = ChangeJournal(keep_versions=3, keep_keys=10)
    for v in range(1, 6):
        j.note(1, v, [v])
    assert j.touched(1, 2, 5).tolist() == [3, 4, 5]
    assert j.touched(1, 1, 5) is None
    j.note(1, 6, range(100, 109))  # the keys bound drops older versions
    assert j.touched(1, 4, 6).tolist() == [5, *range(100, 109)]
    assert j.touched(1, 3, 6) is None


def test_a_search_waits_for_the_note_of_a_committed_write():
    """The version is visible once the write commits; the note follows at once: a search
    in between waits for it instead of comparing the whole dataset."""
    j = ChangeJournal(wait=5.0)
    j.writing(1, 21)
    out: list[np.ndarray | None] = []
    t = threading.Thread(target=lambda: out.append(j.touched(1, 20, 21)))
    t.start()
    time.sleep(0.1)
    assert t.is_alive()  # waiting
    j.note(1, 21, [7])
    t.join(5)
    assert out[0].tolist() == [7]


def test_a_rolled_back_write_is_never_taken_for_a_note():
    """Its version, committed later by another process, is compared in full."""
    j = ChangeJournal(wait=0.05)
    j.writing(1, 31)  # then the transaction rolls back: no note
    t = time.perf_counter()
    assert j.touched(1, 30, 31) is None
    assert time.perf_counter() - t < 2
    j.writing(1, 31)  # a later write of this process commits the same version
    j.note(1, 31, [4])
    assert j.touched(1, 30, 31).tolist() == [4]
