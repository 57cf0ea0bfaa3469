"""Stop rules and keep-best metrics: which numbers of an evaluation a run can be steered by.

A rule is text a person writes (``--stop-when``):

- ``holdout-parity`` or ``holdout-parity:0.03``: the forget set has become as unfamiliar as
  the holdout set, i.e. the membership-inference AUCs of forget against holdout (LOSS and
  Min-K%++) are both within the tolerance (default 0.05) of 0.5;
- ``METRIC>=X``, ``METRIC<=X`` (also ``>``, ``<``), e.g. ``forget_quality>=0.5``,
  ``forget_accuracy<=0.1``, ``utility_ratio>=0.95``;
- several of these joined by ``,`` (or `` and ``): all must hold.

Metric names (hyphens and underscores alike): ``forget_quality``, ``model_utility``,
``retain_utility`` (its retain part, for data without the rest), ``utility_ratio`` (model
utility over the original's; retain utility's where the run has no model utility), ``privleak``, ``holdout_parity``
(the larger distance of the two AUCs from 0.5), ``mia_auc_<attack>`` (forget vs holdout),
and ``<split>_<metric>`` for any split metric of the registry (``forget_accuracy``,
``retain_f1``, ``forget_truth_ratio``, ...). Nothing here touches a model: parsing and
judging are pure, so config validation can use them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tui_unlearn.errors import ConfigError

PARITY = "holdout_parity"
PARITY_ATTACKS = ("mia_auc_loss", "mia_auc_min_k_pp")
DEFAULT_PARITY_TOLERANCE = 0.05
SPLITS = ("forget", "retain", "holdout")
# Headline numbers and how each is better: "max", "min", or a target value.
HEADLINE_GOALS: dict[str, str | float] = {
    "forget_quality": "max",
    "model_utility": "max",
    "retain_utility": "max",
    "utility_ratio": "max",
    "privleak": 0.0,
    "mia_auc": 0.5,
    PARITY: "min",
}
# Utility numbers: measured on the retain set, from generated answers (ROUGE-L).
UTILITIES = ("model_utility", "retain_utility", "utility_ratio")
# p-values span dozens of orders of magnitude: distances to them are measured in decades.
LOG_SCALE = frozenset({"forget_quality"})
_CLAUSE = re.compile(r"^\s*([A-Za-z0-9_\-%+]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


def canonical(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def metric_goal(name: str) -> str | float:
    """ "max", "min" or a target value for a calibration metric; ConfigError if unknown."""
    from tui_unlearn.metrics.registry import PAIR, SPLIT, get_metric

    name = canonical(name)
    if name in HEADLINE_GOALS:
        return HEADLINE_GOALS[name]
    metric = get_metric(name)
    if metric is not None and metric.scope == PAIR:
        return metric.target if metric.target is not None else metric.goal()
    split, _, rest = name.partition("_")
    metric = get_metric(rest) if split in SPLITS else None
    if metric is not None and metric.scope == SPLIT and metric.aggregate is not None:
        goal = metric.goal(split)
        return metric.target if goal == "target" and metric.target is not None else goal
    raise ConfigError(
        f"unknown metric {name!r} for a stop rule or --keep-best; use forget_quality, model_utility, "
        "retain_utility, utility_ratio, holdout_parity, privleak, mia_auc_<attack>, or <split>_<metric> "
        "such as forget_accuracy"
    )


def needs_generation(name: str) -> bool:
    """Whether measuring ``name`` needs greedy answers (accuracy, F1, ROUGE, model utility)."""
    from tui_unlearn.metrics.registry import GENERATE, get_metric

    name = canonical(name)
    if name in UTILITIES:
        return True  # its ROUGE-L term comes from generated answers
    split, _, rest = name.partition("_")
    metric = get_metric(rest) if split in SPLITS else None
    return metric is not None and metric.needs == GENERATE


def splits_needed(name: str) -> set[str]:
    name = canonical(name)
    if name in UTILITIES:
        return {"retain"}
    if name == "forget_quality":
        return {"forget"}
    if name in (PARITY, "privleak", "mia_auc") or name.startswith("mia_auc"):
        return {"forget", "holdout"}
    split = name.partition("_")[0]
    return {split} if split in SPLITS else set()


@dataclass(frozen=True)
class Clause:
    metric: str
    op: str  # ">=" | "<=" | ">" | "<"
    value: float

    def text(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"

    def holds(self, values: Mapping[str, float | None]) -> bool:
        v = values.get(self.metric)
        if v is None or not math.isfinite(v):
            return False
        return {">=": v >= self.value, "<=": v <= self.value, ">": v > self.value, "<": v < self.value}[self.op]

    def distance(self, values: Mapping[str, float | None]) -> float | None:
        """How far the value is from satisfying the clause (0 when it does; decades for p-values)."""
        v = values.get(self.metric)
        if v is None or not math.isfinite(v):
            return None
        if self.metric in LOG_SCALE:
            v, bound = math.log10(max(v, 1e-300)), math.log10(max(self.value, 1e-300))
        else:
            bound = self.value
        return max(0.0, bound - v) if self.op in (">=", ">") else max(0.0, v - bound)


@dataclass(frozen=True)
class StopRule:
    """All clauses must hold. ``text`` is what the user wrote."""

    text: str
    clauses: tuple[Clause, ...]

    @property
    def metrics(self) -> list[str]:
        return [c.metric for c in self.clauses]

    def holds(self, values: Mapping[str, float | None]) -> bool:
        return all(c.holds(values) for c in self.clauses)

    def distance(self, values: Mapping[str, float | None]) -> float | None:
        """The largest clause distance (None while a value is missing)."""
        ds = [c.distance(values) for c in self.clauses]
        return None if any(d is None for d in ds) else max(ds)  # type: ignore[type-var]


def parse_rule(text: str) -> StopRule:
    """A :class:`StopRule` from ``--stop-when`` text; ConfigError (one line) when malformed."""
    parts = [p for p in re.split(r",|\band\b", text) if p.strip()]
    if not parts:
        raise ConfigError("--stop-when is empty; e.g. holdout-parity, forget_quality>=0.5 or forget_accuracy<=0.1")
    clauses = []
    for part in parts:
        name, _, tol = part.strip().partition(":")
        if canonical(name) == PARITY:
            try:
                tolerance = float(tol) if tol.strip() else DEFAULT_PARITY_TOLERANCE
            except ValueError:
                raise ConfigError(
                    f"--stop-when: holdout-parity takes a tolerance such as holdout-parity:0.05, got {tol!r}"
                ) from None
            if not 0 < tolerance <= 0.5:
                raise ConfigError(f"--stop-when: the holdout-parity tolerance must be in (0, 0.5], got {tolerance:g}")
            clauses.append(Clause(PARITY, "<=", tolerance))
            continue
        match = _CLAUSE.match(part)
        if match is None:
            raise ConfigError(
                f"--stop-when: cannot read {part.strip()!r}; write METRIC>=VALUE, METRIC<=VALUE or holdout-parity[:TOL]"
            )
        metric, op, value = canonical(match.group(1)), match.group(2), match.group(3)
        metric_goal(metric)  # unknown names fail here
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"--stop-when: {value!r} is not a number") from None
        clauses.append(Clause(metric, op, number))
    return StopRule(text.strip(), tuple(clauses))


def check_stop_when(value: str | None) -> str | None:
    """``check_value`` of the setting: the parse error's text, or None."""
    if value is None:
        return None
    try:
        parse_rule(value)
    except ConfigError as error:
        return "is not a rule: " + str(error).removeprefix("--stop-when: ")
    return None


def check_keep_best(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        metric_goal(value)
    except ConfigError as error:
        return "names " + str(error)
    return None


def better(name: str, a: float, b: float) -> bool:
    """Whether value ``a`` of metric ``name`` is strictly better than ``b``."""
    goal = metric_goal(name)
    if goal == "max":
        return a > b
    if goal == "min":
        return a < b
    return abs(a - float(goal)) < abs(b - float(goal))


def holdout_parity(forget_aggregates: Mapping[str, float]) -> float | None:
    """The larger distance from 0.5 of the forget-vs-holdout LOSS and Min-K%++ AUCs."""
    aucs = [forget_aggregates.get(k) for k in PARITY_ATTACKS]
    if any(a is None or not math.isfinite(a) for a in aucs):
        return None
    return max(abs(a - 0.5) for a in aucs)  # type: ignore[operator]
