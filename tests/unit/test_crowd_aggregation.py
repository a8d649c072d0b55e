"""Answer aggregation (``taskloom.crowd.aggregation``): majority vote, Dawid-Skene,
skill-weighted; deterministic ties; single answers; canonical answer keys."""

from __future__ import annotations

import random

import pytest

from taskloom.crowd.aggregation import answer_key, dawid_skene, majority_vote, skill_weighted

# crowd-kit 1.4 calls pandas APIs that pandas 3.1 deprecates; not ours to fix here
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crowdkit")

LABELS = ["cat", "dog", "cow"]


def synthetic(seed: int, n_tasks: int = 300):
    """Three reliable workers (95 % right) and six of thirty spammers (uniformly random)
    answer every task: the spammers outvote the reliable workers on many tasks."""
    rng = random.Random(seed)
    truth = {f"t{i}": rng.choice(LABELS) for i in range(n_tasks)}
    answers = []
    for task, label in truth.items():
        for w in range(3):
            right = rng.random() < 0.95
            answers.append((task, f"good{w}", label if right else rng.choice(LABELS)))
        for w in rng.sample(range(30), 6):
            answers.append((task, f"spam{w}", rng.choice(LABELS)))
    rng.shuffle(answers)
    return truth, answers


def accuracy(result, truth) -> float:
    return sum(result[t][0] == label for t, label in truth.items()) / len(truth)


@pytest.mark.parametrize("seed", [0, 1])
def test_dawid_skene_recovers_the_truth_that_majority_vote_misses(seed):
    truth, answers = synthetic(seed)
    mv = majority_vote(answers)
    ds = dawid_skene(answers)
    assert set(ds) == set(truth)
    assert accuracy(ds, truth) >= 0.95
    assert accuracy(mv, truth) <= accuracy(ds, truth) - 0.1
    # the posterior of the chosen answer: confident where right, and a probability
    assert all(0.0 <= c <= 1.0 for _, c in ds.values())
    right = [c for t, (a, c) in ds.items() if a == truth[t]]
    assert sum(right) / len(right) > 0.9


def test_majority_vote_counts_and_shares():
    answers = [
        ("t1", "w1", "a"), ("t1", "w2", "a"), ("t1", "w3", "b"),
        ("t2", "w1", "x"),
    ]  # fmt: skip
    assert majority_vote(answers) == {"t1": ("a", pytest.approx(2 / 3)), "t2": ("x", 1.0)}


def test_weighted_majority_vote():
    answers = [("t", "w1", "b"), ("t", "w2", "a"), ("t", "w3", "a")]
    # w1 weighs 3, the others 1: b gets 3 of 5
    assert majority_vote(answers, weights={"w1": 3, "w2": 1, "w3": 1}) == {"t": ("b", 0.6)}
    # a worker missing from the weights counts 1
    assert majority_vote(answers, weights={"w1": 1.5}) == {"t": ("a", pytest.approx(2 / 3.5))}
    # all weights zero: plain counts
    assert majority_vote(answers, weights={"w1": 0, "w2": 0, "w3": 0}) == {
        "t": ("a", pytest.approx(2 / 3))
    }
    with pytest.raises(ValueError):
        majority_vote(answers, weights={"w1": -1})


def test_skill_weighted_uses_skills_as_accuracy_in_a_bayes_posterior():
    # q(w1) = 0.90, q(w2) = 0.60, w3 has no skill: q = 0.5; Y = 3
    # L(A) = 0.9 * (0.4 / 2) * (0.5 / 2) = 0.045
    # L(B) = (0.1 / 2) * 0.6 * 0.5       = 0.015
    # L(C) = (0.1 / 2) * (0.4 / 2) * (0.5 / 2) = 0.0025       total 0.0625
    answers = [("t", "w1", "A"), ("t", "w2", "B"), ("t", "w3", "B")]
    skills = {"w1": 90.0, "w2": 60.0}
    assert skill_weighted(answers, skills, n_options=3) == {"t": ("A", pytest.approx(0.72))}
    # Y defaults to the distinct answers + 1 = 3 here; majority vote would say B
    assert skill_weighted(answers, skills)["t"][0] == "A"
    assert majority_vote(answers)["t"][0] == "B"
    # a skill of 100 is a certain worker; skills above 100 are clamped
    assert skill_weighted(answers, {"w1": 150.0}, n_options=3) == {"t": ("A", 1.0)}


