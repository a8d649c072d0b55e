"""Worker accuracy, Bayes confidence of an answer, and the dynamic-overlap decision.

A worker who matched ``correct`` of ``total`` control answers has accuracy
``q = (K + correct) / (2K + total)`` with ``K = 0.5`` (a worker with no history gets 0.5).

With ``Y`` possible answers and a uniform prior, a worker of accuracy ``q`` who answered
``a`` has likelihood ``q`` when ``a`` is the true answer and ``(1 - q) / (Y - 1)`` otherwise;
answers are independent, so ``P(true = h | answers)`` is proportional to the product of
their likelihoods under ``h``. Baseline solutions enter as answers with
``q = confidence_weight``. Products are summed in log space; a likelihood of exactly zero
(``q = 1`` and a different answer, or ``q = 0`` and the same one) is taken as the limit
``q -> 1`` (or ``-> 0``): the hypotheses that contradict the fewest certain answers keep all
the mass, so two certain workers who disagree split it instead of producing 0/0.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

__all__ = ["K", "count_options", "needs_more", "posterior", "worker_accuracy"]

K = 0.5


def worker_accuracy(correct: float, total: float) -> float:
    """``(K + correct) / (2K + total)``: the smoothed share of correct control answers."""
    if total < 0 or correct < 0 or correct > total:
        raise ValueError("need 0 <= correct <= total")
    return (K + correct) / (2 * K + total)


def _terms(q: float, y: int) -> tuple[int, float, int, float]:
    """The factors "wrong" ``(1-q)/(Y-1)`` and "right" ``q`` as (zero count, log of the rest).

    ``q = 1 - e`` makes "wrong" ``e / (Y-1)`` and ``q = e`` makes "right" ``e``: an exact
    zero counts one ``e`` and keeps its finite coefficient, which is the limit ``e -> 0``.
    """
    log_other = -math.log(y - 1)
    wz, wl = (1, log_other) if q >= 1.0 else (0, math.log(1.0 - q) + log_other)
    rz, rl = (1, 0.0) if q <= 0.0 else (0, math.log(q))
    return wz, wl, rz, rl


def posterior(answers: Sequence[tuple[Hashable, float]], n_options: int) -> dict[Hashable, float]:
    """``P(true = a | answers)`` for every distinct answer ``a`` seen.

    ``answers`` are ``(answer_key, q)`` pairs, ``n_options`` is Y (raised to the number of
    distinct answers when fewer). The values sum to 1 minus the mass left to the answers
    nobody gave. ``{}`` when there are no answers.
    """
    if n_options < 1:
        raise ValueError("n_options must be at least 1")
    keys: dict[Hashable, None] = {}
    for key, q in answers:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"accuracy {q!r} is not in [0, 1]")
        keys[key] = None
    if not keys:
        return {}
    y = max(n_options, len(keys))
    if y == 1:
        return {key: 1.0 for key in keys}

    # Every hypothesis starts from "every answer is wrong" and swaps in "right" for its own.
    base_zeros, base_log = 0, 0.0
    delta: dict[Hashable, list[float]] = {key: [0, 0.0] for key in keys}
    for key, q in answers:
        wz, wl, rz, rl = _terms(q, y)
        base_zeros += wz
        base_log += wl
        d = delta[key]
        d[0] += rz - wz
        d[1] += rl - wl

    scores: dict[Hashable, tuple[int, float]] = {
        key: (base_zeros + int(d[0]), base_log + d[1]) for key, d in delta.items()
    }
    unseen = y - len(keys)
    candidates = list(scores.values())
    if unseen:
        candidates.append((base_zeros, base_log + math.log(unseen)))
    fewest = min(z for z, _ in candidates)
    top = max(lg for z, lg in candidates if z == fewest)
    total = sum(math.exp(lg - top) for z, lg in candidates if z == fewest)
    return {
        key: (math.exp(lg - top) / total if z == fewest else 0.0) for key, (z, lg) in scores.items()
    }


def needs_more(
    answers: Sequence[tuple[Hashable, float]],
    n_options: int,
    *,
    overlap_now: int,
    min_overlap: int,
    max_overlap: int,
    min_confidence: float,
) -> bool:
    """Whether a task should be issued to one more worker (dynamic overlap).

    Never at or past ``max_overlap``; always below ``min_overlap``; in between, until the
    leading answer's posterior reaches ``min_confidence``.
    """
    if overlap_now >= max_overlap:
        return False
    if overlap_now < min_overlap:
        return True
    probs = posterior(answers, n_options)
    return not probs or max(probs.values()) < min_confidence


def count_options(fields: Iterable[Any], n_seen: int) -> int:
    """Y for the answers over ``fields`` (``FieldSpec`` objects of the output spec).

    The product of each field's number of possible values when all are finite
    (``allowed_values``, or 2 for a boolean), else the number of distinct answers seen + 1.
    """
    y = 1
    for fs in fields:
        if fs.allowed_values is not None and not fs.is_array:
            y *= len(set(fs.allowed_values))
        elif fs.type == "boolean":
            y *= 2
        else:
            return n_seen + 1
    return max(y, n_seen, 1)
