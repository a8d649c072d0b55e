"""Worker accuracy, Bayes confidence and dynamic overlap (``taskloom.crowd.confidence``).

Every expected number is worked out by hand in the test from the formulas:
q = (K + correct) / (2K + total), K = 0.5; P(h) is proportional to the product over answers
of q (answer == h) or (1 - q) / (Y - 1) (answer != h), with a uniform prior over Y answers.
"""

from __future__ import annotations

import math

import pytest

from taskloom.crowd.confidence import K, count_options, needs_more, posterior, worker_accuracy
from taskloom.crowd.spec import Spec


def test_worker_accuracy_is_the_smoothed_share_of_correct_answers():
    assert K == 0.5
    assert worker_accuracy(0, 0) == 0.5  # (0.5 + 0) / (1 + 0)
    assert worker_accuracy(3, 4) == pytest.approx(3.5 / 5)  # 0.7
    assert worker_accuracy(10, 10) == pytest.approx(10.5 / 11)
    assert worker_accuracy(0, 9) == pytest.approx(0.5 / 10)
    assert worker_accuracy(2.5, 4) == pytest.approx(3.0 / 5)  # partial credit (correctness_weight)
    with pytest.raises(ValueError):
        worker_accuracy(5, 4)


def test_two_agreeing_workers_binary():
    # Y = 2, both say A with q = 0.8: L(A) = 0.8 * 0.8 = 0.64, L(B) = 0.2 * 0.2 = 0.04
    p = posterior([("A", 0.8), ("A", 0.8)], 2)
    assert p == {"A": pytest.approx(0.64 / (0.64 + 0.04))}  # 0.941...


def test_disagreement_with_three_options():
    # Y = 3; worker 1 (q = 0.8) says A, worker 2 (q = 0.6) says B.
    # L(A) = 0.8 * (0.4 / 2) = 0.16; L(B) = (0.2 / 2) * 0.6 = 0.06; L(C) = 0.1 * 0.2 = 0.02
    p = posterior([("A", 0.8), ("B", 0.6)], 3)
    assert p["A"] == pytest.approx(0.16 / 0.24)  # 2/3
    assert p["B"] == pytest.approx(0.06 / 0.24)  # 1/4
    assert sum(p.values()) == pytest.approx(1 - 0.02 / 0.24)  # C, never answered, keeps the rest


def test_baseline_solution_counts_as_an_answer_with_its_confidence_weight():
    # Y = 4; a worker (q = 0.7) says "cat", the baseline says "cat" with weight 0.9.
    # L(cat) = 0.7 * 0.9 = 0.63; each of the 3 others: (0.3 / 3) * (0.1 / 3) = 0.1 / 30
    p = posterior([("cat", 0.7), ("cat", 0.9)], 4)
    other = 0.1 * (0.1 / 3)
    assert p["cat"] == pytest.approx(0.63 / (0.63 + 3 * other))


def test_more_distinct_answers_than_options_raises_y():
    # n_options = 2 but three answers seen: Y becomes 3; all q = 0.5
    # L(each) = 0.5 * 0.25 * 0.25, identical, so 1/3 each
    p = posterior([("A", 0.5), ("B", 0.5), ("C", 0.5)], 2)
    assert p == pytest.approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})


def test_long_runs_stay_finite_in_log_space():
    # 2000 answers would underflow a product of probabilities; the posterior must not be NaN.
    answers = [("A", 0.6)] * 1001 + [("B", 0.6)] * 999
    p = posterior(answers, 2)
    # the ratio L(A) / L(B) = (0.6 / 0.4) ** (1001 - 999) = 2.25
    assert p["A"] == pytest.approx(2.25 / 3.25)
    assert p["B"] == pytest.approx(1 / 3.25)


