"""Screens that show a run live: the news handlers they share, and the watch screen.

``RunNews`` turns engine messages into updates of a screen's run pane and probe pane; the
workbench (a run this app started) and ``WatchScreen`` (a run another process writes,
followed through its events.jsonl) both use it, so a watched run looks exactly like one
started here. Messages stop at the screen that shows them.
"""

from __future__ import annotations

import threading
from typing import Protocol

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Label, TabbedContent, TabPane
from textual.widgets._tabbed_content import ContentTabs

from tui_unlearn.sessions import Session
from tui_unlearn.tui import messages as msg
from tui_unlearn.tui.follow import WatchState, follow
from tui_unlearn.tui.host import host
from tui_unlearn.tui.pump import DEFAULT_INTERVAL, EventPump
from tui_unlearn.tui.widgets.probe_pane import ProbePane
from tui_unlearn.tui.widgets.run_pane import RunPane


def focus_tab_bar(tabs: TabbedContent) -> None:
    """After switching tabs in code, put focus on the tab bar if it was inside another pane.

    A focused widget in a hidden pane would bring its tab back the next time it is focused
    (the palette closing, a dialog closing): TabbedContent shows the pane holding focus.
    """
    focused = tabs.screen.focused
    active = tabs.active_pane
    if focused is None or active is None:
        return
    ancestors = focused.ancestors_with_self
    if tabs in ancestors and active not in ancestors:
        bar = tabs.get_child_by_type(ContentTabs)
        if bar is not focused:
            bar.focus()


# Keys that scroll the run tab when focus is on something that does not scroll (the tab
# bar, a button): without them only the mouse wheel could reach what is below the fold.
RUN_SCROLL_BINDINGS: list[BindingType] = [
    Binding(
        "pagedown", "scroll_run('page_down')", "Page down", id="run-page-down", show=False, tooltip="Scroll the run tab"
    ),
    Binding("pageup", "scroll_run('page_up')", "Page up", id="run-page-up", show=False, tooltip="Scroll the run tab"),
    Binding("end", "scroll_run('end')", "End", id="run-end", show=False, tooltip="Scroll the run tab"),
    Binding("home", "scroll_run('home')", "Home", id="run-home", show=False, tooltip="Scroll the run tab"),
    Binding("down", "scroll_run('down')", "Down", id="run-down", show=False, tooltip="Scroll the run tab"),
    Binding("up", "scroll_run('up')", "Up", id="run-up", show=False, tooltip="Scroll the run tab"),
]
SCROLLS = ("page_down", "page_up", "end", "home", "down", "up")


class NewsScreen(Protocol):
    """What ``RunNews`` uses of the screen it is mixed into."""

    @property
    def app(self) -> App[object]: ...
    @property
    def run_pane(self) -> RunPane: ...
    @property
    def probe_pane(self) -> ProbePane: ...
    def query_one(self, selector: type[TabbedContent]) -> TabbedContent: ...
    def run_tab_shown(self) -> bool: ...


class RunNews:
    """Engine news handlers for a screen with ``run_pane`` and ``probe_pane``.

    Textual calls a message's handler in every class of the MRO, so a screen adds to these
    by defining its own (without calling super). Each method's ``self`` is the screen
    (typed ``NewsScreen``, mypy's way of typing a mixin)."""

    def run_tab_shown(self: NewsScreen) -> bool:
        tabs = self.query_one(TabbedContent)
        return tabs.active == "tab-run"

    def action_scroll_run(self: NewsScreen, where: str) -> None:
        if where in SCROLLS and self.run_tab_shown():
            self.run_pane.scroll_body(where)

    def on_run_started(self: NewsScreen, message: msg.RunStarted) -> None:
        message.stop()
        self.run_pane.begin(message.event)

    def on_step_window(self: NewsScreen, message: msg.StepWindow) -> None:
        message.stop()
        self.run_pane.add_steps(message.steps)

    def on_evaluation(self: NewsScreen, message: msg.Evaluation) -> None:
        message.stop()
        self.run_pane.add_evaluation(message.event)

    def on_calibration(self: NewsScreen, message: msg.Calibration) -> None:
        message.stop()
        self.run_pane.add_calibration(message.event)

    def on_probe_answers(self: NewsScreen, message: msg.ProbeAnswers) -> None:
        message.stop()
        self.probe_pane.show_answers(message.event)

    def on_log(self: NewsScreen, message: msg.Log) -> None:
        message.stop()
        self.run_pane.on_log(message.event.message)

    def on_run_finished(self: NewsScreen, message: msg.RunFinished) -> None:
        message.stop()
        self.run_pane.end(message.event)
        status = message.event.status
        self.app.notify(
            f"run {status}; the session is saved",
            severity="information" if status == "finished" else "warning",
        )

    def on_run_failed(self: NewsScreen, message: msg.RunFailed) -> None:
        message.stop()
        if message.event.session_path:
            self.run_pane.log_line(f"session saved as failed: {message.event.session_path}")


