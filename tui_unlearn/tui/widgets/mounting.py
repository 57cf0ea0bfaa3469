"""Mounting into an app that is closing.

The Data, Algorithm, Run and Probes tabs are mounted just after the first frame; an app
closed in that moment (ctrl+q at once, a test that only looks at the first screen) prunes
widgets whose mount handlers have not run yet, and a handler that then looks for its
children finds none and fails with a traceback over the terminal (Textual 8.2.8 does this
in Select's own handler). Mounting into a closing app is pointless, so these skip it.
"""

from __future__ import annotations

from textual import events
from textual.widget import Widget
from textual.widgets import Select


def app_closing(widget: Widget) -> bool:
    """True once the app is exiting or shut down: a mount handler should do nothing then."""
    app = widget.app
    return bool(app._exit) or not app.is_running


class Choice(Select):
    """A Select that skips its mount handler (which sets its value) in a closing app."""

    def _on_mount(self, event: events.Mount) -> None:
        if app_closing(self):
            event.prevent_default()  # Select's own mount handler runs after this one: skip it
