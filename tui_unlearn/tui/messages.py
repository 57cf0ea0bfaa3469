"""Messages the app's workers post: small dataclasses, one per kind of news.

Engine events arrive on the training thread; ``pump.EventPump`` turns them into these
and posts them to the app, which hands them to the panes. Step losses travel in windows
(``StepWindow``) so that no point is dropped while the UI updates a few times a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from tui_unlearn import events as ev

# ---- from the run worker: one message per engine event, named like the event ----


@dataclass
class EngineMessage(Message):
    """An engine event, carried to the UI thread (``event`` is the ``events`` dataclass)."""

    event: ev.Event


@dataclass
class RunStarted(EngineMessage):
    """The engine created the session and is about to evaluate and train."""

    event: ev.RunStarted


@dataclass
class StepWindow(Message):
    """Every step since the previous window, oldest first (``ev.StepLosses`` in bulk)."""

    steps: list[ev.StepLosses]


@dataclass
class Evaluation(EngineMessage):
    event: ev.Evaluation


@dataclass
class Calibration(EngineMessage):
    """Where the run stands against its stop rule and keep-best metric."""

    event: ev.Calibration


@dataclass
class ProbeAnswers(EngineMessage):
    event: ev.ProbeAnswers


@dataclass
class Log(EngineMessage):
    event: ev.Log


@dataclass
class RunFinished(EngineMessage):
    """The engine finished the run (finished, interrupted or diverged)."""

    event: ev.RunFinished


@dataclass
class RunFailed(EngineMessage):
    """The engine marked the session failed; the worker's error follows."""

    event: ev.RunFailed


EVENT_MESSAGES: dict[type, type[EngineMessage]] = {
    ev.RunStarted: RunStarted,
    ev.Evaluation: Evaluation,
    ev.Calibration: Calibration,
    ev.ProbeAnswers: ProbeAnswers,
    ev.Log: Log,
    ev.RunFinished: RunFinished,
    ev.RunFailed: RunFailed,
}


def message_for(event: ev.Event) -> Message | None:
    """The message that carries a non-step engine event (None for unknown kinds)."""
    make = EVENT_MESSAGES.get(type(event))
    return make(event) if make else None


# ---- from the model and data workers ----


@dataclass
class ModelLoaded(Message):
    spec: str
    info: dict[str, Any]


@dataclass
class DataParsed(Message):
    """A source parsed into records: the first ``preview`` of them, and the counts."""

    role: str
    generation: int  # which parse request this answers (older answers are ignored)
    spec: str
    count: int
    detected_format: str
    report: str
    preview: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ForgetSplitChanged(Message):
    """The bundled forget split changed: the matching bundled retain split may follow."""

    split: str


# ---- from a watching thread and the sessions screen's reader ----


@dataclass
class WatchUpdate(Message):
    """Where a watched run stands (``follow.WatchState``)."""

    state: Any


@dataclass
class SessionsRead(Message):
    """The sessions folder as read by the sessions screen's reader thread.

    ``rows``: session id (a sweep's trial: "<sweep folder>/<id>") -> ``analysis.tables.session_row``
    plus "forget", "running"; newest first. ``error``: why the folder could not be read (rows then empty).
    """

    rows: dict[str, dict[str, Any]]
    sessions: dict[str, Any]
    error: str | None = None
    # ``sweep_reader.SweepGroup``s, newest first; their trials' rows are in ``rows`` too
    sweeps: list[Any] = field(default_factory=list)


@dataclass
class CompareRead(Message):
    """Summaries and curves of the sessions selected for comparison (read in a thread)."""

    generation: int
    summaries: dict[str, dict[str, Any]]
    curves: dict[str, Any]


@dataclass
class SessionDeleted(Message):
    session_id: str
