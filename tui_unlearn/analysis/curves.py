"""Curves over steps: series read from a session's events, which way each is better,
thinning for a terminal's width, and drawing with plotext (the TUI and ``analyze``)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tui_unlearn.metrics.registry import get_metric
from tui_unlearn.printable import printable
from tui_unlearn.sessions import EVENTS_FILE, Session

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


# Each series its own marker and colour, so a chart tells sessions apart on a terminal
# without colour (NO_COLOR, a pipe) as well as with it.
MARKERS = ("o", "x", "+", "*", "#", "@", "%", "=", "~", "&")
BAR_MARKERS = ("█", "▒", "/", "\\", "░", "#", "=", "+", "x", "o")
COLOURS = ("blue+", "red+", "green+", "orange+", "magenta+", "cyan+", "blue", "red", "green", "orange")
_SGR = re.compile("\x1b\\[[0-9;]*m")


POINT_MARKERS = "123456789abcdefghijklmnopqrstuvwxyz"


def point_marker(index: int) -> str:
    """The marker of a chart's ``index``-th labelled point: 1..9, then a..z (the legend,
    or a table beside the chart, says whose)."""
    return POINT_MARKERS[index % len(POINT_MARKERS)]


@dataclass(frozen=True)
class Style:
    marker: str
    colour: str
    label: str


def styles(labels: Iterable[str], markers: tuple[str, ...] = MARKERS) -> list[Style]:
    """One ``Style`` per label, in order (labels shown through ``printable``: they may come
    from session files)."""
    return [
        Style(markers[i % len(markers)], COLOURS[i % len(COLOURS)], printable(label)) for i, label in enumerate(labels)
    ]


def legend_lines(entries: list[Style], width: int, *, colour: bool = False) -> list[str]:
    """The legend below a chart (never over its data): ``marker label`` entries, as many
    per line as fit in ``width``."""
    lines: list[str] = []
    line, used = "", 0
    for entry in entries:
        text = f"{entry.marker} {entry.label}"
        shown = f"\x1b[{_SGR_CODES.get(entry.colour, '39')}m{text}\x1b[0m" if colour else text
        if used and used + 3 + len(text) > width:
            lines.append(line)
            line, used = "", 0
        line, used = (line + "   " + shown, used + 3 + len(text)) if used else (shown, len(text))
    if line:
        lines.append(line)
    return lines


# plotext's colour names as terminal colour codes (256-colour palette), for the legend.
_SGR_CODES = {
    "blue+": "38;5;12",
    "red+": "38;5;9",
    "green+": "38;5;10",
    "orange+": "38;5;11",
    "magenta+": "38;5;13",
    "cyan+": "38;5;14",
    "blue": "38;5;4",
    "red": "38;5;1",
    "green": "38;5;2",
    "orange": "38;5;3",
    "gray": "38;5;8",
}


def uncoloured(text: str) -> str:
    """``text`` without its colour codes (plotext writes some even in its "clear" theme)."""
    return _SGR.sub("", text)


def plot_curves(
    plt,
    curves: dict[str, Points],
    *,
    title: str = "",
    xlabel: str = "step",
    ylabel: str = "",
    max_points: int = 600,
) -> list[Style]:
    """Draw ``curves`` (label -> [(step, value)]) into a plotext-like object; return the
    legend (a ``Style`` per curve drawn) for the caller to show outside the data.

    ``plt`` is the ``plotext`` module (then call ``plt.show()``) or a textual-plotext
    widget's ``plt``; the figure's data is replaced, its size and theme are kept. Each
    curve has its own marker and colour; a curve of one or two measurements is drawn as
    points (a line between them would claim values nobody measured). Long curves are
    thinned to about ``max_points`` points (a terminal has fewer columns), so drawing stays
    fast however long the run.
    """
    plt.clear_data()
    drawn = [(label, points) for label, points in curves.items() if points]
    legend = styles([label for label, _ in drawn])
    for style, (_, points) in zip(legend, drawn):
        points = thin(points, max_points)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        draw = plt.plot if len(points) > 2 else plt.scatter
        draw(xs, ys, marker=style.marker, color=style.colour)
    plt.title(title)
    plt.xlabel(xlabel)
    if ylabel:
        plt.ylabel(ylabel)
    return legend


def _num(value: Any) -> float:
    return float(value) if _finite(value) else 0.0


class ChartedComparison(Protocol):
    """What ``comparison_charts`` reads of a ``Comparison`` (whose module imports this one)."""

    @property
    def labels(self) -> list[str]: ...
    @property
    def curves(self) -> list[Curves]: ...
    def headlines(self) -> list[dict[str, Any]]: ...


def comparison_charts(
    comparison: ChartedComparison, width: int = 100, height: int = 18, *, colour: bool = False
) -> str:
    """Plotext charts as text: headline bars, accuracy over steps, quality vs utility; each
    with its legend below it. ``colour``: keep the terminal colour codes (a colour
    terminal); else plain text, told apart by markers."""
    import plotext as plt

    def figure() -> None:
        plt.clear_figure()
        plt.plotsize(width, height)
        plt.theme("clear")

    def done(legend: list[Style]) -> str:
        chart = plt.build()
        chart = chart if colour else uncoloured(chart)
        lines = legend_lines(legend, width, colour=colour)
        return "\n".join([chart.rstrip("\n"), *lines])

    out = []
    metrics = [("forget quality", "forget_quality"), ("model utility", "model_utility"), ("forget MIA AUC", "mia_auc")]
    heads = comparison.headlines()
    figure()
    bars = styles(comparison.labels, BAR_MARKERS)
    plt.multiple_bar(
        [name for name, _ in metrics],
        [[_num(h[key]) for _, key in metrics] for h in heads],
        marker=[b.marker for b in bars],
        color=[b.colour for b in bars],
    )
    plt.title("after: forget quality, model utility, forget MIA AUC")
    out.append(done(bars))

    curves = {}
    for label, c in zip(comparison.labels, comparison.curves):
        for series in ("forget accuracy", "retain accuracy"):
            if c.series.get(series):
                curves[f"{label}: {series}"] = c.series[series]
    if curves:
        figure()
        legend = plot_curves(plt, curves, title="accuracy over steps", ylabel="accuracy")
        out.append(done(legend))

    points = [(label, h["model_utility"], h["forget_quality"]) for label, h in zip(comparison.labels, heads)]
    points = [p for p in points if _finite(p[1]) and _finite(p[2])]
    if points:
        figure()
        # Forget quality is a p-value: far below 1e-3 a linear axis shows every point at 0.
        log = all(fq > 0 for _, _, fq in points)
        numbered = [Style(point_marker(i), s.colour, s.label) for i, s in enumerate(styles([p[0] for p in points]))]
        for style, (_, mu, fq) in zip(numbered, points):
            plt.scatter([mu], [math.log10(fq) if log else fq], marker=style.marker, color=style.colour)
        pad_limits(plt, [mu for _, mu, _ in points], [math.log10(fq) if log else fq for _, _, fq in points])
        plt.title(("log10 forget quality" if log else "forget quality") + " against model utility")
        plt.xlabel("model utility")
        plt.ylabel("log10 forget quality" if log else "forget quality")
        out.append(done(numbered))
    return "\n\n".join(out)


def pad_limits(plt, xs: list[float], ys: list[float]) -> None:
    """Limits a little wider than the points, so none sits on the frame."""
    for values, set_limits in ((xs, plt.xlim), (ys, plt.ylim)):
        low, high = min(values), max(values)
        margin = (high - low) * 0.08 or max(abs(high) * 0.05, 0.01)
        set_limits(low - margin, high + margin)
