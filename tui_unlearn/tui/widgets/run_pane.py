"""The run pane: start and stop, progress with ETA, a sparkline per series, the loss plot, a log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Button, Label, ProgressBar, RichLog, Static
from textual_plotext import PlotextPlot

from tui_unlearn import events as ev
from tui_unlearn.analysis.curves import EVAL_SERIES, plot_curves, series_name
from tui_unlearn.analysis.reporting import evaluation_line, format_seconds, progress_text, run_started_line
from tui_unlearn.tui.widgets.series import SeriesSpark

LOG_LINES = 2000  # lines the run log keeps


class RunPane(Vertical):
    """Shows one run as it happens. Fed by the app from the run worker's messages."""

    status: reactive[str] = reactive("idle")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.loss_history: dict[str, list[tuple[int, float]]] = {}
        self.step = 0
        self.total_steps = 0
        self.session_id: str | None = None
        self.log_lines: list[str] = []  # what the log shows, as plain lines

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-controls"):
            yield Button("Start ^r", id="start-run", variant="success", compact=True, action="app.start_run", tooltip="Start a run (ctrl+r)")
            yield Button("Stop ^x", id="stop-run", variant="error", compact=True, action="app.stop_run", disabled=True, tooltip="Stop after this step (ctrl+x)")
            yield Label("", id="run-status", markup=False)
        with Horizontal(id="run-progress"):
            yield ProgressBar(total=100, show_eta=False, id="run-bar")
            yield Label(" no run yet: ctrl+r starts one", id="run-eta", markup=False)
        with VerticalScroll(id="run-body"):
            with Vertical(id="run-series"):
                yield Static("Loss terms", classes="run-heading")
                yield Vertical(id="loss-series")
                yield Static("Evaluation (forget should fall, retain should hold)", classes="run-heading")
                with Vertical(id="eval-series"):
                    for split, metric in EVAL_SERIES:
                        yield SeriesSpark(series_name(split, metric))
            yield PlotextPlot(id="loss-plot")
            yield RichLog(id="run-log", max_lines=LOG_LINES, wrap=True, markup=False, highlight=False)

    def on_mount(self) -> None:
        self.query_one("#run-series").border_title = "Series"
        self.query_one("#loss-plot").border_title = "Loss curves"
        self.query_one("#run-log").border_title = "Log"
        self._redraw_plot()
        self.watch_status(self.status)

    # ---- state ----
    def watch_status(self, status: str) -> None:
        if not self.is_mounted:
            return
        running = status == "running"
        self.query_one("#start-run", Button).disabled = running
        self.query_one("#stop-run", Button).disabled = not running
        where = f" · session {self.session_id}" if self.session_id else ""
        self.query_one("#run-status", Label).update(f"{status}{where}")
        self.set_class(running, "-running")

    def reset(self, total_steps: int | None = None) -> None:
        """Clear everything shown for a new run."""
        self.loss_history = {}
        self.step, self.total_steps = 0, total_steps or 0
        self.session_id = None
        self.query_one("#loss-series").remove_children()
        for spark in self.query("#eval-series SeriesSpark").results(SeriesSpark):
            spark.values = ()
        self.query_one("#run-bar", ProgressBar).update(total=total_steps or 100, progress=0)
        self.query_one("#run-eta", Label).update(" loading the data and the model, then evaluating before …")
        self.query_one("#run-log", RichLog).clear()
        self.log_lines = []
        self._redraw_plot()

    def log_line(self, text: str) -> None:
        self.log_lines.append(text)
        del self.log_lines[:-LOG_LINES]
        self.query_one("#run-log", RichLog).write(text)

    # ---- engine news ----
    def begin(self, started: ev.RunStarted) -> None:
        self.session_id = started.session_id
        self.total_steps = started.total_steps
        self.query_one("#run-bar", ProgressBar).update(total=started.total_steps, progress=0)
        self.log_line(run_started_line(started.session_id, started.data, started.total_steps))
        self.watch_status(self.status)

    def add_steps(self, steps: list[ev.StepLosses]) -> None:
        new: dict[str, list[float]] = {}
        for step in steps:
            for term, value in step.losses.items():
                self.loss_history.setdefault(term, []).append((step.step, value))
                new.setdefault(term, []).append(value)
        container = self.query_one("#loss-series")
        for term, values in new.items():
            spark = next((s for s in container.query(SeriesSpark).results(SeriesSpark) if s.series == term), None)
            if spark is None:
                spark = SeriesSpark(term)
                container.mount(spark)
            spark.extend(values)
        last = steps[-1]
        self.step, self.total_steps = last.step, last.total_steps
        self.query_one("#run-bar", ProgressBar).update(total=last.total_steps, progress=last.step)
        self.query_one("#run-eta", Label).update(" " + progress_text(last.step, last.total_steps, last.elapsed))
        self._redraw_plot()

    def add_evaluation(self, evaluation: ev.Evaluation) -> None:
        for spark in self.query("#eval-series SeriesSpark").results(SeriesSpark):
            split, metric = spark.series.split(" ", 1)
            value = evaluation.metrics.get(split, {}).get(metric)
            if value is not None:
                spark.extend([value])
        self.log_line(evaluation_line(evaluation.step, evaluation.phase, evaluation.metrics))

    def end(self, finished: ev.RunFinished) -> None:
        self.status = finished.status
        if finished.status == "finished":
            self.query_one("#run-bar", ProgressBar).update(progress=self.total_steps)
        seconds = finished.summary.get("seconds")
        self.log_line(f"run {finished.status} after {finished.summary.get('steps', self.step)} steps in {format_seconds(seconds)}")

    def fail(self, message: str) -> None:
        self.status = "failed"
        self.log_line(f"failed: {message}")

    def _redraw_plot(self) -> None:
        plot = self.query_one("#loss-plot", PlotextPlot)
        plot_curves(plot.plt, self.loss_history, title="")
        plot.refresh()
