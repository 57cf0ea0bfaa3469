"""The sessions screen: saved sessions in a table; select several to compare them in a
table and in plotted curves; delete one after confirming.

Rows, comparisons and curves come from ``tui_unlearn.analysis`` (shared with the CLI). A
session that cannot be read is listed as "unreadable" and cannot be selected; event lines
that could not be read are counted in the comparison's subtitle.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Select, Static
from textual_plotext import PlotextPlot

from tui_unlearn.analysis.curves import Curves, plot_curves, series_goal, series_name, session_curves
from tui_unlearn.analysis.reporting import session_label, unique_labels
from tui_unlearn.analysis.tables import compare_table, fmt, session_row
from tui_unlearn.errors import UnlearnError
from tui_unlearn.sessions import Session, Status, delete_session, list_sessions
from tui_unlearn.tui.screens.dialogs import ConfirmDialog

PLOT_SERIES = ("loss", series_name("forget", "accuracy"), series_name("retain", "accuracy"),
               series_name("forget", "f1"), series_name("retain", "f1"),
               series_name("forget", "loss"), series_name("retain", "loss"))


def before_after(row: dict, key: str) -> str:
    b, a = row.get(f"{key}_before"), row.get(f"{key}_after")
    if b is None and a is None:
        return "-"
    return f"{fmt(b, 2)}→{fmt(a, 2)}"


def started_at(row: dict) -> str:
    started = str(row.get("started") or "")
    return started[5:16].replace("T", " ") if len(started) >= 16 else started


class SessionsScreen(Screen):
    """Browse, compare and delete saved sessions."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="sessions-back", tooltip="Back to the workbench"),
        Binding("space", "toggle_selected", "Select", id="sessions-select",
                tooltip="Add the highlighted session to the comparison, or take it out"),
        Binding("delete,d", "delete_session", "Delete", id="sessions-delete",
                tooltip="Delete the highlighted session's folder (asks first)"),
        Binding("r", "refresh_sessions", "Refresh", id="sessions-refresh", tooltip="Read the sessions folder again"),
        Binding("p", "next_plot_series", "Plot next", id="sessions-plot",
                tooltip="Plot the next series (loss, forget/retain accuracy, F1, loss)"),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.sessions: dict[str, Session] = {}
        self.rows: dict[str, dict] = {}
        self.selected: list[str] = []  # in the order the user picked them
        self._curves: dict[str, Curves] = {}  # read once per refresh, per selected session

    def compose(self) -> ComposeResult:
        yield Label("", id="sessions-title", markup=False)
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="compare-area"):
            with Vertical(id="compare-left"):
                yield Static("Select sessions with space to compare them.", id="compare-hint")
                yield DataTable(id="compare-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="compare-right"):
                yield Select([(s, s) for s in PLOT_SERIES], value="loss", allow_blank=False, id="compare-series", compact=True)
                yield PlotextPlot(id="compare-plot")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        for label, key, width in (
            ("✓", "sel", 1), ("started", "started", 11), ("algorithm", "algorithm", 11), ("model", "model", 12),
            ("status", "status", 11), ("forget acc", "fa", 10), ("retain acc", "ra", 10),
            ("steps", "steps", 5), ("secs", "secs", 5),
        ):
            table.add_column(label, key=key, width=width)
        table.tooltip = f"Sessions in {self.root}"
        self.query_one("#compare-area").border_title = "Compare"
        self.action_refresh_sessions()
        table.focus()

    # ---- reading ----
    def action_refresh_sessions(self) -> None:
        try:
            found = list_sessions(self.root)
        except UnlearnError as error:
            self.notify(str(error), severity="error")
            found = []
        self.sessions = {s.id: s for s in found}
        self.rows = {s.id: session_row(s) for s in found}
        self.selected = [sid for sid in self.selected if sid in self.sessions and not self._unreadable(sid)]
        self._curves = {}
        table = self.query_one("#sessions-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for sid, row in self.rows.items():
            table.add_row(
                "✓" if sid in self.selected else " ",
                started_at(row),
                row.get("algorithm") or "-",
                str(row.get("model") or "-").rsplit("/", 1)[-1],
                row.get("status") or "-",
                before_after(row, "forget_accuracy"),
                before_after(row, "retain_accuracy"),
                fmt(row.get("steps")),
                fmt(row.get("seconds"), 1),
                key=sid,
            )
        if self.rows:
            table.move_cursor(row=min(cursor, len(self.rows) - 1))
        noun = "session" if len(self.rows) == 1 else "sessions"
        self.query_one("#sessions-title", Label).update(
            f"{len(self.rows)} saved {noun} · space selects for comparison · d deletes · esc goes back"
        )
        self._compare()

    def _unreadable(self, sid: str) -> bool:
        return self.rows[sid].get("status") == Status.UNREADABLE

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#sessions-table", DataTable)
        if not self.rows or table.cursor_row < 0:
            return None
        return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)

    # ---- comparing ----
    def action_toggle_selected(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        if sid in self.selected:
            self.selected.remove(sid)
        elif self._unreadable(sid):
            self.notify(f"cannot compare {sid}: {self.rows[sid].get('problem')}", severity="warning")
            return
        else:
            self.selected.append(sid)
        self.query_one("#sessions-table", DataTable).update_cell(sid, "sel", "✓" if sid in self.selected else " ")
        self._compare()

    def select(self, *session_ids: str) -> None:
        """Select sessions for comparison (tests and the command palette use it)."""
        for sid in session_ids:
            if sid in self.sessions and sid not in self.selected and not self._unreadable(sid):
                self.selected.append(sid)
                self.query_one("#sessions-table", DataTable).update_cell(sid, "sel", "✓")
        self._compare()

    def action_next_plot_series(self) -> None:
        box = self.query_one("#compare-series", Select)
        box.value = PLOT_SERIES[(PLOT_SERIES.index(str(box.value)) + 1) % len(PLOT_SERIES)]

    @on(Select.Changed, "#compare-series")
    def _series_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._plot()

    def _labels(self) -> list[str]:
        return unique_labels([session_label(self.rows[sid]) for sid in self.selected])

    def _curves_of(self, sid: str) -> Curves:
        if sid not in self._curves:
            self._curves[sid] = session_curves(self.sessions[sid])
        return self._curves[sid]

    def _compare(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        self.query_one("#compare-hint", Static).display = not self.selected
        table.display = bool(self.selected)
        if self.selected:
            summaries = [self.sessions[sid].summary() for sid in self.selected]
            headers, rows = compare_table(summaries, self._labels(), arrow="→")
            for header in headers:
                table.add_column(header)
            for row in rows:
                table.add_row(*row)
        notes = [f"{label}: {note}" for label, sid in zip(self._labels(), self.selected)
                 if (note := self._curves_of(sid).note())]
        self.query_one("#compare-area").border_subtitle = "; ".join(notes)
        self._plot()

    def _plot(self) -> None:
        plot = self.query_one("#compare-plot", PlotextPlot)
        series = str(self.query_one("#compare-series", Select).value)
        curves = {
            label: self._curves_of(sid).series.get(series, [])
            for label, sid in zip(self._labels(), self.selected)
        }
        arrow = "lower is better" if series_goal(series) == "min" else "higher is better"
        plot_curves(plot.plt, curves, title=f"{series} ({arrow})" if curves else "select sessions to plot them")
        plot.refresh()

    # ---- deleting ----
    def action_delete_session(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        row = self.rows[sid]
        running = self.sessions[sid].still_running()  # the check `sessions delete` makes
        if running is not None:
            if self.sessions[sid].summary().get("pid") == os.getpid():
                running = "that session is this app's run; stop it first (ctrl+x)"
            self.notify(running, severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                delete_session(self.sessions[sid], self.root)
            except (UnlearnError, OSError) as error:
                self.notify(f"could not delete {sid}: {error}", severity="error")
                return
            if sid in self.selected:
                self.selected.remove(sid)
            self.notify(f"deleted session {sid}")
            self.action_refresh_sessions()

        self.app.push_screen(
            ConfirmDialog(f"Delete session {sid} ({row.get('algorithm')}, {row.get('status')})? Its folder is removed.", "Delete"),
            answered,
        )