def test_ties_are_broken_by_the_smallest_key_whatever_the_order():
    for answers in ([("t", "w1", "b"), ("t", "w2", "a")], [("t", "w2", "a"), ("t", "w1", "b")]):
        assert majority_vote(answers) == {"t": ("a", 0.5)}
        # Y = 2 distinct + 1 = 3: L(a) = L(b) = 0.8 * (0.2 / 2) = 0.08, L(c) = 0.1 * 0.1 = 0.01
        assert skill_weighted(answers, {"w1": 80, "w2": 80}) == {
            "t": ("a", pytest.approx(0.08 / 0.17))
        }
        winner, conf = dawid_skene(answers)["t"]
        assert winner == "a" and conf == pytest.approx(0.5)
    # equal weighted totals tie too
    answers = [("t", "w1", '{"r":"z"}'), ("t", "w2", '{"r":"y"}'), ("t", "w3", '{"r":"y"}')]
    assert majority_vote(answers, weights={"w1": 2})["t"][0] == '{"r":"y"}'


def test_single_answer_per_task():
    # every task answered once; each worker uses every label, so Dawid-Skene learns that
    # the workers are reliable and keeps each answer with full confidence
    answers = [(f"t{i}", f"w{i // 3}", LABELS[i % 3]) for i in range(9)]
    expected = {f"t{i}": LABELS[i % 3] for i in range(9)}
    for result in (majority_vote(answers), dawid_skene(answers), skill_weighted(answers, {})):
        assert {t: a for t, (a, _) in result.items()} == expected
    assert majority_vote(answers)["t0"][1] == 1.0
    assert dawid_skene(answers)["t4"] == ("dog", pytest.approx(1.0))
    assert dawid_skene([("only", "w", "yes")]) == {"only": ("yes", 1.0)}
    # one worker of unknown skill, Y = 2: 0.5 is exactly "no information"
    assert skill_weighted([("t", "w", "yes")], {}, n_options=2) == {"t": ("yes", 0.5)}


def test_dawid_skene_keeps_the_given_answer_when_it_learns_nothing():
    # each worker only ever gives one label: the confusion matrices carry no information,
    # the posterior is uniform (1/3), and the tie goes to the task's only answer
    answers = [(f"t{i}", f"w{i % 3}", LABELS[i % 3]) for i in range(9)]
    result = dawid_skene(answers)
    assert {t: a for t, (a, _) in result.items()} == {f"t{i}": LABELS[i % 3] for i in range(9)}
    assert all(c == pytest.approx(1 / 3) for _, c in result.values())


def test_any_hashable_answer_key_survives_dawid_skene():
    answers = [("t1", "w1", 1), ("t1", "w2", 1), ("t2", "w1", (2, "x")), ("t2", "w2", (2, "x"))]
    assert {t: a for t, (a, _) in dawid_skene(answers).items()} == {"t1": 1, "t2": (2, "x")}


def test_no_answers():
    assert majority_vote([]) == {} and dawid_skene([]) == {} and skill_weighted([], {}) == {}


def test_answer_key_is_canonical_json_of_the_chosen_fields():
    a = answer_key({"label": "cat", "score": 1, "note": "ignored"}, ["score", "label"])
    b = answer_key({"note": "other", "score": 1, "label": "cat"}, ["label", "score"])
    assert a == b == '{"label":"cat","score":1}'
    assert (
        answer_key({"tags": ["é", "b"]}, ["tags", "missing"]) == '{"missing":null,"tags":["é","b"]}'
    )
