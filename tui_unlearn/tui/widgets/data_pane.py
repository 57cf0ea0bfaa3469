"""The data pane: forget, retain and holdout sets, each pasted, read from a file or bundled.

Every change is parsed in a thread worker (pasted text after a short pause in typing);
the preview shows the parsed records, their count and the detected format, and a parse
error is shown in place of the preview, never raised over the app.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from tui_unlearn.config import bundled_defaults
from tui_unlearn.data.benchmark import default_retain_for
from tui_unlearn.data.sources import STDIN_SPEC, SourceSpec
from tui_unlearn.errors import ConfigError, DataError
from tui_unlearn.tui.host import host
from tui_unlearn.tui.messages import DataParsed, ForgetSplitChanged
from tui_unlearn.tui.screens.dialogs import PathPicker
from tui_unlearn.tui.widgets.mounting import Choice, app_closing

ROLES = ("forget", "retain", "holdout")
# The utility splits (famous authors, world facts) are knowledge the model must keep and was
# trained on: a retain set, or a second holdout-like reference; never a forget set.
BUNDLED_SPLITS = {
    "forget": ("forget01", "forget05", "forget10"),
    "retain": ("retain90", "retain95", "retain99", "real_authors", "world_facts"),
    "holdout": ("holdout", "real_authors", "world_facts"),
}
DEFAULT_SPLITS = {"forget": "forget10", "retain": "retain90", "holdout": "holdout"}
KINDS = {"bundled": "Bundled benchmark", "file": "File or hub dataset", "paste": "Pasted text", "none": "None"}
DATA_SUFFIXES = (".txt", ".md", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".parquet")
PREVIEW_ROWS = 50
PASTE_PAUSE = 0.5  # seconds of no typing before pasted text is parsed
ROLE_HELP = {
    "forget": "What the model must forget.",
    "retain": "What must survive unlearning (trained on by most methods).",
    "holdout": "Never trained on: the 'never knew it' baseline for membership inference.",
}


def initial_source(role: str, spec: str | None, forget: str, model: str) -> tuple[str, str]:
    """(kind, value) to show for a role given the config's spec (None: the bundled default)."""
    if spec is None and role != "forget":
        spec = dict(zip(("retain", "holdout"), bundled_defaults(forget, model)))[role]
    if not spec:
        return "none", ""
    source = SourceSpec.parse(spec)
    if source.is_bundled:
        return "bundled", source.rest
    if source.is_stdin:
        return "paste", ""
    return "file", spec


def pasted_words(message: str) -> str:
    """The data layer names text given as "-" standard input; here the user pasted it."""
    return message.replace("standard input", "the pasted text")


def paste_suffix(detected_format: str) -> str:
    """The file extension that makes the loader read saved pasted text the way it read the paste."""
    if detected_format.startswith("pasted jsonl"):
        return ".jsonl"
    if detected_format.startswith("pasted json"):
        return ".json"
    return ".txt"


class PasteArea(TextArea):
    """The paste box: ctrl+a selects everything (what a user expects of a box they paste
    into; Textual's TextArea makes it "line start", like home, and select-all F7)."""

    BINDINGS = [
        Binding(
            "ctrl+a",
            "select_all",
            "Select all",
            id="paste-select-all",
            show=False,
            tooltip="Paste box: select all the text",
        ),
    ]


