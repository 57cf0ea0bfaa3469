"""The registry of metrics: one declaration each, read by every part that shows a number.

A :class:`Metric` says how one number is made and how to read it: the per-example value
(from an :class:`Example`: the record, the model's scores and its generated text), how a
split's examples aggregate, which way is better, its display name, and where it shows
(the compare table, the run's sparklines). Evaluation fills rows and aggregates from the
registry; the compare table, ``analyze``'s exports and the TUI's sparklines list metrics
from it. Adding a metric is one ``register(Metric(...))`` in ``metrics/catalog.py`` (or in a plugin's module).

Three scopes (:class:`Scope`):

- ``SPLIT``: a per-example value aggregated over one split (accuracy, loss, truth ratio);
- ``PAIR``: a value of a forget split against the holdout split (membership-inference AUCs),
  computed from a per-example column of both;
- ``RUN``: a headline number of a whole evaluation (forget quality, model utility,
  privacy leakage), computed by the recipe or the oracle code; declared here so tables and
  charts know its name and direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np


class Needs(StrEnum):
    """What a metric needs from the evaluation: a forward pass over the answer, or greedy
    generation too. (Field metrics, ``Metric.field_metric``, run in full evaluations only.)"""

    SCORE = "score"
    GENERATE = "generate"


class Scope(StrEnum):
    """What one value of a metric covers (see the module's docstring)."""

    SPLIT = "split"
    PAIR = "pair"
    RUN = "run"


class Direction(StrEnum):
    """Which way a metric is better (``Metric.better``)."""

    HIGHER = "higher"
    LOWER = "lower"


Goal = Literal["min", "max", "target"]

# The names metric declarations use (catalog.py, plugins, CONTRIBUTING's example).
SCORE, GENERATE = Needs.SCORE, Needs.GENERATE
SPLIT, PAIR, RUN = Scope.SPLIT, Scope.PAIR, Scope.RUN
HIGHER, LOWER = Direction.HIGHER, Direction.LOWER


@dataclass
class Example:
    """What a per-example metric sees for one record of one split.

    ``main`` is the :class:`~tui_unlearn.metrics.scoring.AnswerScore` of the gold answer
    (for plain text: of the whole text), ``paraphrased``/``perturbed`` those of the answer
    variants when the record has them and the evaluation scored them; ``gold`` is what
    generation is compared with (the answer, or a text's true continuation), ``generated``
    the model's greedy output (None without generation).
    """

    split: str
    kind: str  # "qa" | "text" | "completion" (MUSE VerbMem) | "knowmem" | "choice"
    record: Mapping[str, Any]
    gold: str
    main: Any
    generated: str | None = None
    paraphrased: Any = None
    perturbed: Sequence[Any] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # what a recipe adds (e.g. option scores)
    prompt: str | None = None  # what the row shows as its question (None: the record's question)

    @property
    def truth_base(self) -> Any:
        """The score the truth ratio puts over the perturbed answers: the paraphrased
        answer's, or the answer's own when the record has no paraphrase (TOFU's real
        authors and world facts: ``base_answer_key: answer``)."""
        return self.paraphrased if self.paraphrased is not None else self.main


def mean(values: Sequence[float], split: str) -> float:
    return float(np.mean(np.asarray(values, dtype=np.float64)))


@dataclass(frozen=True)
class Metric:
    """One number: how it is computed, aggregated, named and read.

    ``column``: the per-example row key this metric writes (with ``per_example``) or reads
    (an aggregate of another metric's column, e.g. exact memorisation of token accuracy).
    ``aggregate`` None: a per-example detail with no split value. ``better``: "higher" or
    "lower", or None with ``target`` (closer is better, e.g. an AUC of 0.5). ``knowledge``:
    it measures what the model knows, so on a forget set the goal is the other way round.
    """

    name: str
    display: str
    scope: Scope = SPLIT
    column: str | None = None
    per_example: Callable[[Example], float | None] | None = None
    aggregate: Callable[[Sequence[float], str], float] | None = mean
    better: Direction | None = HIGHER
    target: float | None = None
    knowledge: bool = False
    needs: Needs = SCORE
    field_metric: bool = True  # computed only in full (before/after) evaluations
    kinds: tuple[str, ...] = ("qa", "text")
    compare: bool = False  # a row of the sessions compare table
    sparkline: bool = False  # a series in the run pane
    help: str = ""

    @property
    def row_key(self) -> str | None:
        return self.column or (self.name if self.per_example else None)

    def goal(self, split: str = "") -> Goal:
        """ "min", "max" or "target": the direction in which this metric is better on ``split``."""
        if self.better is None:
            return "target"
        up = self.better == HIGHER
        if self.knowledge and split.startswith("forget"):
            up = not up
        return "max" if up else "min"

    def compute(self, example: Example) -> float | None:
        if self.per_example is None or example.kind not in self.kinds:
            return None
        if self.needs == GENERATE and example.generated is None:
            return None  # a split evaluated without generation
        value = self.per_example(example)
        if value is None:
            return None
        value = float(value)
        return None if math.isnan(value) else value


_REGISTRY: dict[str, Metric] = {}
_loaded = False
# The modules of this package that declare metrics, imported by name (see tui_unlearn.plugins);
# declaration order is the order of rows, aggregates and compare-table lines. A plugin's come
# from its package's ``tui_unlearn.metrics`` entry point, after these.
BUILTIN = ("catalog",)


def register(metric: Metric) -> Metric:
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} registered twice")
    _REGISTRY[metric.name] = metric
    return metric


