"""The Textual workbench: one factory (``create_app``) for the CLI and the tests.

Blocking work (loading a model, parsing data, the run itself) happens in thread workers
started through ``run_in_thread``; their only output is posted messages, and one
``Worker.StateChanged`` handler shows every failure where it belongs (inline in the pane
that asked, or in the run pane and a notification for a run). Importing this module
does not import torch, transformers or datasets: they load inside the workers.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState, get_current_worker

from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import ConfigError, UnlearnError
from tui_unlearn.paths import sessions_dir as resolve_sessions_dir
from tui_unlearn.tui import messages as msg
from tui_unlearn.tui.pump import DEFAULT_INTERVAL, EventPump
from tui_unlearn.tui.screens.dialogs import ConfirmDialog
from tui_unlearn.tui.screens.sessions import SessionsScreen
from tui_unlearn.tui.screens.workbench import TABS, WorkbenchScreen

Engine = Callable[..., object]  # engine.run's signature: (config, on_event, should_stop, *, sessions_dir, stdin_text)
PASTED_DIR = ".pasted"  # under the sessions folder: pasted data saved so sessions can be rerun


def engine_run(*args, **kwargs):
    """The real engine, imported on first use (it pulls in torch)."""
    from tui_unlearn.engine import run

    return run(*args, **kwargs)


def failure_text(error: BaseException | None) -> str:
    """One line for people: the message of our own errors, the type and first line otherwise."""
    if isinstance(error, UnlearnError):
        return str(error)
    if error is None:
        return "failed for an unknown reason"
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


class UnlearnApp(App):
    """Pick a model, give the forget data, pick a method, run, watch it forget, compare."""

    CSS_PATH = "app.tcss"
    TITLE = "tui-unlearn"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("ctrl+r", "start_run", "Start run", id="start-run", priority=True,
                tooltip="Start unlearning with the model, data and algorithm chosen in the tabs"),
        Binding("ctrl+x", "stop_run", "Stop", id="stop-run", priority=True,
                tooltip="Stop the run after the current step; the session is kept, marked interrupted"),
        Binding("ctrl+o", "open_sessions", "Sessions", id="sessions",
                tooltip="Saved sessions: compare them in a table and in plots, delete them"),
        Binding("ctrl+l", "load_model", "Load model", id="load-model", show=False,
                tooltip="Load the chosen model once to see its size, device and dtype"),
        Binding("ctrl+q", "request_quit", "Quit", id="quit", show=True, priority=True,
                tooltip="Quit (asks first while a run is going)"),
        Binding("ctrl+c", "request_quit", "Quit", id="quit-c", show=False,
                tooltip="Quit (asks first while a run is going)"),
    ]

    running: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, config: RunConfig, *, sessions_dir: Path, engine: Engine | None = None) -> None:
        super().__init__()
        self.config = config
        self.sessions_dir = sessions_dir
        self.engine = engine or engine_run
        self._failure_sinks: dict[Worker, Callable[[str], None]] = {}
        self._stop_requested: threading.Event | None = None
        self._flush_timer: Timer | None = None
        self._workbench: WorkbenchScreen | None = None

    def get_default_screen(self) -> Screen:
        return self.workbench

    @property
    def workbench(self) -> WorkbenchScreen:
        if self._workbench is None:
            self._workbench = WorkbenchScreen(self.config)
        return self._workbench

    def _news_target(self) -> WorkbenchScreen | None:
        """The workbench, unless the app is shutting down (late worker news is dropped then)."""
        bench = self._workbench
        return bench if bench is not None and bench.is_attached and not self._exit else None

    @property
    def pasted_dir(self) -> Path:
        return self.sessions_dir / PASTED_DIR

    # ---- workers ----
    def run_in_thread(self, work: Callable[[], object], *, group: str, description: str,
                      on_error: Callable[[str], None] | None = None) -> Worker:
        """Run ``work`` in a thread worker; a failure goes to ``on_error`` as one line."""
        worker = self.run_worker(
            work, thread=True, exclusive=True, exit_on_error=False, group=group, description=description
        )
        if on_error is not None:
            self._failure_sinks[worker] = on_error
        return worker

    @on(Worker.StateChanged)
    def _worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures are shown (and a run's end is noticed)."""
        worker = event.worker
        if event.state == WorkerState.ERROR:
            text = failure_text(worker.error)
            sink = self._failure_sinks.get(worker)
            if sink is not None:
                sink(text)
            else:
                self.notify(text, title=worker.description or "Failed", severity="error")
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._failure_sinks.pop(worker, None)
            if worker.group == "run":
                self._run_done(worker, event.state)

    # ---- starting and stopping a run ----
    def collect_config(self) -> RunConfig:
        """The RunConfig the tabs describe (fields without a widget keep the CLI's values).

        Raises UnlearnError with a one-line message when a field is wrong or missing.
        """
        bench = self.workbench
        algorithm, hparams, knobs = bench.algorithm_pane.values()
        specs = bench.data_pane.specs(self.pasted_dir)
        model = bench.model_pane
        if not model.spec():
            raise ConfigError("no model chosen: pick a bundled model, a local folder or a hub id in the Model tab")
        return replace(
            self.config,
            model=model.spec(),
            device=model.device(),
            dtype=model.dtype(),
            forget=specs["forget"],
            retain=specs["retain"],
            holdout=specs["holdout"],
            algorithm=algorithm,
            hparams=hparams,
            probes=bench.probe_pane.questions(),
            **knobs,
        )

    def action_start_run(self) -> None:
        if self.running or not self.workbench.ready:
            return
        try:
            config = self.collect_config()
            total_steps = resolve(config).steps
        except UnlearnError as error:
            self.notify(str(error), title="Cannot start", severity="error")
            return
        bench = self.workbench
        bench.run_pane.reset(total_steps)
        bench.run_pane.status = "running"
        bench.probe_pane.clear_answers()
        bench.show_tab("run")
        self.running = True

        stop = self._stop_requested = threading.Event()
        pump = EventPump(self.post_message)
        engine, root = self.engine, self.sessions_dir

        def work():
            worker = get_current_worker()
            try:
                return engine(config, pump, lambda: stop.is_set() or worker.is_cancelled, sessions_dir=root)
            finally:
                pump.flush()

        self._flush_timer = self.set_interval(DEFAULT_INTERVAL, pump.flush)
        self.run_in_thread(work, group="run", description="unlearning run", on_error=self._run_failed)

    def action_stop_run(self) -> None:
        if self.running and self._stop_requested is not None and not self._stop_requested.is_set():
            self._stop_requested.set()
            self.workbench.run_pane.log_line("stopping after this step …")

    def _run_failed(self, text: str) -> None:
        if bench := self._news_target():
            bench.run_pane.fail(text)
        self.notify(text, title="Run failed", severity="error", timeout=10)

    def _run_done(self, worker: Worker, state: WorkerState) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self.running = False
        bench = self._news_target()
        if bench is None:
            return
        pane = bench.run_pane
        if pane.status == "running":  # the engine returned without a RunFinished event
            result = worker.result if state == WorkerState.SUCCESS else None
            pane.status = getattr(result, "status", None) or ("cancelled" if state == WorkerState.CANCELLED else "done")

    # ---- run news, from the pump ----
    def on_run_started(self, message: msg.RunStarted) -> None:
        if bench := self._news_target():
            started = message.event
            bench.run_pane.begin(started)
            if started.model_info:
                bench.model_pane.show_info(started.config.get("model", ""), started.model_info)

    def on_step_window(self, message: msg.StepWindow) -> None:
        if bench := self._news_target():
            bench.run_pane.add_steps(message.steps)

    def on_evaluation(self, message: msg.Evaluation) -> None:
        if bench := self._news_target():
            bench.run_pane.add_evaluation(message.event)

    def on_probe_answers(self, message: msg.ProbeAnswers) -> None:
        if bench := self._news_target():
            bench.probe_pane.show_answers(message.event)

    def on_log(self, message: msg.Log) -> None:
        if bench := self._news_target():
            bench.run_pane.log_line(message.event.message)

    def on_run_finished(self, message: msg.RunFinished) -> None:
        if bench := self._news_target():
            bench.run_pane.end(message.event)
            status = message.event.status
            self.notify(f"run {status}; the session is saved",
                        severity="information" if status == "finished" else "warning")

    def on_run_failed(self, message: msg.RunFailed) -> None:
        bench = self._news_target()
        if bench and message.event.session_path:
            bench.run_pane.log_line(f"session saved as failed: {message.event.session_path}")

    # ---- other actions ----
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_workbench = isinstance(self.screen, WorkbenchScreen)
        # Start and stop stay in the workbench's footer, dimmed when they cannot run;
        # elsewhere start is hidden and stop shows only while a run is going.
        if action == "start_run":
            if not on_workbench:
                return False
            return True if not self.running else None
        if action == "stop_run":
            if self.running:
                return True
            return None if on_workbench else False
        if action in ("open_sessions", "load_model", "show_tab"):
            return on_workbench
        return True

    def action_open_sessions(self) -> None:
        self.push_screen(SessionsScreen(self.sessions_dir))

    def action_load_model(self) -> None:
        self.workbench.show_tab("model")
        self.workbench.model_pane.load()

    def action_show_tab(self, name: str) -> None:
        self.workbench.show_tab(name)

    def action_browse_model(self) -> None:
        self.workbench.show_tab("model")
        self.workbench.model_pane.browse()

    def action_browse_data(self, role: str) -> None:
        bench = self.workbench
        bench.show_tab("data")
        bench.data_pane.show(role)
        bench.data_pane.editor(role).browse()

    def action_paste_data(self, role: str) -> None:
        bench = self.workbench
        bench.show_tab("data")
        bench.data_pane.show(role)
        bench.data_pane.editor(role).use_paste()

    def action_add_probe(self) -> None:
        self.workbench.show_tab("probes")
        self.workbench.probe_pane.query_one("#probe-input").focus()

    def action_request_quit(self) -> None:
        if not self.running:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                if self._stop_requested is not None:
                    self._stop_requested.set()
                self.exit()

        self.push_screen(ConfirmDialog("A run is going. Stop it and quit? Its session is kept, marked interrupted.", "Quit"), answered)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if not isinstance(screen, WorkbenchScreen):
            return
        if self.running:
            yield SystemCommand("Stop run", "Stop after the current step (ctrl+x)", self.action_stop_run)
        else:
            yield SystemCommand("Start run", "Start unlearning (ctrl+r)", self.action_start_run)
        yield SystemCommand("Sessions", "Compare and delete saved sessions (ctrl+o)", self.action_open_sessions)
        yield SystemCommand("Load model", "Load the chosen model to see its size (ctrl+l)", self.action_load_model)
        yield SystemCommand("Browse for a model folder", "Pick a local Hugging Face model folder", self.action_browse_model)
        for role in ("forget", "retain", "holdout"):
            yield SystemCommand(f"Load the {role} set from a file", f"Pick a file for the {role} set",
                                lambda role=role: self.action_browse_data(role))
            yield SystemCommand(f"Paste the {role} set", f"Paste records for the {role} set",
                                lambda role=role: self.action_paste_data(role))
        yield SystemCommand("Add a probe question", "Watch the answer to your own question", self.action_add_probe)
        for name, title in TABS.items():
            yield SystemCommand(f"Go to {title}", f"Show the {title} tab", lambda name=name: self.action_show_tab(name))


def create_app(config: RunConfig | None = None, sessions_dir: str | Path | None = None,
               engine: Engine | None = None) -> UnlearnApp:
    """The app as the CLI runs it; tests pass a temporary sessions folder and a fake engine."""
    return UnlearnApp(config or RunConfig(), sessions_dir=resolve_sessions_dir(sessions_dir), engine=engine)


def run_app(config: RunConfig | None = None, sessions_dir: str | Path | None = None) -> None:
    create_app(config, sessions_dir).run()