class SourceEditor(Vertical):
    """One role's source, its parse status and a preview of its records."""

    def __init__(self, role: str, kind: str, value: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.role = role
        self.kind = kind
        self.value = value
        splits = BUNDLED_SPLITS[role]
        self.split = value if kind == "bundled" and value in splits else DEFAULT_SPLITS[role]
        self.generation = 0
        self.count: int | None = None
        self.error: str | None = None
        self._paste_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        splits = BUNDLED_SPLITS[self.role]
        kinds = [(label, k) for k, label in KINDS.items() if not (k == "none" and self.role == "forget")]
        yield Static(ROLE_HELP[self.role], classes="pane-help")
        with Horizontal(classes="field-row"):
            yield Label("source", classes="field-name")
            yield Choice(
                kinds, value=self.kind, allow_blank=False, id=f"{self.role}-kind", compact=True, classes="source-kind"
            )
            yield Choice(
                [(s, s) for s in splits],
                value=self.split,
                allow_blank=False,
                id=f"{self.role}-split",
                compact=True,
                classes="when-bundled source-split",
            )
            yield Input(
                self.value if self.kind == "file" else "",
                id=f"{self.role}-path",
                compact=True,
                placeholder="file path or hf:owner/name",
                tooltip="A .txt .json .jsonl .csv or .parquet file, or hf:owner/name[:config][@split]; Enter parses it",
                classes="when-file",
            )
            yield Button("Browse…", id=f"{self.role}-browse", compact=True, classes="when-file")
            yield Button("Parse", id=f"{self.role}-parse", compact=True, classes="when-paste")
        yield PasteArea(
            id=f"{self.role}-paste", classes="when-paste source-paste", soft_wrap=True, show_line_numbers=False
        )
        yield Static("", id=f"{self.role}-status", classes="source-status")
        yield DataTable(id=f"{self.role}-preview", classes="source-preview", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        if app_closing(self):
            return
        self._preview_rows: list[dict[str, Any]] = []
        self._columns_for = 0
        self._add_columns(80)
        self.query_one(TextArea).placeholder = (
            "Paste records: JSON / JSON Lines with question and answer fields, "
            "Q: / A: line pairs, or plain text (one record per paragraph or line); ctrl+a selects all"
        )
        self._apply_kind()

    # ---- the spec the run uses ----
    def spec(self, pasted_dir: Path) -> str:
        """The source as a spec for RunConfig; pasted text is saved to a file first (so the
        session's config.json can be run again). Raises DataError when nothing is given."""
        if self.kind == "none":
            return ""
        if self.kind == "bundled":
            return f"bundled:{self.query_one(f'#{self.role}-split', Select).value}"
        if self.kind == "file":
            path = self.query_one(f"#{self.role}-path", Input).value.strip()
            if not path:
                raise DataError(f"the {self.role} set has no source: type a path or press Browse")
            return path
        text = self.query_one(TextArea).text
        if not text.strip():
            raise DataError(f"the {self.role} set is empty: paste some records, or pick another source")
        from tui_unlearn.data.loading import load_records

        _, detected = load_records("-", stdin=text)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
        pasted_dir.mkdir(parents=True, exist_ok=True)
        saved = pasted_dir / f"{self.role}-{digest}{paste_suffix(detected)}"
        if not saved.exists():
            saved.write_text(text, encoding="utf-8")
        return str(saved)

    # ---- reacting to the user ----
    @on(Select.Changed, ".source-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        event.stop()
        if str(event.value) == self.kind:
            return  # the Select announcing its first value, or a change made in code
        self.kind = str(event.value)
        self._apply_kind()

    @on(Select.Changed, ".source-split")
    def _split_changed(self, event: Select.Changed) -> None:
        event.stop()
        if str(event.value) == self.split:
            return  # the Select announcing its first value, not a change
        self.split = str(event.value)
        if self.kind == "bundled":
            self.parse()
        if self.role == "forget":
            self.post_message(ForgetSplitChanged(self.split))

    @on(Input.Submitted)
    def _path_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.parse()

    @on(TextArea.Changed)
    def _paste_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self._paste_timer is not None:
            self._paste_timer.stop()
        self._paste_timer = self.set_timer(PASTE_PAUSE, self.parse)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == f"{self.role}-browse":
            self.browse()
        elif event.button.id == f"{self.role}-parse":
            self.parse()

    def set_text(self, text: str) -> None:
        """Put ``text`` in the paste box (switching to pasted text) and parse it."""
        self.query_one(f"#{self.role}-kind", Select).value = "paste"
        self.kind = "paste"
        self._apply_kind()
        self.query_one(TextArea).load_text(text)
        self.parse()

    def use_paste(self) -> None:
        """Switch to pasted text and put the cursor in the paste box."""
        if self.kind != "paste":
            self.query_one(f"#{self.role}-kind", Select).value = "paste"
            self.kind = "paste"
            self._apply_kind()
        self.query_one(TextArea).focus()

    def set_path(self, path: str) -> None:
        self.query_one(f"#{self.role}-kind", Select).value = "file"
        self.kind = "file"
        self.query_one(f"#{self.role}-path", Input).value = path
        self._apply_kind()

    def set_bundled(self, split: str) -> None:
        if split in BUNDLED_SPLITS[self.role]:
            self.query_one(f"#{self.role}-kind", Select).value = "bundled"
            self.kind = "bundled"
            self.split = split
            self.query_one(f"#{self.role}-split", Select).value = split
            self._apply_kind()

    def browse(self) -> None:
        current = self.query_one(f"#{self.role}-path", Input).value.strip()
        start = Path(current).expanduser() if current else Path.cwd()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.set_path(str(path))

        self.app.push_screen(PathPicker(f"Pick the {self.role} set", start, suffixes=DATA_SUFFIXES), chosen)

    def _apply_kind(self) -> None:
        for kind in KINDS:
            self.set_class(self.kind == kind, f"-{kind}")
        self.parse()

    # ---- parsing ----
    def parse(self) -> None:
        self.generation += 1
        generation, role = self.generation, self.role
        if self.kind == "none":
            self._show_status(f"No {role} set.", error=False)
            self._fill_preview([])
            return
        if self.kind == "paste":
            spec, text = "-", self.query_one(TextArea).text
            if not text.strip():
                self._show_status("Paste records above.", error=False)
                self._fill_preview([])
                return
        elif self.kind == "file":
            spec, text = self.query_one(f"#{role}-path", Input).value.strip(), None
            if not spec:
                self._show_status(
                    "Type the path of a .txt .json .jsonl .csv or .parquet file, or hf:owner/name, "
                    "then Enter; or press Browse.",
                    error=False,
                )
                self._fill_preview([])
                return
        else:
            spec, text = f"bundled:{self.query_one(f'#{role}-split', Select).value}", None
        self._show_status("parsing …", error=False)

        def work() -> None:
            from tui_unlearn.data.loading import load_split

            loaded = load_split(spec, role, stdin=text)
            preview = loaded.records[:PREVIEW_ROWS]
            self.post_message(
                DataParsed(
                    role,
                    generation,
                    spec,
                    len(loaded.records),
                    loaded.detected_format,
                    loaded.report.summary(),
                    preview,
                )
            )

        def failed(message: str) -> None:
            if generation == self.generation:
                self.show_error(pasted_words(message) if spec == STDIN_SPEC else message)

        host(self).run_in_thread(work, group=f"data-{role}", description=f"parsing the {role} set", on_error=failed)

    def on_data_parsed(self, message: DataParsed) -> None:
        message.stop()
        if message.generation != self.generation:
            return  # an answer to an older request
        self.count, self.error = message.count, None
        noun = "record" if message.count == 1 else "records"
        self._show_status(f"{message.count} {noun} · format: {message.detected_format} · {message.report}", error=False)
        self._fill_preview(message.preview)

    def show_error(self, message: str) -> None:
        self.count, self.error = None, message
        self._show_status(message, error=True)
        self._fill_preview([])

    def _show_status(self, text: str, *, error: bool) -> None:
        status = self.query_one(".source-status", Static)
        status.update(text)
        status.set_class(error, "-error")
        if not error:
            self.error = None

    def _add_columns(self, width: int) -> None:
        """The preview's columns, question and answer sharing what ``width`` leaves (the
        fixed columns and two cells of padding each): no text cut while columns stay empty."""
        table = self.query_one(DataTable)
        free = max(40, width - (3 + 4) - 4 * 2 * table.cell_padding - 2)  # 2: the scrollbar
        question = free * 9 // 20
        table.add_column("#", width=3, key="n")
        table.add_column("kind", width=4, key="kind")
        table.add_column("question", width=question, key="question")
        table.add_column("answer", width=free - question, key="answer")
        self._columns_for = width

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._fit_columns)  # the table has its new size after this layout

    def _fit_columns(self) -> None:
        width = self.query_one(DataTable).size.width
        if width and width != self._columns_for:
            table = self.query_one(DataTable)
            table.clear(columns=True)
            self._add_columns(width)
            self._fill_preview(self._preview_rows)

    def _fill_preview(self, rows: list[dict[str, Any]]) -> None:
        self._preview_rows = rows
        table = self.query_one(DataTable)
        table.clear()
        for i, row in enumerate(rows, 1):
            table.add_row(
                str(i), row.get("kind", ""), _one_line(row.get("question", "")), _one_line(row.get("answer", ""))
            )
        table.display = bool(rows)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class DataPane(Vertical):
    """The three sets in tabs; ``specs()`` gives the run its forget, retain and holdout."""

    def __init__(self, forget: str, retain: str | None, holdout: str | None, model: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = {
            "forget": initial_source("forget", forget, forget, model),
            "retain": initial_source("retain", retain, forget, model),
            "holdout": initial_source("holdout", holdout, forget, model),
        }

    def compose(self) -> ComposeResult:
        with TabbedContent(id="data-tabs"):
            for role in ROLES:
                kind, value = self.initial[role]
                with TabPane(role.capitalize(), id=f"data-{role}"):
                    yield SourceEditor(role, kind, value, id=f"source-{role}")

    def editor(self, role: str) -> SourceEditor:
        return self.query_one(f"#source-{role}", SourceEditor)

    def show(self, role: str) -> None:
        self.query_one("#data-tabs", TabbedContent).active = f"data-{role}"

    def specs(self, pasted_dir: Path) -> dict[str, str]:
        return {role: self.editor(role).spec(pasted_dir) for role in ROLES}

    def on_forget_split_changed(self, message: ForgetSplitChanged) -> None:
        retain = self.editor("retain")
        # A retain split of the same authors follows the forget split; a utility split the
        # user picked (real_authors, world_facts) stays.
        if retain.kind == "bundled" and retain.split.startswith("retain"):
            try:
                retain.set_bundled(default_retain_for(message.split))
            except ConfigError:  # holdout or retain splits have no matching retain split
                pass
