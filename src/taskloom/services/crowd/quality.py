"""Quality control: control (golden) tasks score workers; a pool's rules ban them or set skills.

A pool's ``quality_control`` is Toloka's shape::

    {"configs": [{"collector_config": {"type": "GOLDEN_SET", "parameters": {"history_size": 10}},
                  "rules": [{"conditions": [{"key": "total_answers_count", "operator": "GTE",
                                             "value": 3},
                                            {"key": "correct_answers_rate", "operator": "LT",
                                             "value": 60}],
                             "action": {"type": "RESTRICTION_V2",
                                        "parameters": {"scope": "POOL"}}}]}]}

A worker's answer to a control task scores the correctness weight of the known solution it
matches (1 by default, 0 when it matches none): partial credit. After each submitted
assignment that held control tasks, every rule whose conditions all hold on the worker's
last ``history_size`` control answers in the pool fires. Rates are percentages.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from taskloom.errors import Invalid

COLLECTORS = ("GOLDEN_SET",)
# Toloka's condition keys of the golden-set collector -> our statistic
CONDITION_KEYS = {
    "total_answers_count": "total",
    "correct_answers_rate": "correct_rate",
    "incorrect_answers_rate": "incorrect_rate",
    "golden_set_answers_count": "total",
    "golden_set_correct_answers_rate": "correct_rate",
    "golden_set_incorrect_answers_rate": "incorrect_rate",
}
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
    "EQ": operator.eq,
    "NE": operator.ne,
}
ACTIONS = ("RESTRICTION_V2", "RESTRICTION", "SET_SKILL", "SET_SKILL_FROM_OUTPUT_FIELD")
BAN_SCOPES = ("POOL", "PROJECT", "ALL_PROJECTS")
FROM_FIELDS = ("correct_answers_rate", "incorrect_answers_rate")


def _bad(path: str, message: str, code: str = "invalid_quality_control") -> Invalid:
    return Invalid(message, code=code, field=path)


def action_parameters(action: Mapping[str, Any]) -> Mapping[str, Any]:
    params = action.get("parameters")
    return params if isinstance(params, Mapping) else action


def check_quality_control(raw: Any, skill: Callable[[Any, str], Any]) -> None:
    """Raise Invalid naming the first bad path; ``skill(id, path)`` raises for unknown skills."""
    if raw is None:
        return
    p = "quality_control"
    if not isinstance(raw, Mapping):
        raise _bad(p, "quality_control is an object {configs: [...]}")
    configs = raw.get("configs") or []
    if not isinstance(configs, list):
        raise _bad(f"{p}.configs", "configs is a list")
    for i, config in enumerate(configs):
        cp = f"{p}.configs.{i}"
        if not isinstance(config, Mapping):
            raise _bad(cp, "a config is an object")
        collector = config.get("collector_config")
        if not isinstance(collector, Mapping) or collector.get("type") not in COLLECTORS:
            raise _bad(
                f"{cp}.collector_config.type",
                f"the collector types taskloom runs are: {', '.join(COLLECTORS)}",
            )
        params = collector.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise _bad(f"{cp}.collector_config.parameters", "parameters is an object")
        hs = params.get("history_size")
        if hs is not None and (not isinstance(hs, int) or isinstance(hs, bool) or hs < 1):
            raise _bad(
                f"{cp}.collector_config.parameters.history_size", "history_size is at least 1"
            )
        rules = config.get("rules")
        if not isinstance(rules, list) or not rules:
            raise _bad(f"{cp}.rules", "rules is a non-empty list")
        for j, rule in enumerate(rules):
            _check_rule(rule, f"{cp}.rules.{j}", skill)


def _check_rule(rule: Any, rp: str, skill: Callable[[Any, str], Any]) -> None:
    if not isinstance(rule, Mapping):
        raise _bad(rp, "a rule is an object {conditions, action}")
    conditions = rule.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise _bad(f"{rp}.conditions", "conditions is a non-empty list")
    for k, cond in enumerate(conditions):
        kp = f"{rp}.conditions.{k}"
        if not isinstance(cond, Mapping) or cond.get("key") not in CONDITION_KEYS:
            raise _bad(f"{kp}.key", f"key is one of {', '.join(CONDITION_KEYS)}")
        if cond.get("operator") not in OPERATORS:
            raise _bad(f"{kp}.operator", f"operator is one of {', '.join(OPERATORS)}")
        value = cond.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise _bad(f"{kp}.value", "value is a number")
    action = rule.get("action")
    if not isinstance(action, Mapping) or action.get("type") not in ACTIONS:
        raise _bad(f"{rp}.action.type", f"action type is one of {', '.join(ACTIONS)}")
    params = action_parameters(action)
    ap = f"{rp}.action.parameters"
    kind = action["type"]
    if kind in ("RESTRICTION_V2", "RESTRICTION"):
        if params.get("scope", "POOL") not in BAN_SCOPES:
            raise _bad(f"{ap}.scope", f"scope is one of {', '.join(BAN_SCOPES)}")
    else:
        skill(params.get("skill_id"), f"{ap}.skill_id")
        if kind == "SET_SKILL":
            v = params.get("skill_value")
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 100:
                raise _bad(f"{ap}.skill_value", "skill_value is 0 to 100")
        elif params.get("from_field") not in FROM_FIELDS:
            raise _bad(f"{ap}.from_field", f"from_field is one of {', '.join(FROM_FIELDS)}")


def score(answer: Mapping[str, Any], known_solutions: Iterable[Mapping[str, Any]]) -> float:
    """The credit of an answer to a control task: the largest correctness weight among the
    known solutions it matches (every field of the known solution equal), else 0."""
    best = 0.0
    for known in known_solutions:
        values = known.get("output_values") or {}
        if all(answer.get(k) == v for k, v in values.items()):
            w = known.get("correctness_weight")
            best = max(best, 1.0 if w is None else float(w))
    return best


def golden_stats(scores: list[float]) -> dict[str, float | None]:
    """Counts and rates (percent) of a worker's control answers, newest first."""
    total = len(scores)
    correct = float(sum(scores))
    return {
        "total": float(total),
        "correct": correct,
        "incorrect": total - correct,
        "correct_rate": 100.0 * correct / total if total else None,
        "incorrect_rate": 100.0 * (total - correct) / total if total else None,
    }


def fired_actions(
    quality_control: Mapping[str, Any] | None, scores: list[float]
) -> list[tuple[Mapping[str, Any], dict[str, float | None]]]:
    """The actions whose rules hold on ``scores`` (newest first), each with the stats it saw."""
    out: list[tuple[Mapping[str, Any], dict[str, float | None]]] = []
    for config in (quality_control or {}).get("configs") or []:
        params = config["collector_config"].get("parameters") or {}
        history = params.get("history_size")
        stats = golden_stats(scores[:history] if history else scores)
        for rule in config["rules"]:
            if all(_holds(c, stats) for c in rule["conditions"]):
                out.append((rule["action"], stats))
    return out


def _holds(cond: Mapping[str, Any], stats: Mapping[str, float | None]) -> bool:
    value = stats[CONDITION_KEYS[cond["key"]]]
    if value is None:
        return False
    # rates are compared on a 1e-9 grid so 2/3*100 == 66.666... behaves as written
    return OPERATORS[cond["operator"]](round(value, 9), round(float(cond["value"]), 9))
