"""Sweeps in the sessions folder, read for the sessions screen off the UI thread (no Textual).

A sweep (``tui-unlearn sweep``) is a folder of trial sessions with a ``sweep.json``
(``sweeps.store``). The screen shows each as one group: a header row (method, trial count,
the size of its Pareto front) with its trials under it, the front's trials marked. The
front and the best trial come from ``sweeps.report.SweepReport`` (shared with ``sweep`` and
``analyze``), computed again only when a trial's row changed.

Trial rows are keyed ``<sweep folder name>/<session id>`` ("/" is never in a session id,
so they cannot collide with the folder's own sessions). When the sessions folder is itself
a sweep folder, its trials are its top-level sessions: they keep their ids and are shown
in the group only, not listed twice.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.errors import first_line
from tui_unlearn.sessions import Session
from tui_unlearn.tui.session_reader import SessionScanner, _stamp

SWEEP_KEY = "sweep:"  # the header row's key: this, then the folder's name
RELIST_EVERY_S = 5.0  # a sweep.json written after its folder appeared is found within this


def group_key(folder: Path) -> str:
    return SWEEP_KEY + folder.name


def is_group_key(key: str | None) -> bool:
    return isinstance(key, str) and key.startswith(SWEEP_KEY)


@dataclass
class FrontTrial:
    """A trial on the Pareto front: its row key, swept values and objectives."""

    key: str
    session_id: str
    point: dict[str, Any]
    objectives: dict[str, float | None]
    best: bool = False


@dataclass
class SweepGroup:
    """One sweep as the screen shows it. ``trial_keys``: its trials' row keys, newest first;
    ``objectives``: (name, goal) pairs of the front; ``problem``: why it cannot be read."""

    key: str
    name: str
    path: Path
    method: str | None = None
    mode: str | None = None  # grid | optuna
    created: str | None = None
    space: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    trial_keys: list[str] = field(default_factory=list)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)  # row key -> the trial's swept values
    complete: int = 0
    objectives: list[tuple[str, str]] = field(default_factory=list)
    front: list[FrontTrial] = field(default_factory=list)
    problem: str | None = None

    @property
    def front_keys(self) -> list[str]:
        return [t.key for t in self.front]

    @property
    def best_key(self) -> str | None:
        return next((t.key for t in self.front if t.best), None)


def _dict_or_empty(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_group(folder: Path, key_of: dict[str, str]) -> SweepGroup:
    """The group of the sweep in ``folder``; ``key_of`` maps its sessions' ids to row keys."""
    from tui_unlearn.sweeps.report import SweepReport

    group = SweepGroup(group_key(folder), folder.name, folder)
    try:
        meta = json.loads((folder / "sweep.json").read_text(encoding="utf-8"))
        ident = meta.get("identity") if isinstance(meta, dict) else None
        if not isinstance(ident, dict):
            raise ValueError("sweep.json has no identity")
        base = _dict_or_empty(ident.get("base"))
        floor = base.get("utility_floor")
        floor = floor if isinstance(floor, (int, float)) and not isinstance(floor, bool) else 0.95
        report = SweepReport.of(folder, utility_floor=float(floor))
    except Exception as error:  # a damaged sweep.json or trial: the group says why, the rest still shows
        group.problem = f"sweep.json cannot be read: {first_line(error)}"
        group.trial_keys = list(key_of.values())
        return group
    group.method = ident.get("algorithm") if isinstance(ident.get("algorithm"), str) else None
    group.mode = ident.get("mode") if isinstance(ident.get("mode"), str) else None
    group.created = meta.get("created") if isinstance(meta.get("created"), str) else None
    group.space = _dict_or_empty(ident.get("space"))
    group.base = base
    points = {t.session.id: dict(t.point) for t in report.trials}
    points.update(_earlier_attempts(folder, key_of, points, report.names, group.method))
    # Under the group: its trials and earlier attempts; in a folder of its own, any other session there too.
    group.trial_keys = [key for sid, key in key_of.items() if sid in points or "/" in key]
    group.points = {key_of[sid]: point for sid, point in points.items() if sid in key_of}
    group.complete = sum(1 for t in report.trials if t.complete)
    group.objectives = [(n, g) for n, g in report.objectives]
    group.front = [
        FrontTrial(
            key_of.get(t.session.id, t.session.id), t.session.id, dict(t.point), dict(t.objectives), t is report.best
        )
        for t in report.front
    ]
    return group


