"""Following a session that another process writes: its events.jsonl as it grows.

``EventTail`` reads only what was appended since its last read (a ``stat`` when nothing
changed), keeps a half-written last line for the next read, and rebuilds each complete
line into an ``events`` dataclass, skipping and counting lines that cannot be used (the
checks ``session_files`` makes, then the dataclass's own fields). A file replaced under it
(a resumed run rewrites its history) is read again from the start.

``follow`` is the loop a watching thread runs: a few cheap polls a second, events handed
on as they come, and one ``WatchState`` when the writer ends, fails, or stops writing
without an end event (its process is gone: summary.json's pid tells, through
``Session.summary``). No Textual here: the TUI posts what this hands it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui_unlearn import events as ev
from tui_unlearn.printable import printable_data
from tui_unlearn.session_files import SUMMARY_FILE, event_problem, open_regular, read_json_object
from tui_unlearn.sessions import EVENTS_FILE, Session, Status

POLL_S = 0.25  # seconds between stats of events.jsonl: four cheap looks a second
CHECK_AFTER_S = 2.0  # this long without a new line, ask summary.json whether the writer lives
QUIET_NOTE_S = 120.0  # a writer that cannot be checked and has been silent this long is mentioned
READ_LIMIT = 4 << 20  # bytes read per poll, so a long history streams in instead of stalling


@dataclass
class TailRead:
    """What one read found: events with their "time" (epoch seconds, None if absent)."""

    events: list[tuple[ev.Event, float | None]] = field(default_factory=list)
    rewound: bool = False  # the file was replaced or shortened: what was shown is stale
    more: bool = False  # the read stopped at READ_LIMIT; read again at once


def event_of(row: object) -> ev.Event | None:
    """The event a parsed events.jsonl line holds, or None when it cannot be used.

    Kinds this version does not know are not errors (keys and kinds may be added): they
    are None as well; ``EventTail`` counts only damaged lines.
    """
    if event_problem(row) is not None:
        raise ValueError("bad event")
    assert isinstance(row, dict)
    if row.get("event") not in ev.EVENT_TYPES:
        return None
    if row.get("event") == "probes" and not all(isinstance(p, dict) for p in row.get("probes") or []):
        raise ValueError("probe rows must be objects")
    if row.get("event") == "started" and not isinstance(row.get("scale") or {}, dict):
        raise ValueError("scale must be an object")
    try:
        return ev.event_from_dict(printable_data(row))  # shown on screen: escape control characters from the file
    except TypeError as error:  # a required field is missing
        raise ValueError(str(error)) from None


class EventTail:
    """Incremental reader of one events.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.skipped = 0  # damaged lines so far (not JSON, wrong shape, missing fields)
        self._offset = 0
        self._partial = b""
        self._identity: tuple[int, int] | None = None

    def read(self) -> TailRead:
        out = TailRead()
        try:
            st = os.stat(self.path)
        except OSError:  # not there yet (or gone): nothing new
            return out
        identity = (st.st_dev, st.st_ino)
        if self._identity is not None and (identity != self._identity or st.st_size < self._offset):
            out.rewound = True
            self._offset, self._partial, self.skipped = 0, b"", 0
        self._identity = identity
        if st.st_size <= self._offset:
            return out
        try:
            with open_regular(self.path) as fh:  # a pipe put in its place must not block the watcher
                fh.seek(self._offset)
                data = fh.read(READ_LIMIT)
        except OSError:
            return out
        self._offset += len(data)
        out.more = self._offset < st.st_size
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # no newline yet: the writer is still writing it
        for raw in lines:
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
                event = event_of(row)
            except (UnicodeDecodeError, ValueError, RecursionError):
                self.skipped += 1
                continue
            if event is not None:
                stamp = row.get("time")
                out.events.append(
                    (event, float(stamp) if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None)
                )
        return out

    def close(self) -> None:
        """The writer is done: a last line it never finished is damage too."""
        if self._partial.strip():
            self.skipped += 1
        self._partial = b""


@dataclass
class WatchState:
    """Where a watched run stands.

    ``state``: "waiting" (no event yet), "following", "ended" (an end event came: ``status``
    is its status), "gone" (no end event and the writer's process is gone, or the summary
    says it ended), "quiet" (no new line for a long while from a writer this machine cannot
    check; still following). ``text``: one line for people.
    """

    state: str
    text: str
    status: str | None = None
    started_at: float | None = None  # epoch seconds of the run's first event
    skipped: int = 0
    summary: dict = field(default_factory=dict)  # summary.json, when the run ended without an end event
    pid: int | None = None  # the writer's process, as summary.json names it
    host: str | None = None