def all_metrics() -> dict[str, Metric]:
    global _loaded
    if not _loaded:
        from tui_unlearn.plugins import METRICS, import_builtin, load_plugins

        _loaded = True
        import_builtin("tui_unlearn.metrics", BUILTIN)
        load_plugins(METRICS, Metric, register, lambda: _REGISTRY)
    return dict(_REGISTRY)


def get_metric(name: str) -> Metric | None:
    return all_metrics().get(name)


def metrics_in(scope: Scope) -> list[Metric]:
    return [m for m in all_metrics().values() if m.scope == scope]


def row_metrics(*, generate: bool, field_metrics: bool) -> list[Metric]:
    """The per-example metrics an evaluation with these options computes, in declaration order."""
    return [
        m
        for m in all_metrics().values()
        if m.per_example is not None and (generate or m.needs != GENERATE) and (field_metrics or not m.field_metric)
    ]


def split_aggregates(
    split: str, rows: Sequence[Mapping[str, Any]], *, generate: bool, field_metrics: bool
) -> dict[str, float]:
    """The split's aggregate of every split-scope metric whose column has values in ``rows``."""
    out: dict[str, float] = {}
    for m in metrics_in(SPLIT):
        if m.aggregate is None or m.row_key is None:
            continue
        if (m.needs == GENERATE and not generate) or (m.field_metric and not field_metrics):
            continue
        values = [r.get(m.row_key) for r in rows]
        finite = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
        if finite:
            out[m.name] = float(m.aggregate(finite, split))
    return out


def pair_aggregates(members: Sequence[Mapping[str, Any]], nonmembers: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Every pair-scope metric of a forget split's rows (members) against the holdout's."""
    out: dict[str, float] = {}
    for m in metrics_in(PAIR):
        if m.aggregate is None or m.column is None:
            continue
        a = [r[m.column] for r in members if r.get(m.column) is not None]
        b = [r[m.column] for r in nonmembers if r.get(m.column) is not None]
        if a and b:
            out[m.name] = float(m.aggregate((a, b), ""))  # type: ignore[arg-type]
    return out


def compare_metrics() -> list[Metric]:
    """The split metrics a comparison shows, in declaration order."""
    return [m for m in all_metrics().values() if m.compare and m.scope != RUN]


def sparkline_series() -> list[tuple[str, Metric]]:
    """(split, metric) pairs the run pane draws as sparklines."""
    return [(split, m) for split in ("forget", "retain") for m in all_metrics().values() if m.sparkline]


# The headline numbers every unlearning summary carries (TOFU's two and MUSE's privacy leakage),
# and the forget MIA AUC behind the last; recipes add their own run-scope metrics beside them.
CORE_HEADLINES = ("forget_quality", "model_utility", "privleak")
SUMMARY_HEADLINES = (*CORE_HEADLINES, "mia_auc")
