"""The model pane: a bundled model, a local folder (picked in a modal) or a hub id; load to inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from tui_unlearn.models.bundled import BUNDLED_MODELS
from tui_unlearn.tui.host import host
from tui_unlearn.tui.messages import ModelLoaded
from tui_unlearn.tui.screens.dialogs import PathPicker
from tui_unlearn.tui.widgets.mounting import Choice

GETTING_STARTED = (
    "Next: the Data tab holds the forget set (bundled by default) and the retain and holdout sets; "
    "the Algorithm tab the method and its settings. ctrl+r starts a run, watched in Run and Probes; "
    "ctrl+o compares saved sessions; ctrl+p lists every command."
)
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def format_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def info_table(info: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("architecture", info.get("architecture")),
        ("parameters", format_count(info.get("parameters"))),
        ("device", info.get("device")),
        ("dtype", info.get("dtype")),
        ("source", info.get("source")),  # only for weights converted on load (a GGUF file)
        ("memory", f"{info.get('memory_mb')} MiB" if info.get("memory_mb") is not None else None),
        ("chat template", "yes" if info.get("chat_template") else "no"),
        ("path", info.get("path")),
    ]
    for key, value in rows:
        if value is not None:
            table.add_row(key, str(value))
    return table


class ModelPane(VerticalScroll, can_focus=False):
    """Choose the model to unlearn from and, optionally, load it once to see what it is.

    Not a tab stop itself: its fields are (it scrolls to the focused one)."""

    def __init__(
        self,
        spec: str,
        device: str = "auto",
        dtype: str = "auto",
        *,
        trust_remote_code: bool = False,
        models_cache: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.initial_spec = spec
        self.initial_device = device or "auto"
        self.initial_dtype = dtype if dtype in DTYPES else "auto"
        # cuda:N from the command line is kept as a choice of its own.
        self.devices = DEVICES if self.initial_device in DEVICES else (*DEVICES, self.initial_device)
        self.trust_remote_code = trust_remote_code
        self.models_cache = models_cache
        self.loaded_spec: str | None = None
        self.info: dict[str, Any] | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("Bundled models (Enter picks one) — or type a local folder or a hub id below", classes="pane-help")
        yield OptionList(
            *[
                Option(Text.assemble((f"{name:<21}", "bold"), (about, "dim")), id=name)
                for name, about in BUNDLED_MODELS.items()
            ],
            id="bundled-models",
        )
        with Horizontal(classes="field-row"):
            yield Label("model", classes="field-name")
            yield Input(
                self.initial_spec, placeholder="bundled name, folder or hub owner/name", id="model-spec", compact=True
            )
            yield Button("Browse…", id="model-browse", compact=True, tooltip="Pick a local model folder")
            yield Button(
                "Load ^l",
                id="model-load",
                compact=True,
                variant="primary",
                action="app.load_model",
                tooltip="Load the model once to see its size, device and dtype",
            )
        with Horizontal(classes="field-row"):
            yield Label("device", classes="field-name")
            yield Choice(
                [(d, d) for d in self.devices],
                value=self.initial_device,
                allow_blank=False,
                id="model-device",
                compact=True,
            )
            yield Label("dtype", classes="field-name")
            yield Choice(
                [(d, d) for d in DTYPES], value=self.initial_dtype, allow_blank=False, id="model-dtype", compact=True
            )
        with Vertical(id="model-info-box"):
            yield Static("Not loaded yet: press Load (ctrl+l) to inspect it, or just start a run.", id="model-info")
        yield Static(GETTING_STARTED, id="getting-started", classes="pane-help")

    def on_mount(self) -> None:
        self.query_one("#model-info-box").border_title = "Model"
        names = list(BUNDLED_MODELS)
        if self.initial_spec in names:
            self.query_one("#bundled-models", OptionList).highlighted = names.index(self.initial_spec)

    # ---- what the run uses ----
    def spec(self) -> str:
        return self.query_one("#model-spec", Input).value.strip()

    def device(self) -> str:
        return str(self.query_one("#model-device", Select).value)

    def dtype(self) -> str:
        return str(self.query_one("#model-dtype", Select).value)

    # ---- choosing ----
    @on(OptionList.OptionSelected, "#bundled-models")
    def _bundled_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.set_spec(str(event.option.id))

    @on(Button.Pressed, "#model-browse")
    def _browse_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.browse()

    @on(Input.Submitted, "#model-spec")
    def _spec_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.load()

    def set_spec(self, spec: str) -> None:
        self.query_one("#model-spec", Input).value = spec
        if spec != self.loaded_spec:
            self._show("Not loaded yet: press Load (ctrl+l) to inspect it, or just start a run.")

    def browse(self) -> None:
        current = Path(self.spec()).expanduser() if self.spec() else Path.cwd()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.set_spec(str(path))

        self.app.push_screen(PathPicker("Pick a model folder (Hugging Face format, with config.json)", current), chosen)

    # ---- loading ----
    def load(self) -> None:
        spec, device, dtype = self.spec(), self.device(), self.dtype()
        if not spec:
            self.show_error("give a model: a bundled name, a local folder or a hub id")
            return
        # Words, not Textual's loading overlay: that hid what is loading behind dots for as long
        # as a large model takes to read.
        self._show(
            Text(
                f"loading {spec} on {device or 'the default device'}: its config, tokenizer and weights "
                "(a large model takes a while) …",
                style="italic",
            )
        )
        trust, cache = self.trust_remote_code, self.models_cache

        def work() -> None:
            from tui_unlearn.models.loading import load_model

            loaded = load_model(spec, device=device, dtype=dtype, trust_remote_code=trust, models_cache=cache)
            info = loaded.info()
            del loaded  # only the description is kept; the run loads its own copy
            self.post_message(ModelLoaded(spec, info))

        host(self).run_in_thread(work, group="model", description=f"loading model {spec}", on_error=self.show_error)

    def on_model_loaded(self, message: ModelLoaded) -> None:
        message.stop()
        if message.spec == self.spec():  # else the user has moved on to another model
            self.show_info(message.spec, message.info)

    def show_info(self, spec: str, info: dict[str, Any]) -> None:
        self.loaded_spec, self.info, self.error = spec, info, None
        self._show(info_table(info))

    def show_error(self, message: str) -> None:
        self.loaded_spec, self.info, self.error = None, None, message
        self._show(Text(message, style="bold red"))

    def _show(self, renderable) -> None:
        box = self.query_one("#model-info-box")
        box.loading = False
        self.query_one("#model-info", Static).update(renderable)
