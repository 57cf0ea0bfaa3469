"""The help screen: every key of the screen it was opened on, closed with escape.

The rows come from the bindings themselves (app, screen and our widgets: each has an id
and a tooltip), so the list cannot drift from what the keys do; keys that widgets handle
without a binding of ours (moving between fields, enter in a box) are listed per screen in
``NAVIGATION``. docs/workbench.md's keys table says the same (a test compares them).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

NAVIGATION: dict[str, list[tuple[str, str]]] = {
    "WorkbenchScreen": [
        ("tab / shift+tab", "Move to the next / previous field"),
        ("left / right", "Switch tabs while the tab bar has focus"),
        ("enter", "Model box: load the model · path box: parse the file · probe box: add the question"),
        ("ctrl+p", "Command palette: every action, by name"),
    ],
    "SessionsScreen": [
        ("up / down", "Move between sessions"),
        ("enter", "Watch the highlighted session live (a finished one is replayed)"),
        ("ctrl+p", "Command palette"),
    ],
    "WatchScreen": [
        ("left / right", "Switch between Run and Probes while the tab bar has focus"),
        ("ctrl+p", "Command palette"),
    ],
}
KEY_NAMES = {"question_mark": "?", "escape": "escape", "delete": "delete"}


def key_text(key: str) -> str:
    return KEY_NAMES.get(key, key)


def help_rows(screen: Screen) -> list[tuple[str, str, bool]]:
    """(keys, what they do, available now) for every binding with an id that ``screen``
    answers to: the app's, the screen's and its widgets' (in declaration order, keys of
    one action together), then the screen's NAVIGATION rows. A binding whose action says
    False here (Textual: hidden on this screen) is left out; None (not now) is listed."""
    app = screen.app
    groups: dict[tuple[str, str], list[str]] = {}
    state: dict[tuple[str, str], int] = {}  # 2 available, 1 not now, 0 not on this screen
    nodes = [app, screen, *(w for w in screen.walk_children() if w._bindings.key_to_bindings)]
    for node in nodes:
        for bindings in node._bindings.key_to_bindings.values():
            for binding in bindings:
                if not binding.id or binding.system:
                    continue
                what = binding.tooltip or binding.description
                slot = (binding.action, what)
                groups.setdefault(slot, [])
                if key_text(binding.key) not in groups[slot]:
                    groups[slot].append(key_text(binding.key))
                namespace = node
                action = binding.action
                if action.startswith("app."):
                    namespace, action = app, action[4:]
                name, _, params = action.partition("(")
                allowed = namespace.check_action(name, (params.rstrip(")").strip("'\""),) if params else ())
                state[slot] = max(state.get(slot, 0), 2 if allowed else (0 if allowed is False else 1))
    # In the order the classes declare them (the app's own bindings come after Textual's defaults
    # in its binding map).
    declared = [b.action for node in nodes for b in getattr(type(node), "BINDINGS", []) if isinstance(b, Binding)]
    order = sorted(groups, key=lambda slot: declared.index(slot[0]) if slot[0] in declared else len(declared))
    rows = [(" / ".join(groups[slot]), slot[1], state[slot] == 2) for slot in order if state[slot]]
    rows += [(keys, what, True) for keys, what in NAVIGATION.get(type(screen).__name__, [])]
    return rows


class HelpScreen(ModalScreen[None]):
    """Keys of the screen below, with what each does; dimmed when not available right now."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 100;
        max-width: 96%;
        height: auto;
        max-height: 94%;
        border: thick $primary 70%;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; width: 1fr; }
    HelpScreen VerticalScroll { height: auto; max-height: 1fr; }
    HelpScreen #help-hint { color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape,f1,question_mark", "close", "Close", id="help-close", tooltip="Close the help"),
    ]

    def __init__(self, title: str, rows: list[tuple[str, str, bool]]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True, style="bold")
        table.add_column(ratio=1)
        for keys, what, available in self.rows:
            table.add_row(keys, Text(what if available else f"{what} (not now)", style="" if available else "dim"))
        with Vertical():
            yield Label(self.title_text, id="help-title", markup=False)
            with VerticalScroll(id="help-scroll"):  # focused: arrows and page keys scroll a long list
                yield Static(table, id="help-keys")
            yield Label("escape closes · ctrl+p lists every command by name", id="help-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def action_close(self) -> None:
        self.dismiss(None)
