"""The loss curves of a run, and its log: the two growing parts of the run pane.

Loss terms differ wildly in size (``forget_logratio`` near -80 beside an NLL near 2), so
the plot shows either every term scaled to its own range (their shapes side by side) or
one term in its own units; the legend sits under the plot, never on the curves.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.events import Resize
from textual.widgets import RichLog, Select, Static
from textual_plotext import PlotextPlot

from tui_unlearn.analysis.curves import thin
from tui_unlearn.analysis.tables import fmt
from tui_unlearn.tui.widgets.mounting import Choice, app_closing

ALL = "all"
# Distinct hues that read on dark and light themes (plotext takes RGB tuples).
PALETTE = ((0, 175, 215), (255, 135, 0), (95, 215, 95), (215, 95, 215), (215, 215, 95), (255, 95, 95), (135, 135, 255))
LOG_LINES = 2000  # lines the run log keeps


def scaled(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """``points`` with values mapped to 0..1 over their own min..max (0.5 when flat)."""
    values = [v for _, v in points]
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return [(s, 0.5) for s, _ in points]
    return [(s, (v - lo) / (hi - lo)) for s, v in points]


class LossPlot(Vertical):
    """Every loss term over steps; the Select above picks all (scaled) or one term."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._terms: tuple[str, ...] = ()
        self._legend_terms: tuple[str, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Choice(
            [("every term, each scaled to its own range", ALL)],
            value=ALL,
            allow_blank=False,
            compact=True,
            id="plot-view",
            tooltip="Which loss curve to plot",
        )
        yield PlotextPlot(id="plot-canvas")
        yield Static("", id="plot-legend")

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self.border_title = "Loss curves"
        self.redraw()

    @property
    def view(self) -> str:
        return str(self.query_one("#plot-view", Select).value)

    def show(self, view: str) -> None:
        """Plot every term (``ALL``) or the one named."""
        if view == ALL or view in self.history:
            self.query_one("#plot-view", Select).value = view

    def set_history(self, history: dict[str, list[tuple[int, float]]]) -> None:
        self.history = history
        terms = tuple(history)
        if terms != self._terms:
            self._terms = terms
            box = self.query_one("#plot-view", Select)
            keep = self.view
            box.set_options(
                [("every term, each scaled to its own range", ALL), *((f"{t} (its own units)", t) for t in terms)]
            )
            box.value = keep if keep == ALL or keep in history else ALL
        self.redraw()

    @on(Select.Changed, "#plot-view")
    def _view_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.redraw()

    def redraw(self) -> None:
        plot = self.query_one("#plot-canvas", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        view = self.view
        terms = [t for t in self.history if self.history[t]]
        # Braille draws two points a column: more than that only costs time on the UI thread.
        max_points = max(60, 2 * plot.size.width)
        own_units = view != ALL or len(terms) == 1
        shown = [view] if view != ALL and view in terms else terms
        legend = Text()
        for term in shown:
            color = PALETTE[list(self.history).index(term) % len(PALETTE)]
            points = thin(self.history[term], max_points)
            drawn = points if own_units else scaled(points)
            plt.plot([s for s, _ in drawn], [v for _, v in drawn], marker="braille", color=color)
            values = [v for _, v in self.history[term]]
            if legend:
                legend.append("  ")
            legend.append("━━ ", style=f"rgb({color[0]},{color[1]},{color[2]})")
            legend.append(f"{term} {fmt(min(values), 3)}…{fmt(max(values), 3)}")
        plt.title("")
        plt.xlabel("step")
        plt.ylabel("" if own_units or not shown else "scaled 0..1")
        self.border_subtitle = "" if not shown else ("own units" if own_units else "each term scaled to its min..max")
        # The legend's lines change with the terms shown, not with each new value: relayout only then.
        relayout = tuple(shown) != self._legend_terms
        self._legend_terms = tuple(shown)
        self.query_one("#plot-legend", Static).update(
            legend if shown else Text("no steps yet", style="dim"), layout=relayout
        )
        plot.refresh()


class RunLog(RichLog):
    """The run's log: lines wrapped to the log's own width, wrapped again when it changes."""

    DEFAULT_CSS = """
    RunLog {
        scrollbar-gutter: stable;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=LOG_LINES, wrap=True, markup=False, highlight=False, min_width=16, **kwargs)
        self.texts: list[str] = []
        self._wrapped_at = 0

    def add(self, text: str) -> None:
        self.texts.append(text)
        del self.texts[:-LOG_LINES]
        self.write(text)

    def reset(self) -> None:
        self.texts = []
        self.clear()

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            self._wrapped_at = width
            self.clear()
            for text in self.texts:
                self.write(text)