class WatchScreen(RunNews, Screen):
    """The Run and Probes views of a session another process is writing."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="watch-back", tooltip="Back to the previous screen (the run goes on)"),
        Binding(
            "ctrl+x",
            "how_to_stop",
            "How to stop",
            id="watch-stop",
            tooltip="This run belongs to another process: say how to stop it",
        ),
        *RUN_SCROLL_BINDINGS,
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.state: WatchState | None = None
        self._stop = threading.Event()

    @property
    def run_pane(self) -> RunPane:
        return self.query_one(RunPane)

    @property
    def probe_pane(self) -> ProbePane:
        return self.query_one(ProbePane)

    def compose(self) -> ComposeResult:
        yield Label(f"watching session {self.session.id}", id="watch-title", markup=False)
        with TabbedContent(id="watch-tabs"):
            with TabPane("Run", id="tab-run"):
                yield RunPane(watch=True, id="watch-run-pane")
            with TabPane("Probes", id="tab-probes"):
                yield ProbePane(watch=True, id="watch-probe-pane")
        yield Footer()

    def on_mount(self) -> None:
        pane = self.run_pane
        pane.status = "watching"
        pane.reset(started_at=None)
        pane.set_origin(None, phase="waiting")
        self._start()

    def on_unmount(self) -> None:
        self._stop.set()

    def _start(self) -> None:
        stop, session = self._stop, self.session
        pump = EventPump(self.post_message)

        def on_state(state: WatchState) -> None:
            pump.flush()  # the steps read so far come before the news of how it stands
            self.post_message(msg.WatchUpdate(state))

        def work() -> None:
            try:
                follow(session, pump, on_state, stop.is_set)
            finally:
                pump.flush()

        self.set_interval(DEFAULT_INTERVAL, pump.flush)
        host(self).run_in_thread(
            work,
            group=f"follow:watch:{session.id}",
            description=f"watching {session.id}",
            on_error=self._failed,
        )

    def _failed(self, text: str) -> None:
        if self.is_attached:
            self.query_one("#watch-title", Label).update(f"session {self.session.id}: cannot follow it: {text}")

    def on_watch_update(self, message: msg.WatchUpdate) -> None:
        message.stop()
        state: WatchState = message.state
        self.state = state
        pane = self.run_pane
        if state.text == "history rewritten":
            pane.reset(started_at=None)
            self.probe_pane.clear_answers()
            pane.log_line("the session's history was rewritten (the run was resumed): reading it again")
        if state.state in ("waiting", "following"):
            pane.set_origin(state.started_at, phase="waiting" if state.state == "waiting" else None)
        if state.state == "gone":
            pane.end_without_event(state.status or "interrupted", state.summary, state.text)
            self.app.notify(state.text, title=f"session {self.session.id}", severity="warning", timeout=10)
        elif state.state == "ended" and state.status == "failed" and not pane.ended:
            pane.fail(state.text.removeprefix("the run failed: "))
        elif state.state == "quiet":
            self.app.notify(state.text, title=f"session {self.session.id}", severity="warning", timeout=10)
        if state.skipped:
            pane.query_one("#run-log").border_subtitle = f"events.jsonl: {state.skipped} unreadable line(s) skipped"
        self.query_one("#watch-title", Label).update(
            f"watching session {self.session.id} · {self._where()}{state.text}"
        )

    def _where(self) -> str:
        state = self.state
        if state is None or state.pid is None:
            return ""
        return f"writer pid {state.pid}{f' on {state.host}' if state.host else ''} · "

    def on_run_failed(self, message: msg.RunFailed) -> None:
        # After RunNews.on_run_failed (Textual calls both): here no worker reports the failure.
        self.run_pane.fail(message.event.error)

    # ---- keys ----
    def show_tab(self, name: str) -> bool:
        tabs = self.query_one("#watch-tabs", TabbedContent)
        if name not in ("run", "probes"):
            return False
        tabs.active = f"tab-{name}"
        focus_tab_bar(tabs)
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "back":
            return len(self.app.screen_stack) > 1
        if action == "scroll_run":
            return self.run_tab_shown()
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_how_to_stop(self) -> None:
        state = self.state
        if state is not None and state.state in ("ended", "gone"):
            self.app.notify("this run has already ended", title="Nothing to stop")
            return
        if state is None or state.pid is None:
            text = (
                "this run belongs to another process; stop it where it runs "
                "(Ctrl-C in its terminal stops it after the current step)"
            )
        else:
            where = f" on {state.host}" if state.host else ""
            text = (
                f"this run belongs to process {state.pid}{where}, not to this window. Stop it after the "
                f"current step with Ctrl-C in its terminal, or: kill -INT {state.pid} (under accelerate "
                "launch, stop the launcher instead). The session is kept, marked interrupted."
            )
        self.app.notify(text, title="How to stop it", timeout=15)
