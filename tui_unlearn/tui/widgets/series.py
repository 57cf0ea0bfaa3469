"""One watched series: its name, current and best value, and a sparkline of its history."""

from __future__ import annotations

from statistics import fmean

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from tui_unlearn.analysis.curves import best_value, series_goal
from tui_unlearn.analysis.tables import fmt


class SeriesSpark(Widget):
    """A row: ``name  current  best`` then a sparkline of every value so far.

    ``values`` is replaced (never mutated) so the bound sparkline redraws; the caption
    says which direction counts as better (↓ lower, ↑ higher).
    """

    DEFAULT_CSS = """
    SeriesSpark {
        layout: horizontal;
        height: 1;
    }
    SeriesSpark > .series--caption {
        width: 42;
        height: 1;
    }
    SeriesSpark > Sparkline {
        width: 1fr;
        min-width: 8;
    }
    """

    values: reactive[tuple[float, ...]] = reactive(tuple, always_update=True)

    def __init__(self, series: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series = series
        self.goal = series_goal(series)

    def compose(self) -> ComposeResult:
        yield Label(self._caption(), classes="series--caption", markup=False)
        yield Sparkline(summary_function=fmean).data_bind(data=SeriesSpark.values)

    def extend(self, new_values: list[float]) -> None:
        self.values = (*self.values, *new_values)

    def watch_values(self) -> None:
        if self.is_mounted:
            self.query_one(".series--caption", Label).update(self._caption())

    def _caption(self) -> str:
        arrow = "↓" if self.goal == "min" else "↑"
        current = self.values[-1] if self.values else None
        best = best_value(self.series, list(self.values))
        return f"{self.series[:16]:<16}{arrow} {fmt(current, 4):>8}  best {fmt(best, 4):>8}"
