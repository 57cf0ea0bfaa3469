"""The main screen: model, data, algorithm, run and probes, one tab each."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.lazy import Lazy
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from tui_unlearn.config import RunConfig
from tui_unlearn.tui import messages as msg
from tui_unlearn.tui.host import host
from tui_unlearn.tui.screens.live import RUN_SCROLL_BINDINGS, RunNews, focus_tab_bar
from tui_unlearn.tui.widgets.algorithm_pane import AlgorithmPane
from tui_unlearn.tui.widgets.data_pane import DataPane
from tui_unlearn.tui.widgets.model_pane import ModelPane
from tui_unlearn.tui.widgets.probe_pane import ProbePane
from tui_unlearn.tui.widgets.run_pane import RunPane

TABS = {"model": "Model", "data": "Data", "algorithm": "Algorithm", "run": "Run", "probes": "Probes"}


class WorkbenchScreen(RunNews, Screen):
    """The tabs. Only the first is composed before the first frame; the others are mounted
    lazily just after it, so the app shows something at once."""

    BINDINGS = RUN_SCROLL_BINDINGS

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        c = self.config
        with TabbedContent(id="tabs"):
            with TabPane(TABS["model"], id="tab-model"):
                yield ModelPane(
                    c.model,
                    c.device,
                    c.dtype,
                    trust_remote_code=c.trust_remote_code,
                    models_cache=c.models_cache,
                    id="model-pane",
                )
            with TabPane(TABS["data"], id="tab-data"):
                yield Lazy(DataPane(c.forget, c.retain, c.holdout, c.model, id="data-pane"))
            with TabPane(TABS["algorithm"], id="tab-algorithm"):
                yield Lazy(AlgorithmPane(c, id="algorithm-pane"))
            with TabPane(TABS["run"], id="tab-run"):
                yield Lazy(RunPane(id="run-pane"))
            with TabPane(TABS["probes"], id="tab-probes"):
                yield Lazy(ProbePane(c.probes, id="probe-pane"))
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scroll_run":  # elsewhere the keys are the focused widget's or nobody's
            return self.ready and self.run_tab_shown()
        return True

    @property
    def ready(self) -> bool:
        """True once the lazily mounted tabs are all there (a few frames after the first)."""
        return all(self.query(pane) for pane in (DataPane, AlgorithmPane, RunPane, ProbePane))

    def show_tab(self, name: str) -> bool:
        """Show tab ``name`` (a key of TABS) and keep it shown: focus leaves the pane it was in."""
        if name not in TABS:
            return False
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = f"tab-{name}"
        focus_tab_bar(tabs)
        return True

    def on_run_started(self, message: msg.RunStarted) -> None:
        # RunNews.on_run_started runs too (Textual calls the handler of every class in the MRO).
        started = message.event
        host(self).run_session_id = started.session_id
        if started.model_info:
            self.model_pane.show_info(started.config.get("model", ""), started.model_info)

    @property
    def model_pane(self) -> ModelPane:
        return self.query_one(ModelPane)

    @property
    def data_pane(self) -> DataPane:
        return self.query_one(DataPane)

    @property
    def algorithm_pane(self) -> AlgorithmPane:
        return self.query_one(AlgorithmPane)

    @property
    def run_pane(self) -> RunPane:
        return self.query_one(RunPane)

    @property
    def probe_pane(self) -> ProbePane:
        return self.query_one(ProbePane)
