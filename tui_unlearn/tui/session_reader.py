"""Reading the sessions folder for the sessions screen, off the UI thread (no Textual here).

``SessionScanner.scan()`` returns every session's row, reading again only what changed
since the last scan: the folder listing when the folder's mtime moved, a summary when its
file changed, and the summaries of running sessions (their process may have died, which
no file shows). The screen's reader thread calls it about once a second and posts the
rows when they differ from the last ones posted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tui_unlearn.analysis.curves import session_curves
from tui_unlearn.analysis.tables import session_row
from tui_unlearn.errors import UnlearnError
from tui_unlearn.printable import printable_data
from tui_unlearn.sessions import (
    CONFIG_FILE,
    SUMMARY_FILE,
    Session,
    Status,
    list_sessions,
)

SCAN_EVERY_S = 1.0


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_row(session: Session) -> dict[str, Any]:
    """``session_row`` plus what the screen shows and needs: the forget set, whether the run
    is going, and its writer (pid, host)."""
    row = session_row(session)
    config, problem = session.read_config()
    forget = config.get("forget") if problem is None else None
    row["forget"] = forget if isinstance(forget, str) else None
    row["total_steps"] = None
    if row.get("status") != Status.UNREADABLE:
        summary = session.summary()
        for key in ("pid", "host", "total_steps", "kind"):
            row[key] = summary.get(key)
    row["running"] = row.get("status") == Status.RUNNING
    return printable_data(row)  # the screen shows these strings: control characters from files, escaped


class SessionScanner:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._listing: list[Session] = []
        self._root_stamp: tuple[int, int] | None = None
        self._rows: dict[str, tuple[tuple, dict[str, Any]]] = {}

    def scan(self) -> tuple[dict[str, dict[str, Any]], dict[str, Session], str | None]:
        """(rows by id, sessions by id, why the folder cannot be read or None), newest first."""
        stamp = _stamp(self.root)
        if stamp is None or stamp != self._root_stamp:
            try:
                self._listing = list_sessions(self.root)
            except UnlearnError as error:
                self._root_stamp, self._listing = None, []
                return {}, {}, str(error)
            self._root_stamp = stamp
        rows: dict[str, dict[str, Any]] = {}
        sessions: dict[str, Session] = {}
        for session in self._listing:
            key = (_stamp(session.path / SUMMARY_FILE), _stamp(session.path / CONFIG_FILE))
            if key[0] is None:  # deleted since the listing
                self._root_stamp = None
                continue
            cached = self._rows.get(session.id)
            if cached is None or cached[0] != key or cached[1].get("running"):
                cached = (key, read_row(session))
                self._rows[session.id] = cached
            rows[session.id] = cached[1]
            sessions[session.id] = session
        for gone in set(self._rows) - set(rows):
            del self._rows[gone]
        return rows, sessions, None


def read_comparison(sessions: dict[str, Session], ids: list[str]) -> tuple[dict[str, dict], dict[str, Any]]:
    """Summaries and curves of the sessions ``ids`` (for the compare table and plot)."""
    summaries = {sid: printable_data(sessions[sid].summary()) for sid in ids if sid in sessions}
    curves = {sid: session_curves(sessions[sid]) for sid in ids if sid in sessions}
    return summaries, curves
