"""Aggregation of crowd answers into one answer per task, with a confidence.

Every method takes ``answers``: an iterable of ``(task_id, worker_id, answer_key)`` and
returns ``{task_id: (answer_key, confidence)}`` with the confidence in [0, 1]. An answer key
is any hashable; the services use :func:`answer_key` (canonical JSON of the aggregated
output fields) so that equal answers compare equal.

- :func:`majority_vote`: the answer with the largest (weighted) number of votes;
  confidence = its share of the task's total weight.
- :func:`dawid_skene`: crowd-kit's ``DawidSkene`` (EM over per-worker confusion matrices);
  confidence = the posterior probability of the chosen answer. crowd-kit is imported on
  first use (it takes seconds to import).
- :func:`skill_weighted`: a skill in percent is the worker's accuracy ``q = skill / 100``;
  the answer and its confidence are the Bayes posterior of :mod:`taskloom.crowd.confidence`
  (the model behind dynamic overlap), i.e. a vote weighted by ``log(q (Y-1) / (1-q))``.

Majority vote and skill weighting are plain counting here rather than crowd-kit's
``MajorityVote``: they run synchronously per task (aggregate-by-task), where building a
DataFrame and importing crowd-kit would cost far more than the count itself.

Ties are broken deterministically, whatever the order of the input: the smallest answer key
wins (strings compare as strings, other keys by ``repr``). Dawid-Skene first breaks a tie by
the task's raw votes: when every worker always gives the same label, the model learns
nothing (a uniform posterior) and the task keeps its most voted answer, with that honest
low confidence.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from taskloom.crowd.confidence import posterior, worker_accuracy
from taskloom.errors import Unavailable

__all__ = ["answer_key", "dawid_skene", "majority_vote", "skill_weighted"]

Answer = tuple[str, str, Hashable]
Result = dict[str, tuple[Hashable, float]]

_TIE = 1e-9


def answer_key(output_values: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The canonical JSON (sorted keys, no spaces) of ``fields`` of one solution."""
    return json.dumps(
        {f: output_values.get(f) for f in fields},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _order(key: Hashable) -> tuple[int, str]:
    return (0, key) if isinstance(key, str) else (1, repr(key))


def _pick(
    scores: Mapping[Hashable, float], votes: Mapping[Hashable, float] | None = None
) -> Hashable:
    """The key with the highest score; among (near-)equal best scores, the one with the
    most ``votes`` (when given), then the smallest key."""
    best = max(scores.values())
    tied = [k for k, s in scores.items() if s >= best - _TIE * max(1.0, abs(best))]
    if votes is not None and len(tied) > 1:
        most = max(votes.get(k, 0.0) for k in tied)
        tied = [k for k in tied if votes.get(k, 0.0) == most]
    return min(tied, key=_order)


def _by_task(answers: Iterable[Answer]) -> dict[str, list[tuple[str, Hashable]]]:
    tasks: dict[str, list[tuple[str, Hashable]]] = {}
    for task_id, worker_id, key in answers:
        tasks.setdefault(task_id, []).append((worker_id, key))
    return tasks


def majority_vote(
    answers: Iterable[Answer], *, weights: Mapping[str, float] | None = None
) -> Result:
    """The most voted answer per task; ``weights`` (worker -> weight >= 0, missing = 1)
    weight the votes. A task whose voters all weigh 0 falls back to plain counts."""
    result: Result = {}
    for task_id, votes in _by_task(answers).items():
        scores: dict[Hashable, float] = {}
        for worker_id, key in votes:
            w = 1.0 if weights is None else float(weights.get(worker_id, 1.0))
            if w < 0:
                raise ValueError(f"weight of worker {worker_id!r} is negative")
            scores[key] = scores.get(key, 0.0) + w
        total = sum(scores.values())
        if total <= 0:
            scores = {}
            for _, key in votes:
                scores[key] = scores.get(key, 0.0) + 1.0
            total = float(len(votes))
        winner = _pick(scores)
        result[task_id] = (winner, scores[winner] / total)
    return result


def skill_weighted(
    answers: Iterable[Answer],
    skills: Mapping[str, float],
    *,
    n_options: int | None = None,
) -> Result:
    """Bayes aggregation with ``q = skill / 100`` per worker (clamped to [0, 1]; a worker
    without the skill gets ``worker_accuracy(0, 0)`` = 0.5). ``n_options`` is Y; ``None``
    means the task's number of distinct answers + 1."""
    default_q = worker_accuracy(0, 0)
    result: Result = {}
    for task_id, votes in _by_task(answers).items():
        pairs = [
            (key, min(1.0, max(0.0, skills[w] / 100.0)) if w in skills else default_q)
            for w, key in votes
        ]
        y = n_options if n_options is not None else len({k for k, _ in pairs}) + 1
        probs = posterior(pairs, y)
        winner = _pick(probs)
        result[task_id] = (winner, probs[winner])
    return result


def dawid_skene(answers: Iterable[Answer], *, n_iter: int = 100, tol: float = 1e-5) -> Result:
    """Dawid-Skene (crowd-kit's implementation); confidence = the posterior of the winner."""
    rows = list(answers)
    if not rows:
        return {}
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise Unavailable("Dawid-Skene aggregation needs the crowd-kit package") from exc

    # crowd-kit works on DataFrame columns; give it integer labels so that any hashable
    # answer key (tuples, JSON strings, numbers) survives the round trip unchanged.
    codes: dict[Hashable, int] = {}
    for _, _, key in rows:
        codes.setdefault(key, len(codes))
    keys = list(codes)
    frame = pd.DataFrame(
        {
            "task": [t for t, _, _ in rows],
            "worker": [w for _, w, _ in rows],
            "label": [codes[k] for _, _, k in rows],
        }
    )
    model = DawidSkene(n_iter=n_iter, tol=tol).fit(frame)
    probas = model.probas_
    if probas is None:  # pragma: no cover - fit() always sets it
        raise RuntimeError("crowd-kit's DawidSkene returned no probabilities")
    labels = [keys[int(c)] for c in probas.columns]
    counts: dict[str, dict[Hashable, float]] = {}
    for task_id, _, key in rows:
        per_task = counts.setdefault(task_id, {})
        per_task[key] = per_task.get(key, 0.0) + 1.0
    result: Result = {}
    for task_id, row in zip(probas.index, probas.to_numpy(), strict=True):
        scores = {label: float(p) for label, p in zip(labels, row, strict=True) if p == p}
        winner = _pick(scores, counts[task_id])
        result[str(task_id)] = (winner, min(1.0, max(0.0, scores[winner])))
    return result
