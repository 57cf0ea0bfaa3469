"""The command palette's own commands: every action, by name (posting's ``commands.py`` idea).

Keys are for what people do often; the palette is where everything can be found by
typing a few letters of its name ("help", "go to run", "paste the forget set").
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import SystemCommand
from textual.screen import Screen

from tui_unlearn.tui.host import PaletteHost
from tui_unlearn.tui.screens.workbench import TABS, WorkbenchScreen


def palette_commands(app: PaletteHost, screen: Screen) -> Iterable[SystemCommand]:
    yield SystemCommand("Help", "Every key of this screen (F1 or ?)", app.action_help)
    if not isinstance(screen, WorkbenchScreen):
        return
    if app.running:
        yield SystemCommand("Stop run", "Stop after the current step (ctrl+x)", app.action_stop_run)
    else:
        yield SystemCommand("Start run", "Start unlearning (ctrl+r)", app.action_start_run)
    yield SystemCommand(
        "Sessions", "Watch, compare, resume and delete saved sessions (ctrl+o)", app.action_open_sessions
    )
    yield SystemCommand("Load model", "Load the chosen model to see its size (ctrl+l)", app.action_load_model)
    yield SystemCommand("Browse for a model folder", "Pick a local Hugging Face model folder", app.action_browse_model)
    for role in ("forget", "retain", "holdout"):
        yield SystemCommand(
            f"Load the {role} set from a file",
            f"Pick a file for the {role} set",
            lambda role=role: app.action_browse_data(role),
        )
        yield SystemCommand(
            f"Paste the {role} set", f"Paste records for the {role} set", lambda role=role: app.action_paste_data(role)
        )
    yield SystemCommand("Add a probe question", "Watch the answer to your own question", app.action_add_probe)
    for number, (name, title) in enumerate(TABS.items(), start=1):
        yield SystemCommand(
            f"Go to {title}",
            f"Show the {title} tab (F{number + 1} or alt+{number})",
            lambda name=name: app.action_show_tab(name),
        )
