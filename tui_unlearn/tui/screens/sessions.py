"""The sessions screen: saved sessions in a table that keeps itself current; watch one live
(enter), resume an interrupted one (ctrl+r), select several to compare them in a table and
in plotted curves, delete one after confirming. A sweep is one group: a header row (enter
folds it) with its trials under it, those on its Pareto front starred; space on the header
selects the front for comparison, and a panel under the table shows the front's objectives.

Everything on disk is read in thread workers (``session_reader``): the folder is scanned
about once a second (cheaply: only what changed is read again) and the table updated when
a session appears, moves on or ends. Rows, comparisons and curves come from
``tui_unlearn.analysis`` (shared with the CLI). A session that cannot be read is listed as
"unreadable" and cannot be selected; event lines that could not be read are counted in
the comparison's subtitle.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Select, Static
from textual_plotext import PlotextPlot

from tui_unlearn.analysis.curves import Curves, plot_curves, series_goal, series_name
from tui_unlearn.analysis.reporting import data_label, session_label, unique_labels
from tui_unlearn.analysis.tables import compare_table, fmt
from tui_unlearn.sessions import Session, Status, delete_session
from tui_unlearn.tui.host import host
from tui_unlearn.tui.messages import CompareRead, SessionDeleted, SessionsRead
from tui_unlearn.tui.screens.dialogs import ConfirmDialog
from tui_unlearn.tui.session_reader import SCAN_EVERY_S, SessionScanner, read_comparison
from tui_unlearn.tui.sweep_reader import SweepGroup, SweepScanner, is_group_key
from tui_unlearn.tui.sweep_view import (
    front_text,
    header_cells,
    point_text,
    table_order,
    trial_status,
)
from tui_unlearn.tui.widgets.mounting import Choice

# Narrower screens than this name compared sessions without their start times when the
# names alone tell them apart (at 80 columns two full names leave the second column cut).
COMPACT_BELOW = 100

# plotext's colour names (analysis.curves.COLOURS) as Rich's, for the legend below the plot.
RICH_COLOURS = {
    "blue+": "bold bright_blue",
    "red+": "bold bright_red",
    "green+": "bold bright_green",
    "orange+": "bold bright_yellow",
    "magenta+": "bold bright_magenta",
    "cyan+": "bold bright_cyan",
    "blue": "bold blue",
    "red": "bold red",
    "green": "bold green",
    "orange": "bold yellow",
}

PLOT_SERIES = (
    "loss",
    series_name("forget", "accuracy"),
    series_name("retain", "accuracy"),
    series_name("forget", "f1"),
    series_name("retain", "f1"),
    series_name("forget", "loss"),
    series_name("retain", "loss"),
)
COLUMNS = (
    ("✓", "sel", 1),
    ("started", "started", 11),
    ("algorithm", "algorithm", 11),
    ("forget", "forget", 9),
    ("model", "model", 12),
    ("status", "status", 11),
    ("forget acc", "fa", 10),
    ("retain acc", "ra", 10),
    ("steps", "steps", 7),
)


def before_after(row: dict, key: str) -> str:
    b, a = row.get(f"{key}_before"), row.get(f"{key}_after")
    if b is None and a is None:
        return "-"
    return f"{fmt(b, 2)}→{fmt(a, 2)}"


def started_at(row: dict) -> str:
    started = str(row.get("started") or "")
    return started[5:16].replace("T", " ") if len(started) >= 16 else started


def status_cell(row: dict) -> Text:
    """The status, marked so a running session stands out without colour too."""
    status = str(row.get("status") or "-")
    if row.get("running"):
        return Text(f"● {status}", style="bold green")
    return Text(status, style="red" if status in (Status.FAILED, Status.UNREADABLE, Status.DIVERGED) else "")


def steps_cell(row: dict) -> str:
    steps, total = row.get("steps"), row.get("total_steps")
    return f"{fmt(steps)}/{total}" if row.get("running") and total else fmt(steps)


def cells(row: dict, selected: bool) -> list[Any]:
    return [
        "✓" if selected else " ",
        started_at(row),
        row.get("algorithm") or row.get("kind") or "-",
        data_label(row.get("forget")),
        str(row.get("model") or "-").rstrip("/").rsplit("/", 1)[-1],
        status_cell(row),
        before_after(row, "forget_accuracy"),
        before_after(row, "retain_accuracy"),
        steps_cell(row),
    ]


class SessionsScreen(Screen):
    """Browse, watch, resume, compare and delete saved sessions."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="sessions-back", tooltip="Back to the workbench"),
        Binding(
            "space",
            "toggle_selected",
            "Select",
            id="sessions-select",
            tooltip="Add the highlighted session (on a sweep's header: its Pareto front) to the comparison, or take it out",
        ),
        Binding(
            "ctrl+r",
            "resume",
            "Resume",
            id="sessions-resume",
            tooltip="Resume the highlighted interrupted session from its checkpoint, in the Run tab",
        ),
        Binding(
            "delete,d",
            "delete_session",
            "Delete",
            id="sessions-delete",
            tooltip="Delete the highlighted session's folder (asks first)",
        ),
        Binding(
            "p",
            "next_plot_series",
            "Plot next",
            id="sessions-plot",
            tooltip="Plot the next series (loss, forget/retain accuracy, F1, loss)",
        ),
        Binding(
            "r",
            "refresh_sessions",
            "Refresh",
            id="sessions-refresh",
            show=False,
            tooltip="Read the sessions folder now (it is read again every second anyway)",
        ),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.sessions: dict[str, Session] = {}
        self.rows: dict[str, dict] = {}
        self.selected: list[str] = []  # in the order the user picked them
        self.groups: dict[str, SweepGroup] = {}  # header row key -> sweep, newest first
        self.folded: set[str] = set()  # the sweeps whose trials are hidden
        self._trial_group: dict[str, SweepGroup] = {}  # a trial's row key -> its sweep
        self.loaded = False  # the first scan has arrived
        self._summaries: dict[str, dict] = {}
        self._curves: dict[str, Curves] = {}
        self._compare_generation = 0
        self._stop = threading.Event()
        self._wake = threading.Event()

    def compose(self) -> ComposeResult:
        yield Label(f"reading {self.root} …", id="sessions-title", markup=False)
        yield DataTable(id="sessions-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sweep-front")
        with Horizontal(id="compare-area"):
            with Vertical(id="compare-left"):
                yield Static("Select sessions with space to compare them.", id="compare-hint")
                yield DataTable(id="compare-table", cursor_type="none", zebra_stripes=True)
            with Vertical(id="compare-right"):
                yield Choice(
                    [(s, s) for s in PLOT_SERIES], value="loss", allow_blank=False, id="compare-series", compact=True
                )
                yield PlotextPlot(id="compare-plot")
                yield Static("", id="compare-legend")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        for label, key, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        table.tooltip = f"Sessions in {self.root}"
        self.query_one("#compare-area").border_title = "Compare"
        self.query_one("#sweep-front").display = False
        table.focus()
        self._compare()
        self._start_reader()

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()

    # ---- reading, in a thread ----
    def _start_reader(self) -> None:
        scanner, sweeps, stop, wake = SessionScanner(self.root), SweepScanner(self.root), self._stop, self._wake

        def work() -> None:
            last: tuple | None = None
            while not stop.is_set():
                rows, sessions, error = scanner.scan()
                groups, trial_rows, trial_sessions = sweeps.scan(rows, sessions)
                rows, sessions = {**rows, **trial_rows}, {**sessions, **trial_sessions}
                seen = (
                    tuple((sid, tuple(sorted((k, str(v)) for k, v in row.items()))) for sid, row in rows.items()),
                    groups,
                    error,
                )
                if seen != last:
                    last = seen
                    self.post_message(SessionsRead(rows, sessions, error, groups))
                wake.wait(SCAN_EVERY_S)
                wake.clear()

        host(self).run_in_thread(
            work,
            group=f"follow:sessions-{id(self)}",
            description="reading the sessions folder",
            on_error=lambda text: self.notify(text, severity="error"),
        )

    def action_refresh_sessions(self) -> None:
        self._wake.set()

    def on_sessions_read(self, message: SessionsRead) -> None:
        message.stop()
        if message.error:
            self.notify(message.error, severity="error")
        changed = [sid for sid in self.selected if self.rows.get(sid) != message.rows.get(sid)]
        self.rows, self.sessions = message.rows, message.sessions
        self.groups = {g.key: g for g in message.sweeps}
        self._trial_group = {key: g for g in message.sweeps for key in g.trial_keys}
        self.folded &= set(self.groups)
        self.loaded = True
        self.selected = [sid for sid in self.selected if sid in self.rows and not self._unreadable(sid)]
        for sid in changed:  # read again what the comparison shows of them
            self._summaries.pop(sid, None)
            self._curves.pop(sid, None)
        self._fill_table()
        running = sum(1 for row in self.rows.values() if row.get("running"))
        noun = "session" if len(self.rows) == 1 else "sessions"
        live = f" ({running} running)" if running else ""
        sweeps = f" · {len(self.groups)} sweep{'' if len(self.groups) == 1 else 's'}" if self.groups else ""
        self.query_one("#sessions-title", Label).update(
            f"{len(self.rows)} saved {noun}{live}{sweeps} · enter watches · space compares · ctrl+r resumes · f1 keys"
        )
        self._show_front()
        if changed or not self.selected:
            self._compare()

    def _group_of(self, key: str | None) -> SweepGroup | None:
        """The sweep a row belongs to (its header or one of its trials), or None."""
        if key is None:
            return None
        if is_group_key(key):
            return self.groups.get(key)
        return self._trial_group.get(key)

    def _cells(self, key: str) -> list[Any]:
        if is_group_key(key):
            return header_cells(self.groups[key], key not in self.folded)
        row = self.rows[key]
        shown = cells(row, key in self.selected)
        group = self._group_of(key)
        if group is not None:  # a trial: what it tried instead of the method its header names
            shown[2] = "└ " + point_text(group.points.get(key, {}))
            shown[5] = trial_status(shown[5], key in group.front_keys)
        return shown

    def _fill_table(self) -> None:
        table = self.query_one("#sessions-table", DataTable)
        keys = [str(k.value) for k in table.rows]
        order = table_order(self.groups, self.rows, self.folded)
        if keys == order:  # same rows: update the cells that changed
            for key in order:
                for (_, column, _), value in zip(COLUMNS, self._cells(key)):
                    if str(table.get_cell(key, column)) != str(value):
                        table.update_cell(key, column, value)
            return
        current = self._highlighted_id()
        table.clear()
        for key in order:
            table.add_row(*self._cells(key), key=key)
        if order:
            table.move_cursor(row=order.index(current) if current in order else 0)

    def _unreadable(self, sid: str) -> bool:
        return sid in self.rows and self.rows[sid].get("status") == Status.UNREADABLE

    def _highlighted_id(self) -> str | None:
        table = self.query_one("#sessions-table", DataTable)
        if not table.row_count or table.cursor_row < 0:
            return None
        return str(table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value)

    # ---- watching and resuming ----
    @on(DataTable.RowSelected, "#sessions-table")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_watch()

    @on(DataTable.RowHighlighted, "#sessions-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_front()

    def _show_front(self) -> None:
        """The panel under the table: the highlighted sweep's Pareto front (hidden elsewhere)."""
        panel = self.query_one("#sweep-front", Static)
        group = self._group_of(self._highlighted_id())
        panel.display = group is not None
        if group is not None:
            panel.update(front_text(group))
            panel.border_title = f"Sweep {group.name}"
            panel.border_subtitle = "enter folds it · space on its header compares its front"

    def toggle_group(self, key: str) -> None:
        """Fold a sweep's trials under its header, or show them again."""
        self.folded ^= {key}
        self._fill_table()

    def action_watch(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        if is_group_key(sid):
            self.toggle_group(sid)
            return
        if self._unreadable(sid):
            self.notify(f"cannot open {sid}: {self.rows[sid].get('problem')}", severity="warning")
            return
        host(self).watch_session_screen(self.sessions[sid])

    def action_resume(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        group = self._group_of(sid)
        if group is not None:  # the sweep command knows its trials: it runs the unfinished ones again
            self.notify(
                f"a sweep's trials resume with the same sweep command: it reruns those not finished ({group.name})",
                title="Resume the sweep",
                severity="warning",
            )
            return
        host(self).resume_run(self.sessions[sid], self.rows[sid].get("total_steps"))

    # ---- comparing ----
    def action_toggle_selected(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        if is_group_key(sid):  # the front, as ``analyze SWEEP`` compares it
            front = [k for k in self.groups[sid].front_keys if k in self.rows]
            if not front:
                self.notify(f"{self.groups[sid].name} has no finished trial yet", severity="warning")
                return
            if all(k in self.selected for k in front):
                self.selected = [k for k in self.selected if k not in front]
            else:
                self.selected += [k for k in front if k not in self.selected]
            self._fill_table()
            self._compare()
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
            if sid in self.rows and sid not in self.selected and not self._unreadable(sid):
                self.selected.append(sid)
        self._fill_table()
        self._compare()

    def action_next_plot_series(self) -> None:
        box = self.query_one("#compare-series", Select)
        box.value = PLOT_SERIES[(PLOT_SERIES.index(str(box.value)) + 1) % len(PLOT_SERIES)]

    @on(Select.Changed, "#compare-series")
    def _series_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._plot()

    def _labels(self) -> list[str]:
        """Short column names; they name the forget set when the selected sessions' differ."""
        rows = [self.rows[sid] for sid in self.selected]
        differ = len({row.get("forget") for row in rows}) > 1
        rows = [row if differ else {**row, "forget": None} for row in rows]
        # A sweep's trials are named by what they tried, as ``analyze`` names them.
        rows = [
            {**row, "sweep_point": group.points.get(sid)} if (group := self._trial_group.get(sid)) else row
            for sid, row in zip(self.selected, rows)
        ]
        if self.size.width < COMPACT_BELOW:  # the table must fit beside the plot: no start times when not needed
            short = [session_label(row, stamp=False) for row in rows]
            if len(set(short)) == len(short):
                return short
        return unique_labels([session_label(row) for row in rows])

    def _compare(self) -> None:
        """Show the comparison of the selected sessions, reading what is missing in a thread."""
        self._compare_generation += 1
        missing = [sid for sid in self.selected if sid not in self._summaries or sid not in self._curves]
        if not missing:
            self._show_comparison()
            return
        generation, sessions = self._compare_generation, dict(self.sessions)

        def work() -> None:
            summaries, curves = read_comparison(sessions, missing)
            self.post_message(CompareRead(generation, summaries, curves))

        host(self).run_in_thread(
            work,
            group=f"sessions-compare-{id(self)}",
            description="reading sessions to compare",
            on_error=lambda text: self.notify(text, severity="error"),
        )

    def on_compare_read(self, message: CompareRead) -> None:
        message.stop()
        self._summaries.update(message.summaries)
        self._curves.update(message.curves)
        if message.generation == self._compare_generation:
            self._show_comparison()

    def _show_comparison(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        shown = [sid for sid in self.selected if sid in self._summaries]
        self.query_one("#compare-hint", Static).display = not shown
        table.display = bool(shown)
        if shown:
            labels = self._labels()
            summaries = [self._summaries[sid] for sid in shown]
            headers, rows = compare_table(summaries, labels, arrow="→")
            for header in headers:
                table.add_column(header)
            rows_of = [self.rows[sid] for sid in shown]
            table.add_row("run", "forget set", *(data_label(r.get("forget")) for r in rows_of))
            table.add_row("run", "model", *(str(r.get("model") or "-").rstrip("/").rsplit("/", 1)[-1] for r in rows_of))
            table.add_row("after", "forget quality", *(fmt(s.get("forget_quality")) for s in summaries))
            table.add_row("after", "model utility", *(fmt(s.get("model_utility")) for s in summaries))
            for row in rows:
                table.add_row(*row)
        notes = [
            f"{label}: {note}"
            for label, sid in zip(self._labels(), self.selected)
            if sid in self._curves and (note := self._curves[sid].note())
        ]
        self.query_one("#compare-area").border_subtitle = "; ".join(notes)
        self._plot()

    def _plot(self) -> None:
        plot = self.query_one("#compare-plot", PlotextPlot)
        series = str(self.query_one("#compare-series", Select).value)
        curves = {
            label: self._curves[sid].series.get(series, [])
            for label, sid in zip(self._labels(), self.selected)
            if sid in self._curves
        }
        arrow = "lower is better" if series_goal(series) == "min" else "higher is better"
        legend = plot_curves(
            plot.plt, curves, title=f"{series} ({arrow})" if curves else "select sessions to plot them"
        )
        plot.refresh()
        # The legend below the plot, never over its data: each session's marker in its colour.
        text = Text()
        for i, style in enumerate(legend):
            text.append("   " if i else "")
            text.append(style.marker, RICH_COLOURS.get(style.colour, ""))
            text.append(f" {style.label}")
        self.query_one("#compare-legend", Static).update(text)

    # ---- deleting ----
    def action_delete_session(self) -> None:
        sid = self._highlighted_id()
        if sid is None:
            return
        if is_group_key(sid):
            self.notify(f"a sweep is deleted as a folder: {self.groups[sid].path}", severity="warning")
            return
        row = self.rows[sid]
        if row.get("running"):  # as `sessions delete` refuses it; the row was read a moment ago
            if row.get("pid") == os.getpid():
                self.notify("that session is this app's run; stop it first (ctrl+x)", severity="warning")
            else:
                self.notify(
                    f"session {sid} is still running (pid {row.get('pid')}); stop that run first", severity="warning"
                )
            return
        session = self.sessions[sid]
        root = session.path.parent if self._group_of(sid) else self.root  # a trial lives in its sweep's folder

        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def work() -> None:
                delete_session(session, root)  # checks again that its run is not going
                self.post_message(SessionDeleted(sid))

            def failed(text: str) -> None:
                self.notify(f"could not delete {sid}: {text}", severity="error")

            host(self).run_in_thread(
                work,
                group=f"sessions-delete-{sid}",
                description=f"deleting {sid}",
                on_error=failed,
            )

        self.app.push_screen(
            ConfirmDialog(
                f"Delete session {sid} ({row.get('algorithm')}, {row.get('status')})? Its folder is removed.", "Delete"
            ),
            answered,
        )

    def on_session_deleted(self, message: SessionDeleted) -> None:
        message.stop()
        if message.session_id in self.selected:
            self.selected.remove(message.session_id)
            self._compare()
        self.notify(f"deleted session {message.session_id}")
        self._wake.set()
