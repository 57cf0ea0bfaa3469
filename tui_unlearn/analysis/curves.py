"""Curves over steps: series read from a session's events, which way each is better,
thinning for a terminal's width, and drawing with plotext (the TUI and ``analyze``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tui_unlearn.metrics.registry import get_metric
from tui_unlearn.sessions import EVENTS_FILE, Session

if TYPE_CHECKING:
    from tui_unlearn.analysis.comparison import Comparison

Points = list[tuple[int, float]]

# Loss terms that a method pushes up (gradient ascent terms) or whose lower value means forgotten.
_TERM_GOALS = {"forget_nll": "max", "forget_kl": "max", "forget_logratio": "min"}


def series_name(split: str, metric: str) -> str:
    return f"{split} {metric}"


def series_goal(name: str) -> str:
    """``"min"`` or ``"max"``: the direction in which series ``name`` is better.

    ``name`` is a loss term ("loss", "retain_nll", ...) or "<split> <metric>" as made by
    ``series_name``. Loss terms are minimised unless listed as ascent terms.
    """
    if " " in name:
        split, name = name.split(" ", 1)
        metric = get_metric(name)
        # The registry knows each metric's direction; on the forget set knowledge should fall.
        if metric is not None and metric.goal(split) != "target":
            return metric.goal(split)
        return "min"
    return _TERM_GOALS.get(name, "min")


def best_value(name: str, values: list[float]) -> float | None:
    finite = [v for v in values if isinstance(v, (int, float)) and v == v]
    if not finite:
        return None
    return min(finite) if series_goal(name) == "min" else max(finite)


def _finite(value: Any) -> bool:
    """A number that float() takes and that is neither NaN nor infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def curves_from_events(events: Iterable[dict[str, Any]]) -> dict[str, Points]:
    """Series name -> [(step, value)] from event dicts (a session's events.jsonl, as
    ``Session.read_events`` checked them).

    Loss terms come from "step" events; evaluation metrics from "evaluation" events of
    every phase, named by ``series_name`` (before is step 0, after the last step).
    Values that are not finite numbers are left out (nothing to draw).
    """
    curves: dict[str, Points] = {}
    for event in events:
        kind = event.get("event")
        if kind == "step":
            for term, value in (event.get("losses") or {}).items():
                if _finite(value):
                    curves.setdefault(term, []).append((int(event["step"]), float(value)))
        elif kind == "evaluation":
            for split, metrics in (event.get("metrics") or {}).items():
                for metric, value in metrics.items():
                    if _finite(value):
                        curves.setdefault(series_name(split, metric), []).append((int(event["step"]), float(value)))
    return curves


@dataclass
class Curves:
    """A session's series and what of its events.jsonl could not be used."""

    series: dict[str, Points] = field(default_factory=dict)
    skipped: int = 0  # events.jsonl lines left out (not UTF-8, not JSON, wrong shape)
    problem: str | None = None  # events.jsonl could not be read at all

    def note(self) -> str | None:
        if self.problem:
            return self.problem
        if self.skipped:
            return f"{EVENTS_FILE}: {self.skipped} unreadable line{'s' if self.skipped != 1 else ''} skipped"
        return None


def session_curves(session: Session) -> Curves:
    read = session.read_events()
    return Curves(curves_from_events(read.rows), read.skipped, read.problem)


def thin(points: Points, max_points: int) -> Points:
    """Every k-th point so that at most about ``max_points`` remain; the last point is kept."""
    if max_points <= 0 or len(points) <= max_points:
        return points
    stride = -(-len(points) // max_points)
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def plot_curves(
    plt,
    curves: dict[str, Points],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    max_points: int = 600,
) -> None:
    """Draw ``curves`` (label -> [(step, value)]) into a plotext-like object.

    ``plt`` is the ``plotext`` module (then call ``plt.show()``) or a textual-plotext
    widget's ``plt``; the figure's data is replaced, its size and theme are kept. Long
    curves are thinned to about ``max_points`` points (a terminal has fewer columns), so
    drawing stays fast however long the run.
    """
    plt.clear_data()
    for label, points in curves.items():
        if not points:
            continue
        points = thin(points, max_points)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        plt.plot(xs, ys, label=label, marker="braille")
    plt.title(title)
    plt.xlabel(xlabel)
    if ylabel:
        plt.ylabel(ylabel)


def _num(value: Any) -> float:
    return float(value) if _finite(value) else 0.0


def comparison_charts(comparison: Comparison, width: int = 100, height: int = 18) -> str:
    """Plotext charts as text: headline bars, accuracy over steps, quality vs utility."""
    import plotext as plt

    def figure() -> None:
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")

    out = []
    metrics = [("forget quality", "forget_quality"), ("model utility", "model_utility"), ("forget MIA AUC", "mia_auc")]
    heads = comparison.headlines()
    figure()
    plt.multiple_bar(
        [name for name, _ in metrics],
        [[_num(h[key]) for _, key in metrics] for h in heads],
        labels=comparison.labels,
    )
    plt.title("after: forget quality, model utility, forget MIA AUC")
    out.append(plt.build())

    curves = {}
    for label, c in zip(comparison.labels, comparison.curves):
        for series in ("forget accuracy", "retain accuracy"):
            if len(c.series.get(series, [])) > 1:
                curves[f"{label}: {series}"] = c.series[series]
    if curves:
        figure()
        plot_curves(plt, curves, title="accuracy over steps", ylabel="accuracy")
        out.append(plt.build())

    points = [(label, h["model_utility"], h["forget_quality"]) for label, h in zip(comparison.labels, heads)]
    points = [p for p in points if _finite(p[1]) and _finite(p[2])]
    if points:
        figure()
        for label, mu, fq in points:
            plt.scatter([mu], [fq], label=label, marker="hd")
        plt.title("forget quality against model utility")
        plt.xlabel("model utility")
        plt.ylabel("forget quality")
        out.append(plt.build())
    return "\n".join(out)
