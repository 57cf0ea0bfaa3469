"""One watched series: its name, current and best value, and a sparkline of its history."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from statistics import fmean

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label

from tui_unlearn.analysis.tables import fmt
from tui_unlearn.tui.widgets.mounting import app_closing

BARS = "▁▂▃▄▅▆▇█"
# Metrics that are fractions: their sparklines are drawn against 0..1, so a flat series
# reads as flat at its level (0.95 high, 0.05 low), not at the bottom of its own range.
UNIT_METRICS = {"accuracy", "f1", "precision", "recall", "rouge_l", "probability", "exact_match"}

Points = tuple[tuple[int, float], ...]

LABEL_WIDTH = 20  # "alternate_logratio", "forget token accuracy" and the like, whole or nearly
NUMBER_WIDTH = 9  # "-106.1341", "1.0000", "-1.23e+05"
CAPTION_WIDTH = LABEL_WIDTH + 2 + NUMBER_WIDTH + 2 + 5 + NUMBER_WIDTH + 1


def short_number(value: float | None, width: int = NUMBER_WIDTH) -> str:
    """``value`` in at most ``width`` characters: four decimals when they fit, fewer when the
    integer part is wide, scientific when even that does not fit (or for tiny values);
    "–" for missing."""
    if value is None or value != value:
        return "–"
    text = fmt(float(value), 4)
    if len(text) <= width:
        return text
    for decimals in (3, 2, 1, 0):
        text = f"{value:.{decimals}f}"
        if len(text) <= width:
            return text
    return f"{value:.{max(0, width - 7)}e}"


def spark_text(values: Sequence[float], width: int, lo: float | None = None, hi: float | None = None) -> str:
    """``values`` as at most ``width`` bar characters, oldest first.

    Fewer values than columns: one column each (a series with one point is one bar, not
    a full row); more: the mean of each of ``width`` equal buckets. Heights are scaled to
    ``lo``..``hi`` when given (clamped), else to the values' own range; a series with no
    range is drawn at mid height.
    """
    if width <= 0 or not values:
        return ""
    if len(values) > width:
        n = len(values)
        cols = [fmean(values[i * n // width : (i + 1) * n // width]) for i in range(width)]
    else:
        cols = list(values)
    low = min(cols) if lo is None else lo
    high = max(cols) if hi is None else hi
    top = len(BARS) - 1
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return BARS[top // 2] * len(cols)
    out = []
    for v in cols:
        ratio = min(1.0, max(0.0, (v - low) / (high - low)))
        out.append(BARS[round(ratio * top)])
    return "".join(out)


class Spark(Widget):
    """A one-line sparkline that fits its width (see ``spark_text``)."""

    DEFAULT_CSS = """
    Spark {
        height: 1;
        width: 1fr;
        min-width: 8;
        color: $accent;
    }
    """

    values: reactive[tuple[float, ...]] = reactive(tuple, layout=False)

    def __init__(self, bounds: tuple[float, float] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.bounds = bounds

    def render(self) -> Text:
        lo, hi = self.bounds or (None, None)
        return Text(spark_text(self.values, self.size.width, lo, hi), no_wrap=True, overflow="crop")


class SeriesSpark(Widget):
    """A row: ``name  current  best`` then a sparkline of every value so far.

    ``points`` ((step, value), oldest first) is replaced, never mutated, so the sparkline
    redraws; a point at a step already shown replaces the history from that step on (a
    resumed run takes those steps again). The arrow says which way is better (↓ lower,
    ↑ higher).

    A value is current only until an evaluation that did not measure it: ``evaluated(step)``
    tells the row that the run was evaluated at ``step``; when its last point is older, the
    row shows the value with the step it was measured at (``1.0000  @ step 0``), never as
    the value now.
    """

    DEFAULT_CSS = f"""
    SeriesSpark {{
        layout: horizontal;
        height: 1;
    }}
    SeriesSpark > .series--caption {{
        width: {CAPTION_WIDTH};
        height: 1;
    }}
    """

    points: reactive[Points] = reactive(tuple, always_update=True)
    # The step of the run's latest evaluation (None: no evaluation yet); see ``evaluated``.
    evaluated_at: reactive[int | None] = reactive(None)

    def __init__(
        self,
        series: str,
        *,
        label: str | None = None,
        goal: str = "min",
        bounds: tuple[float, float] | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.series = series
        self.label = label or series
        self.goal = goal
        self.bounds = bounds

    def compose(self) -> ComposeResult:
        yield Label(self._caption(), classes="series--caption", markup=False)
        yield Spark(self.bounds)

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self._show()  # points added before the row was mounted (is_mounted is still False here)

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(v for _, v in self.points)

    def add(self, points: Iterable[tuple[int, float]]) -> None:
        new = [(int(s), float(v)) for s, v in points]
        if not new:
            return
        first = new[0][0]
        kept = self.points
        if kept and kept[-1][0] >= first:  # steps taken again (a resumed run) replace the old ones
            kept = tuple(p for p in kept if p[0] < first)
        self.points = kept + tuple(new)

    def clear(self) -> None:
        self.points = ()
        self.evaluated_at = None

    def evaluated(self, step: int) -> None:
        """The run was evaluated at ``step`` (whether or not this series was measured)."""
        if self.evaluated_at is None or step >= self.evaluated_at:
            self.evaluated_at = step

    @property
    def measured_at(self) -> int | None:
        """The step the shown value was measured at when an evaluation since did not measure
        it (the value is stale); None while the value is current or there is none."""
        if not self.points or self.evaluated_at is None:
            return None
        step = self.points[-1][0]
        return step if step < self.evaluated_at else None

    def watch_points(self) -> None:
        if self.is_mounted:
            self._show()

    def watch_evaluated_at(self) -> None:
        if self.is_mounted:
            self._show()

    def _show(self) -> None:
        self.query_one(".series--caption", Label).update(self._caption(), layout=False)  # fixed width, 1 line
        self.query_one(Spark).values = self.values

    def best(self) -> float | None:
        values = [v for v in self.values if v == v]
        if not values:
            return None
        return min(values) if self.goal == "min" else max(values)

    def caption(self) -> str:
        """The row's text before its sparkline (what the tests read)."""
        return self._caption()

    def _caption(self) -> str:
        arrow = "↓" if self.goal == "min" else "↑"
        label = self.label if len(self.label) <= LABEL_WIDTH else self.label[: LABEL_WIDTH - 1] + "…"
        current = self.points[-1][1] if self.points else None
        head = f"{label:<{LABEL_WIDTH}}{arrow} {short_number(current):>{NUMBER_WIDTH}}  "
        stale = self.measured_at
        if stale is not None:
            return head + f"@ step {stale}"
        return head + f"best {short_number(self.best()):>{NUMBER_WIDTH}}"