def writer_text(summary: dict) -> str:
    pid, host = summary.get("pid"), summary.get("host")
    if pid is None:
        return "its writer"
    return f"its writer (pid {pid}{f' on {host}' if host else ''})"


def follow(
    session: Session,
    on_event: Callable[[ev.Event], None],
    on_state: Callable[[WatchState], None],
    should_stop: Callable[[], bool],
    *,
    poll: float = POLL_S,
    check_after: float = CHECK_AFTER_S,
    quiet_note: float = QUIET_NOTE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchState:
    """Hand ``session``'s events to ``on_event`` as they are written, until the run ends,
    its writer is gone, or ``should_stop()``; returns the last state (also given to ``on_state``).

    ``on_state`` hears "waiting"/"following" when that changes, "quiet" once per silence,
    and the final state. A replaced events.jsonl (a resumed run rewrote it) is announced as
    a "following" state with ``text`` "history rewritten" before its events come again.
    """
    tail = EventTail(session.path / EVENTS_FILE)
    started_at: float | None = None
    writer = session.summary()

    def announce(state: WatchState) -> None:  # every state names the writer
        pid, host = writer.get("pid"), writer.get("host")
        state.pid = pid if isinstance(pid, int) else None
        state.host = host if isinstance(host, str) else None
        on_state(state)

    state = WatchState("waiting", "waiting for the run's first event")
    announce(state)
    last_growth = last_check = clock()
    quiet_said = False
    while not should_stop():
        read = tail.read()
        if read.rewound:
            started_at = None
            announce(WatchState("following", "history rewritten", skipped=tail.skipped))
        end: ev.Event | None = None
        for event, stamp in read.events:
            if started_at is None and stamp is not None:
                started_at = stamp
            if isinstance(event, ev.RunStarted) or state.state == "waiting":
                writer = session.summary()  # a resumed run has a new writer
                state = WatchState("following", "following the run", started_at=started_at)
                announce(state)
            on_event(event)
            if isinstance(event, (ev.RunFinished, ev.RunFailed)):
                end = event
        if end is not None:
            return _ended(end, tail, announce, started_at)
        now = clock()
        if read.events or read.rewound:
            last_growth, quiet_said = now, False
        if read.more:
            continue
        if now - last_growth >= check_after and now - last_check >= check_after:
            last_check = now
            gone = _writer_gone(session, tail, on_event, announce, started_at)
            if gone is not None:
                return gone
            if not quiet_said and now - last_growth >= quiet_note:
                quiet_said = True
                summary = session.summary()
                minutes = int((now - last_growth) // 60)
                announce(
                    WatchState(
                        "quiet",
                        f"no new events for {minutes} min; {writer_text(summary)} cannot be checked from here",
                        started_at=started_at,
                        skipped=tail.skipped,
                    )
                )
        sleep(poll)
    return state


def _ended(end: ev.Event, tail: EventTail, on_state, started_at: float | None) -> WatchState:
    if isinstance(end, ev.RunFailed):
        state = WatchState(
            "ended", f"the run failed: {end.error}", status=Status.FAILED, started_at=started_at, skipped=tail.skipped
        )
    else:
        assert isinstance(end, ev.RunFinished)
        state = WatchState(
            "ended", f"the run ended: {end.status}", status=end.status, started_at=started_at, skipped=tail.skipped
        )
    on_state(state)
    return state


def _writer_gone(session: Session, tail: EventTail, on_event, on_state, started_at) -> WatchState | None:
    """The final state when the writer is no longer writing, else None (keep following)."""
    written, problem = read_json_object(session.path / SUMMARY_FILE)
    summary = session.summary()  # "interrupted" when its pid is gone on this host
    status = summary.get("status")
    if status in (Status.RUNNING, Status.UNREADABLE) or problem is not None:
        return None
    # The writer may have appended its last lines between our read and this check.
    last = tail.read()
    for event, _ in last.events:
        on_event(event)
        if isinstance(event, (ev.RunFinished, ev.RunFailed)):
            return _ended(event, tail, on_state, started_at)
    tail.close()
    if written.get("status") == Status.RUNNING:
        text = f"{writer_text(written)} stopped without finishing (killed?); the session reads interrupted"
        state = WatchState(
            "gone", text, status=Status.INTERRUPTED, started_at=started_at, skipped=tail.skipped, summary=summary
        )
    else:
        state = WatchState(
            "gone",
            f"the session says {status}; no end event was written",
            status=str(status),
            started_at=started_at,
            skipped=tail.skipped,
            summary=summary,
        )
    on_state(state)
    return state
