"""Modal dialogs that dismiss a value: a yes/no question and a file or folder picker."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label


class ConfirmDialog(ModalScreen[bool]):
    """Ask one yes/no question; dismisses True for yes."""

    DEFAULT_CSS = """
    ConfirmDialog {
        align: center middle;
    }
    ConfirmDialog > Vertical {
        width: 60;
        max-width: 90%;
        height: auto;
        border: thick $error 70%;
        background: $surface;
        padding: 1 2;
    }
    ConfirmDialog Label { width: 1fr; margin-bottom: 1; }
    ConfirmDialog Horizontal { height: auto; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes", tooltip="Answer yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no", tooltip="Answer no and close"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            with Horizontal():
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PathTree(DirectoryTree):
    """A directory tree that shows folders and, when picking a file, only readable data files."""

    def __init__(self, path: Path, *, suffixes: Iterable[str] | None, **kwargs) -> None:
        self.suffixes = {s.lower() for s in suffixes} if suffixes is not None else None
        super().__init__(path, **kwargs)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        for path in paths:
            if path.name.startswith("."):
                continue
            try:
                is_dir = path.is_dir()
            except OSError:
                continue
            if is_dir or (self.suffixes is not None and path.suffix.lower() in self.suffixes):
                yield path


class PathPicker(ModalScreen[Path | None]):
    """Pick a file (``suffixes`` given) or a folder (``suffixes`` None); dismisses the path or None.

    The path can be typed into the box or chosen in the tree; Enter on a typed folder
    opens it in the tree.
    """

    DEFAULT_CSS = """
    PathPicker {
        align: center middle;
    }
    PathPicker > Vertical {
        width: 90%;
        max-width: 110;
        height: 90%;
        border: thick $primary 70%;
        background: $surface;
        padding: 0 1;
    }
    PathPicker #picker-title { text-style: bold; margin-bottom: 1; }
    PathPicker PathTree { height: 1fr; border: round $primary 40%; }
    PathPicker #picker-hint { color: $text-muted; height: auto; }
    PathPicker #picker-hint.-error { color: $error; }
    PathPicker Horizontal { height: auto; align-horizontal: right; }
    PathPicker Horizontal Button { margin-left: 2; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker-cancel", tooltip="Close without choosing"),
        Binding("ctrl+o", "choose", "Choose", id="picker-choose", tooltip="Choose the path in the box", priority=True),
    ]

    def __init__(self, title: str, start: Path | None = None, *, suffixes: Iterable[str] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.suffixes = tuple(suffixes) if suffixes is not None else None
        start = (start or Path.cwd()).expanduser()
        self.start = start if start.is_dir() else (start.parent if start.parent.is_dir() else Path.cwd())

    @property
    def picking_files(self) -> bool:
        return self.suffixes is not None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="picker-title", markup=False)
            yield Input(str(self.start), id="picker-path", compact=True)
            yield PathTree(self.start, suffixes=self.suffixes, id="picker-tree")
            hint = (
                f"Files: {' '.join(self.suffixes or ())}. Enter on a file chooses it."
                if self.picking_files
                else "Enter on a folder puts it in the box; ctrl+o or Choose takes the box."
            )
            yield Label(hint, id="picker-hint", markup=False)
            with Horizontal():
                yield Button("Choose ^o", id="picker-ok", variant="primary", compact=True)
                yield Button("Cancel esc", id="picker-cancel-button", compact=True)

    def on_mount(self) -> None:
        self.query_one(PathTree).focus()

    @on(DirectoryTree.FileSelected)
    def _file_chosen(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.query_one("#picker-path", Input).value = str(event.path)
        if self.picking_files:
            self.dismiss(event.path)

    @on(DirectoryTree.DirectorySelected)
    def _folder_chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.query_one("#picker-path", Input).value = str(event.path)

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        path = Path(event.value).expanduser()
        if path.is_dir() and self.picking_files:
            self.query_one(PathTree).path = path
            return
        self.action_choose()

    @on(Button.Pressed, "#picker-ok")
    def _ok(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose()

    @on(Button.Pressed, "#picker-cancel-button")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_choose(self) -> None:
        path = Path(self.query_one("#picker-path", Input).value.strip()).expanduser()
        ok = path.is_file() if self.picking_files else path.is_dir()
        if not ok:
            hint = self.query_one("#picker-hint", Label)
            hint.update(f"{path} is not {'a file' if self.picking_files else 'a folder'}; pick another")
            hint.add_class("-error")
            return
        self.dismiss(path)
