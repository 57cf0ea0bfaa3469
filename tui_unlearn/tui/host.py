"""What screens, widgets and the palette ask of the app, as typed protocols.

Textual types ``widget.app`` as a plain ``App``; the workbench's own methods (run work in a
thread worker, resume a session, ...) are reached through :func:`host`. The protocols are
checked against ``UnlearnApp`` by mypy (the end of ``app.py``), so a renamed or re-typed
method fails the type check instead of a widget at run time, and the screens and widgets
need not import the app module (which imports them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode
    from textual.worker import Worker

    from tui_unlearn.sessions import Session


class AppHost(Protocol):
    """The app's methods that screens and widgets call."""

    run_session_id: str | None  # the session of the run this app started, once known

    def run_in_thread(
        self, work: Callable[[], object], *, group: str, description: str, on_error: Callable[[str], None] | None = None
    ) -> Worker: ...

    def watch_session_screen(self, session: Session) -> None: ...

    def resume_run(self, session: Session, total_steps: int | None) -> None: ...


class PaletteHost(Protocol):
    """The app's state and actions that the command palette offers."""

    @property
    def running(self) -> bool: ...

    def action_help(self) -> None: ...
    def action_start_run(self) -> None: ...
    def action_stop_run(self) -> None: ...
    def action_open_sessions(self) -> None: ...
    def action_load_model(self) -> None: ...
    def action_browse_model(self) -> None: ...
    def action_browse_data(self, role: str) -> None: ...
    def action_paste_data(self, role: str) -> None: ...
    def action_add_probe(self) -> None: ...
    def action_show_tab(self, name: str) -> None: ...


def host(node: DOMNode) -> AppHost:
    """The app ``node`` belongs to, as the workbench app (the only app these widgets run in)."""
    return cast("AppHost", node.app)
