"""The Textual workbench: one factory (``create_app``) for the CLI and the tests.

Blocking work (loading a model, parsing data, the run itself) happens in thread workers
started through ``run_in_thread``; their only output is posted messages, and one
``Worker.StateChanged`` handler shows every failure where it belongs (inline in the pane
that asked, or in the run pane and a notification for a run). Importing this module
does not import torch, transformers or datasets: they load inside the workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from tui_unlearn import events as ev
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import ConfigError, UnlearnError
from tui_unlearn.paths import sessions_dir as resolve_sessions_dir
from tui_unlearn.sessions import Session
from tui_unlearn.tui.commands import palette_commands
from tui_unlearn.tui.host import AppHost
from tui_unlearn.tui.pump import DEFAULT_INTERVAL, EventPump
from tui_unlearn.tui.screens.dialogs import ConfirmDialog
from tui_unlearn.tui.screens.help import HelpScreen, help_rows
from tui_unlearn.tui.screens.live import WatchScreen
from tui_unlearn.tui.screens.sessions import SessionsScreen
from tui_unlearn.tui.screens.workbench import TABS, WorkbenchScreen

Engine = Callable[
    ..., object
]  # engine.run's signature: (config, on_event, should_stop, *, sessions_dir, stdin_text, resume)
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
        Binding(
            "ctrl+r",
            "start_run",
            "Start run",
            id="start-run",
            priority=True,
            tooltip="Start unlearning with the model, data and algorithm chosen in the tabs",
        ),
        Binding(
            "ctrl+x",
            "stop_run",
            "Stop",
            id="stop-run",
            priority=True,
            tooltip="Stop the run after the current step; the session is kept, marked interrupted",
        ),
        Binding(
            "ctrl+o",
            "open_sessions",
            "Sessions",
            id="sessions",
            tooltip="Saved sessions: watch, compare, resume, delete",
        ),
        Binding(
            "ctrl+l",
            "load_model",
            "Load model",
            id="load-model",
            show=False,
            tooltip="Load the chosen model once to see its size, device and dtype",
        ),
        Binding("f1", "help", "Help", id="help", tooltip="Every key of this screen"),
        Binding("question_mark", "help", "Help", id="help-question", show=False, tooltip="Every key of this screen"),
        *(
            Binding(
                key,
                f"show_tab('{name}')",
                title,
                id=f"tab-{name}-{kind}",
                show=False,
                priority=True,
                tooltip=f"Show the {title} tab",
            )
            for number, (name, title) in enumerate(TABS.items(), start=1)
            for kind, key in (("f", f"f{number + 1}"), ("alt", f"alt+{number}"))
        ),
        Binding(
            "ctrl+q",
            "request_quit",
            "Quit",
            id="quit",
            show=True,
            priority=True,
            tooltip="Quit (asks first while a run is going)",
        ),
        Binding(
            "ctrl+c",
            "copy_or_quit",
            "Copy / quit",
            id="copy-or-quit",
            show=False,
            priority=True,
            tooltip="Copy the selected text; with nothing selected, quit like ctrl+q",
        ),
    ]

    running: reactive[bool] = reactive(False, bindings=True)

    def __init__(
        self, config: RunConfig, *, sessions_dir: Path, engine: Engine | None = None, watch: Session | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.sessions_dir = sessions_dir
        self.engine = engine or engine_run
        self.watch_session = watch
        self._failure_sinks: dict[Worker, Callable[[str], None]] = {}
        self._stop_requested: threading.Event | None = None
        self._flush_timer: Timer | None = None
        self._workbench: WorkbenchScreen | None = None
        self._pump: EventPump | None = None
        self._run_verb = "start"  # or "resume": how a failure before the run began is titled
        self.run_session_id: str | None = None  # the session of the run this app started, once known

    def get_default_screen(self) -> Screen:
        if self.watch_session is not None:
            return WatchScreen(self.watch_session)
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
    def run_in_thread(
        self, work: Callable[[], object], *, group: str, description: str, on_error: Callable[[str], None] | None = None
    ) -> Worker:
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
        if self.running:
            return
        if not self.workbench.ready:  # the tabs mount just after the first frame
            self.notify("the tabs are still being set up; press ctrl+r again in a moment", title="Not yet")
            return
        try:
            config = self.collect_config()
            total_steps = resolve(config).steps
        except UnlearnError as error:
            self.notify(str(error), title="Cannot start", severity="error")
            return
        self.workbench.probe_pane.clear_answers()
        self._start_worker(
            total_steps,
            lambda engine, pump, stop, root: engine(config, pump, stop, sessions_dir=root),
            description="unlearning run",
            verb="start",
        )

    def resume_run(self, session: Session, total_steps: int | None) -> None:
        """Take an interrupted session up again (``engine.run(None, ..., resume=id)``), in the
        Run tab like any run: its history so far first, then the new steps. The engine's
        one-line reason shows there when the session cannot be resumed."""
        if self.running:
            self.notify("a run is going; stop it first (ctrl+x)", title="Cannot resume", severity="warning")
            return
        if self._workbench is None or not self._workbench.is_attached:  # `tui-unlearn watch` has no workbench
            self.notify(
                "resume it from the workbench: run tui-unlearn, then ctrl+o", title="Cannot resume", severity="warning"
            )
            return
        from tui_unlearn.tui.follow import EventTail

        def work(engine, pump, stop, root):
            from tui_unlearn.engine.resume import open_for_resume

            open_for_resume(root, session.id)  # the engine's own check: its one-line reason, before anything shows
            # What the session showed so far; the engine drops what comes after its checkpoint
            # and takes those steps again (the run pane replaces them as they come).
            history = EventTail(session.path / "events.jsonl").read().events
            for event, _ in history:
                if type(event).__name__ not in ("RunFinished", "RunFailed"):
                    pump(event)
            # Consent to a model's own code is the app's (given on its command line), never the session's.
            allow = self.config.trust_remote_code
            return engine(None, pump, stop, sessions_dir=root, resume=session.id, allow_remote_code=allow)

        if isinstance(self.screen, SessionsScreen):
            self.pop_screen()
        self.workbench.probe_pane.clear_answers()
        self._start_worker(total_steps, work, description=f"resuming {session.id}", verb="resume")

    def _start_worker(self, total_steps: int | None, call: Callable, *, description: str, verb: str) -> None:
        self._run_verb = verb
        bench = self.workbench
        bench.run_pane.status = "running"
        bench.run_pane.reset(total_steps)
        bench.show_tab("run")
        self.running = True
        self.run_session_id = None

        stop = self._stop_requested = threading.Event()
        pump = self._pump = EventPump(bench.post_message)
        engine, root = self.engine, self.sessions_dir

        def work():
            worker = get_current_worker()
            try:
                return call(engine, pump, lambda: stop.is_set() or worker.is_cancelled, root)
            finally:
                pump.flush()

        self._flush_timer = self.set_interval(DEFAULT_INTERVAL, pump.flush)
        self.run_in_thread(work, group="run", description=description, on_error=self._run_failed)

    def action_stop_run(self) -> None:
        if self.running and self._stop_requested is not None and not self._stop_requested.is_set():
            self._stop_requested.set()
            self.workbench.run_pane.log_line("stopping after this step …")

    def _run_failed(self, text: str) -> None:
        started = self._pump is not None and self._pump.started
        if bench := self._news_target():
            # Through the workbench's queue: after the run's last events, which travel there.
            bench.call_later(bench.run_pane.fail, text, started=started)
        self.notify(text, title="Run failed" if started else f"Cannot {self._run_verb}", severity="error", timeout=10)

    def _run_done(self, worker: Worker, state: WorkerState) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self.running = False
        bench = self._news_target()
        if bench is None or state == WorkerState.ERROR:  # a failure is shown by _run_failed
            return
        result = worker.result if state == WorkerState.SUCCESS else None
        status = getattr(result, "status", None) or ("cancelled" if state == WorkerState.CANCELLED else "finished")

        def settle() -> None:
            pane = bench.run_pane
            if pane.status == "running":  # the engine returned without a RunFinished event
                pane.end(ev.RunFinished(status, getattr(result, "summary", None) or {}))

        bench.call_later(settle)

    # ---- other actions ----
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        on_workbench = isinstance(screen, WorkbenchScreen)
        # Start and stop stay in the workbench's footer, dimmed when they cannot run;
        # elsewhere start is hidden (the key falls through to the screen's own binding) and
        # stop shows while this app's run is going, except where it would be mistaken for
        # stopping the run watched there.
        if action == "start_run":
            if not on_workbench:
                return False
            return True if not self.running else None
        if action == "stop_run":
            if isinstance(screen, WatchScreen):
                return False
            if self.running:
                return True
            return None if on_workbench else False
        if action == "show_tab":
            return hasattr(screen, "show_tab") and (
                parameters[0] in TABS if on_workbench else parameters[0] in ("run", "probes")
            )
        if action in ("open_sessions", "load_model"):
            return on_workbench or (action == "open_sessions" and isinstance(screen, WatchScreen))
        if action == "help":
            return not isinstance(screen, HelpScreen)
        return True

    def action_open_sessions(self) -> None:
        if any(isinstance(s, SessionsScreen) for s in self.screen_stack):  # back to it, not another on top
            while not isinstance(self.screen, SessionsScreen):
                self.pop_screen()
            return
        self.push_screen(SessionsScreen(self.sessions_dir))

    def action_load_model(self) -> None:
        self.workbench.show_tab("model")
        self.workbench.model_pane.load()

    def action_show_tab(self, name: str) -> None:
        show = getattr(self.screen, "show_tab", None)
        if show is not None:
            show(name)

    def action_help(self) -> None:
        screen = self.screen
        names = {
            "WorkbenchScreen": "the workbench",
            "SessionsScreen": "the sessions screen",
            "WatchScreen": "watching a run",
        }
        self.push_screen(HelpScreen(f"Keys of {names.get(type(screen).__name__, 'this screen')}", help_rows(screen)))

    def watch_session_screen(self, session: Session) -> None:
        """Open a session live: this app's own run is in the workbench's Run tab."""
        if self.running and session.id == self.run_session_id:
            while not isinstance(self.screen, WorkbenchScreen) and len(self.screen_stack) > 1:
                self.pop_screen()
            self.workbench.show_tab("run")
            return
        self.push_screen(WatchScreen(session))

    def action_copy_or_quit(self) -> None:
        focused = self.screen.focused
        if isinstance(focused, (Input, TextArea)) and focused.selected_text:
            focused.action_copy()
            return
        selected = self.screen.get_selected_text()
        if selected:
            self.copy_to_clipboard(selected)
            self.notify("copied the selected text")
            return
        self.action_request_quit()

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

        self.push_screen(
            ConfirmDialog("A run is going. Stop it and quit? Its session is kept, marked interrupted.", "Quit"),
            answered,
        )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)


def create_app(
    config: RunConfig | None = None,
    sessions_dir: str | Path | None = None,
    engine: Engine | None = None,
    watch: Session | None = None,
) -> UnlearnApp:
    """The app as the CLI runs it; tests pass a temporary sessions folder and a fake engine.

    ``watch``: open on that session's live view (``tui-unlearn watch``) instead of the workbench.
    """
    return UnlearnApp(
        config or RunConfig(), sessions_dir=resolve_sessions_dir(sessions_dir), engine=engine, watch=watch
    )


def run_app(
    config: RunConfig | None = None, sessions_dir: str | Path | None = None, watch: Session | None = None
) -> None:
    create_app(config, sessions_dir, watch=watch).run()


if TYPE_CHECKING:
    # mypy checks here that the app has what screens and widgets ask of it through host().
    _host: type[AppHost] = UnlearnApp
