"""The job state machine table."""

from __future__ import annotations

from taskloom.jobs.states import ACTIVE, TERMINAL, TRANSITIONS, JobStatus, sources

S = JobStatus


def test_every_state_has_a_row():
    assert set(TRANSITIONS) == set(JobStatus)
    assert set(JobStatus) == ACTIVE | TERMINAL
    assert not ACTIVE & TERMINAL


def test_the_edges():
    edges = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
    assert edges == {
        ("registered", "pending"),
        ("registered", "cancelled"),
        ("pending", "in_progress"),
        ("pending", "cancelled"),
        ("in_progress", "completed"),
        ("in_progress", "failed"),
        ("in_progress", "cancelled"),
        ("in_progress", "pending"),  # retry, or a lost worker's job re-queued
    }


def test_terminal_states_are_final():
    for s in TERMINAL:
        assert TRANSITIONS[s] == frozenset()


def test_only_a_running_job_completes_or_fails():
    assert sources(S.COMPLETED) == {S.IN_PROGRESS}
    assert sources(S.FAILED) == {S.IN_PROGRESS}
    assert sources(S.IN_PROGRESS) == {S.PENDING}
    assert sources(S.CANCELLED) == ACTIVE
    assert sources(S.PENDING) == {S.REGISTERED, S.IN_PROGRESS}
    assert sources(S.REGISTERED) == frozenset()


def test_every_state_is_reachable_and_every_path_can_end():
    reach = {S.REGISTERED, S.PENDING}  # where submit puts a job
    frontier = list(reach)
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in reach:
                reach.add(nxt)
                frontier.append(nxt)
    assert reach == set(JobStatus)
    for s in ACTIVE:
        assert TRANSITIONS[s] & (TERMINAL | ACTIVE), s
        assert S.CANCELLED in TRANSITIONS[s]  # anything not finished can be cancelled


def test_states_are_their_strings():
    assert [s.value for s in JobStatus] == [
        "registered",
        "pending",
        "in_progress",
        "completed",
        "failed",
        "cancelled",
    ]
    assert S.PENDING == "pending"