def test_certain_workers_and_edge_cases_never_give_nan():
    # q = 1 says A: every other hypothesis has likelihood 0
    assert posterior([("A", 1.0), ("B", 0.9)], 2) == {"A": 1.0, "B": 0.0}
    # two certain workers disagree: split by the remaining factors (here equal)
    assert posterior([("A", 1.0), ("B", 1.0)], 3) == {"A": 0.5, "B": 0.5}
    # ... and by the other answers when there are some: a third worker (q = 0.8) says A,
    # L(A) / L(B) = 0.8 / ((1 - 0.8) / (3 - 1)) = 8
    p = posterior([("A", 1.0), ("B", 1.0), ("A", 0.8)], 3)
    assert p["A"] == pytest.approx(8 / 9)
    # q = 0 with Y = 2: the answer is surely wrong, the mass goes to the other option
    assert posterior([("A", 0.0)], 2) == {"A": 0.0}
    # Y = 1: the only possible answer is certain
    assert posterior([("A", 0.3)], 1) == {"A": 1.0}
    assert posterior([], 3) == {}
    for p in (posterior([("A", 1.0), ("A", 0.0)], 2), posterior([("A", 0.0), ("B", 0.0)], 2)):
        assert all(not math.isnan(v) and 0.0 <= v <= 1.0 for v in p.values())
    with pytest.raises(ValueError):
        posterior([("A", 1.5)], 2)
    with pytest.raises(ValueError):
        posterior([("A", 0.5)], 0)


def test_unanimous_answers_stop_at_the_minimum_overlap():
    # q = 0.9, Y = 2, min_confidence 0.95. One answer: 0.9 -> below; two answers:
    # 0.81 / (0.81 + 0.01) = 0.9878 -> enough, but min_overlap = 3 keeps issuing until 3.
    kw = {"min_overlap": 3, "max_overlap": 5, "min_confidence": 0.95}
    one, two, three = ([("yes", 0.9)] * n for n in (1, 2, 3))
    assert needs_more(one, 2, overlap_now=1, **kw)
    assert needs_more(two, 2, overlap_now=2, **kw)
    assert not needs_more(three, 2, overlap_now=3, **kw)


def test_confidence_decides_between_min_and_max_overlap():
    kw = {"min_overlap": 1, "max_overlap": 5, "min_confidence": 0.95}
    # one q = 0.9 answer gives 0.9 < 0.95: more; a second agreeing one gives 0.9878: stop
    assert needs_more([("yes", 0.9)], 2, overlap_now=1, **kw)
    assert not needs_more([("yes", 0.9)] * 2, 2, overlap_now=2, **kw)


def test_disagreement_grows_to_max_overlap():
    kw = {"min_overlap": 1, "max_overlap": 4, "min_confidence": 0.9}
    answers: list[tuple[str, float]] = []
    issued = 0
    for i in range(10):  # workers alternate yes/no forever; leading answer stays near 0.5-0.8
        if not needs_more(answers, 2, overlap_now=issued, **kw):
            break
        answers.append(("yes" if i % 2 == 0 else "no", 0.8))
        issued += 1
    assert issued == 4
    # after 4 answers (2 yes, 2 no) the posterior is exactly 0.5 each
    assert posterior(answers, 2) == pytest.approx({"yes": 0.5, "no": 0.5})


def test_count_options_from_the_output_spec():
    spec = Spec.parse(
        {
            "label": {"type": "string", "allowed_values": ["cat", "dog", "cow"]},
            "ok": {"type": "boolean"},
            "comment": {"type": "string"},
            "flags": {"type": "array_boolean"},
        },
        where="output_spec",
    )
    f = spec.fields
    assert count_options([f["label"]], n_seen=1) == 3
    assert count_options([f["ok"]], n_seen=0) == 2
    assert count_options([f["label"], f["ok"]], n_seen=2) == 6
    assert count_options([f["comment"]], n_seen=4) == 5
    assert count_options([f["label"], f["comment"]], n_seen=2) == 3
    assert count_options([f["flags"]], n_seen=1) == 2