def _earlier_attempts(
    folder: Path, key_of: dict[str, str], trials: dict[str, Any], names: list[str], method: str | None
) -> dict[str, dict[str, Any]]:
    """Swept values of the sweep's sessions the report leaves out: attempts that did not
    finish and were run again (an interrupted trial). Their rows stay under the group with
    what they tried, whether the sweep has a folder of its own or is the sessions folder."""
    from tui_unlearn.sweeps.store import point_of

    out = {}
    for sid in key_of:
        if sid in trials:
            continue
        config, problem = Session(folder / sid).read_config()
        if problem is None and config.get("algorithm") == method:
            out[sid] = point_of(config, names)
    return out


def _fingerprint(rows: dict[str, dict[str, Any]]) -> tuple:
    """What the front depends on: which trials there are and how each ended (a running
    trial's steps move every second; the report is not read again for that)."""
    return tuple(
        (key, str(row.get("status")), str(row.get("forget_quality")), str(row.get("model_utility")))
        for key, row in rows.items()
    )


class SweepScanner:
    """Finds the sweep folders of a sessions folder and reads their trials and fronts,
    again only when something changed (like ``SessionScanner``, which reads each folder)."""

    def __init__(self, root: Path, *, clock=time.monotonic) -> None:
        self.root = root
        self._clock = clock
        self._folders: list[Path] = []
        self._listed: tuple[tuple[int, int] | None, float] | None = None
        self._scanners: dict[Path, SessionScanner] = {}
        self._groups: dict[Path, tuple[tuple, SweepGroup]] = {}

    def _sweep_folders(self) -> list[Path]:
        from tui_unlearn.sweeps.store import is_sweep_dir, list_sweeps

        stamp, now = _stamp(self.root), self._clock()
        if self._listed is None or self._listed[0] != stamp or now - self._listed[1] >= RELIST_EVERY_S:
            try:
                self._folders = ([self.root] if is_sweep_dir(self.root) else []) + list_sweeps(self.root)
            except OSError:
                self._folders = []
            self._listed = (stamp, now)
        return self._folders

    def scan(
        self, top_rows: dict[str, dict[str, Any]], top_sessions: dict[str, Session]
    ) -> tuple[list[SweepGroup], dict[str, dict[str, Any]], dict[str, Session]]:
        """(groups, every trial's row by key, every trial's session by key). ``top_rows``/
        ``top_sessions``: the sessions folder's own (when it is itself a sweep folder, its
        sessions are the trials)."""
        groups: list[SweepGroup] = []
        rows: dict[str, dict[str, Any]] = {}
        sessions: dict[str, Session] = {}
        folders = self._sweep_folders()
        for folder in folders:
            if folder == self.root:
                trial_rows, trial_sessions = top_rows, top_sessions
                key_of = {sid: sid for sid in trial_rows}
            else:
                scanner = self._scanners.setdefault(folder, SessionScanner(folder))
                found, found_sessions, _ = scanner.scan()
                key_of = {sid: f"{folder.name}/{sid}" for sid in found}
                trial_rows = {key_of[sid]: row for sid, row in found.items()}
                trial_sessions = {key_of[sid]: s for sid, s in found_sessions.items()}
            mark = (_fingerprint(trial_rows), _stamp(folder / "sweep.json"))
            cached = self._groups.get(folder)
            if cached is None or cached[0] != mark:
                cached = (mark, read_group(folder, key_of))
                self._groups[folder] = cached
            group = cached[1]
            groups.append(group)
            for key in group.trial_keys:
                if key in trial_rows:
                    rows[key] = trial_rows[key]
                    sessions[key] = trial_sessions[key]
        for gone in set(self._groups) - set(folders):
            self._groups.pop(gone, None)
            self._scanners.pop(gone, None)
        return groups, rows, sessions
