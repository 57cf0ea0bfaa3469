"""The run pane: start and stop, the phase with a moving clock, the run's scale, the results
when it ends, a sparkline per series, the loss plot and a log.

The same pane shows a run this app started and a run another process writes (``watch``:
no start/stop buttons). It is fed the engine's events by its screen.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Button, Label, ProgressBar, Static

from tui_unlearn import events as ev
from tui_unlearn.analysis.curves import series_goal
from tui_unlearn.analysis.reporting import (
    evaluation_line,
    format_seconds,
    run_started_line,
)
from tui_unlearn.analysis.tables import before_after_table
from tui_unlearn.phase_names import Phase
from tui_unlearn.tui.calibration_view import calibration_text
from tui_unlearn.tui.run_status import ENDED, RunProgress, phase_text, scale_text
from tui_unlearn.tui.widgets.loss_plot import LossPlot, RunLog
from tui_unlearn.tui.widgets.mounting import app_closing
from tui_unlearn.tui.widgets.series import UNIT_METRICS, SeriesSpark


def wall_clock() -> float:
    """Epoch seconds (the tests freeze it)."""
    return time.time()


class RunPane(Vertical):
    """Shows one run as it happens."""

    status: reactive[str] = reactive("idle")

    def __init__(self, *, watch: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.watching = watch
        self.loss_history: dict[str, list[tuple[int, float]]] = {}
        # One sparkline per loss term, kept here rather than found in the DOM: a spark mounted
        # for the previous window may not be queryable yet when the next window arrives.
        self._loss_sparks: dict[str, SeriesSpark] = {}
        self.progress = RunProgress()
        self.session_id: str | None = None
        self.summary: dict[str, Any] | None = None  # the ended run's summary (the results box shows it)
        self.calibration: ev.Calibration | None = None  # the last calibration news (stop rule, keep-best)
        self.utility_floor: float | None = None  # the run's --utility-floor, from its config

    # ---- what the tests and the app read ----
    @property
    def step(self) -> int:
        return self.progress.step

    @property
    def total_steps(self) -> int:
        return self.progress.total

    @property
    def log_lines(self) -> list[str]:
        return list(self.query_one(RunLog).texts)

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-controls"):
            if not self.watching:
                yield Button(
                    "Start ^r",
                    id="start-run",
                    variant="success",
                    compact=True,
                    action="app.start_run",
                    tooltip="Start a run (ctrl+r)",
                )
                yield Button(
                    "Stop ^x",
                    id="stop-run",
                    variant="error",
                    compact=True,
                    action="app.stop_run",
                    disabled=True,
                    tooltip="Stop after this step (ctrl+x)",
                )
            yield Label("", id="run-status", markup=False)
        with Horizontal(id="run-progress"):
            yield ProgressBar(total=100, show_eta=False, id="run-bar")
            yield Label("", id="run-phase", markup=False)
        yield Label("", id="run-scale", markup=False)
        yield Static("", id="run-calibration")
        # Narrow: one column that scrolls (results, series, loss curves, log). Wide: the
        # results and series on the left (scrolling on their own), the curves and the log on
        # the right, always in view.
        with VerticalScroll(id="run-body"):
            with VerticalScroll(id="run-main"):
                yield Static("", id="run-results")
                yield from self._series()
            with Vertical(id="run-side"):
                yield LossPlot(id="loss-plot")
                yield RunLog(id="run-log")

    def _series(self) -> ComposeResult:
        from tui_unlearn.metrics.registry import sparkline_series  # numpy: after the first frame

        with Vertical(id="run-series"):
            yield Static("Loss terms", classes="run-heading")
            yield Vertical(id="loss-series")
            yield Static("Evaluation (forget should fall, retain should hold)", classes="run-heading")
            with Vertical(id="eval-series"):
                for split, metric in sparkline_series():
                    bounds = (0.0, 1.0) if metric.name in UNIT_METRICS else None
                    yield SeriesSpark(
                        f"{split} {metric.name}",
                        label=f"{split} {metric.display}",
                        goal=metric.goal(split),
                        bounds=bounds,
                    )
                # Does it still speak: the original's answers to general prompts, NLL/token (metrics.general).
                yield SeriesSpark("general nll", label="general ability", goal="min")
                # Facts the original states that the model still states (metrics.knowledge).
                yield SeriesSpark("knowledge knowledge_kept", label="knowledge kept", goal="max", bounds=(0.0, 1.0))

    def scroll_body(self, where: str) -> None:
        """Scroll what the run tab shows (``where``: up, down, page_up, page_down, home, end):
        the one column when narrow, the results and series when wide."""
        body = self.query_one("#run-body", VerticalScroll)
        target = body if body.max_scroll_y > 0 else self.query_one("#run-main", VerticalScroll)
        getattr(target, f"scroll_{where}")(animate=False)

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self.query_one("#run-series").border_title = "Series"
        self.query_one("#run-log").border_title = "Log"
        self.query_one("#run-results").border_title = "Results"
        self.query_one("#run-results").display = False
        self.query_one("#run-scale", Label).display = False
        self.query_one("#run-calibration").display = False
        self.set_interval(1.0, self._tick)
        self.watch_status(self.status)

    # ---- state ----
    def watch_status(self, status: str) -> None:
        if not self.is_mounted:
            return
        running = status in ("running", "watching")
        if not self.watching:
            self.query_one("#start-run", Button).disabled = running
            self.query_one("#stop-run", Button).disabled = not running
        where = f" · session {self.session_id}" if self.session_id else ""
        self.query_one("#run-status", Label).update(f"{status}{where}", layout=False)  # fixed size: no relayout
        self.set_class(running, "-running")
        self._tick()

    def _tick(self) -> None:
        """The status line, with the clock moving while the run goes."""
        # Its size is fixed (1fr by one line): no relayout of the screen for a new text, which
        # several times a second would cost more than everything else the pane draws.
        self.query_one("#run-phase", Label).update(" " + phase_text(self.progress, wall_clock()), layout=False)

    def reset(self, total_steps: int | None = None, *, started_at: float | None = None) -> None:
        """Clear everything shown, for a new run (``started_at``: epoch seconds; now if None)."""
        self.loss_history = {}
        self.progress = RunProgress(
            phase="loading",
            status=self.status,
            total=total_steps or 0,
            started_at=wall_clock() if started_at is None else started_at,
        )
        self.session_id, self.summary = None, None
        self.calibration, self.utility_floor = None, None
        self.query_one("#run-calibration").display = False
        self.query_one("#loss-series").remove_children()
        self._loss_sparks = {}
        for spark in self.query("#eval-series SeriesSpark").results(SeriesSpark):
            spark.clear()
        self.query_one("#run-bar", ProgressBar).update(total=total_steps or 100, progress=0)
        self.query_one("#run-log", RunLog).reset()
        self.query_one("#run-results").display = False
        self.query_one("#run-scale", Label).display = False
        self.query_one(LossPlot).set_history({})
        self._tick()

    def set_origin(self, started_at: float | None, phase: str | None = None) -> None:
        """When the run started (epoch seconds), for the clock; and its phase, if known."""
        if started_at is not None:
            self.progress.started_at = started_at
        if phase is not None and self.progress.phase != "ended":
            self.progress.phase = phase
        self._tick()

    def log_line(self, text: str) -> None:
        self.query_one("#run-log", RunLog).add(text)

    # ---- engine news ----
    def begin(self, started: ev.RunStarted) -> None:
        self.session_id = started.session_id
        self.progress.on_started(started.total_steps, started.config if isinstance(started.config, dict) else {})
        self.query_one("#run-bar", ProgressBar).update(total=max(started.total_steps, 1), progress=0)
        scale = self.query_one("#run-scale", Label)
        scale.update(" " + scale_text(started.config or {}, started.scale or {}, started.model_info or {}))
        scale.display = True
        config = started.config if isinstance(started.config, dict) else {}
        self.utility_floor = config.get("utility_floor") if config.get("keep_best") else None
        self.log_line(run_started_line(started.session_id, started.data or {}, started.total_steps))
        self.watch_status(self.status)

    def add_steps(self, steps: list[ev.StepLosses]) -> None:
        if not steps:
            return
        first = steps[0].step
        new: dict[str, list[tuple[int, float]]] = {}
        for term, points in self.loss_history.items():  # steps taken again (a resumed run) replace the old ones
            if points and points[-1][0] >= first:
                self.loss_history[term] = [p for p in points if p[0] < first]
        for step in steps:
            for term, value in step.losses.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.loss_history.setdefault(term, []).append((step.step, float(value)))
                    new.setdefault(term, []).append((step.step, float(value)))
        for term, points in new.items():
            spark = self._loss_sparks.get(term)
            if spark is None:
                spark = self._loss_sparks[term] = SeriesSpark(term, goal=series_goal(term))
                self.query_one("#loss-series").mount(spark)
            spark.add(points)
        last = steps[-1]
        self.progress.on_steps(last.step, last.total_steps, last.elapsed)
        self.query_one("#run-bar", ProgressBar).update(total=max(last.total_steps, 1), progress=last.step)
        self.query_one(LossPlot).set_history(self.loss_history)
        self._tick()

    def add_evaluation(self, evaluation: ev.Evaluation) -> None:
        for spark in self.query("#eval-series SeriesSpark").results(SeriesSpark):
            split, metric = spark.series.split(" ", 1)
            value = (evaluation.metrics.get(split) or {}).get(metric)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                spark.add([(evaluation.step, value)])
            # A series this evaluation did not measure (answers are not generated during
            # training) keeps its older value, shown with the step it was measured at.
            spark.evaluated(evaluation.step)
        self.progress.on_evaluation(evaluation.phase)
        self.log_line(evaluation_line(evaluation.step, evaluation.phase, evaluation.metrics))
        self._tick()

    def add_calibration(self, calibration: ev.Calibration) -> None:
        """Show where the run stands against its stop rule and keep-best metric (the box
        stays hidden for a run that has neither)."""
        self.calibration = calibration
        self._show_calibration()

    def _show_calibration(self) -> None:
        if self.calibration is None:
            return
        outcome = (self.summary or {}).get("calibration")
        text = calibration_text(self.calibration, self.utility_floor, outcome)
        box = self.query_one("#run-calibration", Static)
        box.display = text is not None
        if text is not None:
            box.update(text)

    def on_log(self, message: str) -> None:
        self.progress.on_log(message)
        self.log_line(message)
        self._tick()

    def end(self, finished: ev.RunFinished) -> None:
        summary = finished.summary if isinstance(finished.summary, dict) else {}
        self._finish(finished.status, summary)
        self.log_line(
            f"run {finished.status} after {summary.get('steps', self.step)} steps "
            f"in {format_seconds(summary.get('seconds'))}"
        )

    def end_without_event(self, status: str, summary: dict[str, Any], why: str) -> None:
        """The run ended without an end event (its writer was killed): ``why`` in the log."""
        self._finish(status, summary)
        self.log_line(why)

    def _finish(self, status: str, summary: dict[str, Any]) -> None:
        steps = summary.get("steps")
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > self.progress.step:
            self.progress.step = steps
        self.progress.end(status, summary.get("seconds"), wall_clock())
        if status == "finished":
            self.query_one("#run-bar", ProgressBar).update(progress=self.progress.total)
        self.summary = summary
        self._show_calibration()  # where the rule stopped the run, which step's weights were kept
        if (summary.get("metrics") or {}).get(Phase.BEFORE) or (summary.get("metrics") or {}).get(Phase.AFTER):
            results = self.query_one("#run-results", Static)
            results.update(Text(before_after_table(summary), no_wrap=False))
            results.display = True
            self.query_one("#run-body").scroll_home(animate=False)
            self.query_one("#run-main").scroll_home(animate=False)
        self.status = status

    def fail(self, message: str, *, started: bool = True) -> None:
        """The run failed (``started`` False: before it had a session, e.g. bad input)."""
        self.progress.end("failed" if started else "not started", None, wall_clock())
        self.status = "failed" if started else "not started"
        self.log_line(f"failed: {message}" if started else f"could not start: {message}")

    @property
    def ended(self) -> bool:
        return self.status in ENDED
