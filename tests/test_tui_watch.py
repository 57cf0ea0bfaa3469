"""Watching a run another process writes: the tail of events.jsonl, the watch screen, and
the sessions screen's live list (Pilot; a writer thread stands in for the other process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from textual.widgets import DataTable
from tui_fakes import T0, FakeEngine, SessionWriter, make_sessions, settle, wait_until
from tui_shown import shown

from tui_unlearn import events as ev
from tui_unlearn.sessions import Session, atomic_write_text
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.follow import EventTail, WatchState, follow
from tui_unlearn.tui.screens.live import WatchScreen
from tui_unlearn.tui.screens.sessions import SessionsScreen
from tui_unlearn.tui.widgets.series import SeriesSpark

pytestmark = pytest.mark.anyio
SIZE = (100, 32)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def writer_process():
    """A real process standing for the writer: alive until the test kills it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


# ---- the tail ----


def test_the_tail_reads_complete_lines_only_and_counts_damaged_ones(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("")
    tail = EventTail(path)
    step = json.dumps({"time": T0, **ev.StepLosses(1, 10, {"loss": 1.5}, 1e-3, 0.5).to_dict()})
    with open(path, "a") as fh:
        fh.write(step[:20])  # the writer is in the middle of a line
    assert tail.read().events == []
    with open(path, "a") as fh:
        fh.write(step[20:] + "\n")
        fh.write("{not json\n")
        fh.write(json.dumps({"event": "step", "step": "x"}) + "\n")  # wrong type
        fh.write(json.dumps({"event": "started", "session_id": "s"}) + "\n")  # missing fields
        fh.write(json.dumps({"event": "some_future_kind", "x": 1}) + "\n")  # unknown: not damage
    read = tail.read()
    assert [(type(e).__name__, stamp) for e, stamp in read.events] == [("StepLosses", T0)]
    assert read.events[0][0].losses == {"loss": 1.5}
    assert tail.skipped == 3
    assert tail.read().events == []  # nothing new: nothing read again


def test_a_rewritten_history_is_read_again_from_the_start(tmp_path):
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(ev.StepLosses(s, 10, {"loss": 1.0}, 1e-3, s).to_dict()) + "\n" for s in (1, 2, 3)]
    path.write_text("".join(lines))
    tail = EventTail(path)
    assert len(tail.read().events) == 3
    atomic_write_text(path, lines[0])  # a resumed run keeps the steps up to its checkpoint
    read = tail.read()
    assert read.rewound and [e.step for e, _ in read.events] == [1]


def test_a_writer_that_cannot_be_checked_is_called_quiet_not_gone(tmp_path):
    writer = SessionWriter(tmp_path, pid=12345, host="another-host")
    writer.start()
    now = [0.0]
    states: list[WatchState] = []

    def sleep(seconds):
        now[0] += 30.0

    def stop():
        return any(s.state == "quiet" for s in states)

    follow(writer.session, lambda e: None, states.append, stop, clock=lambda: now[0], sleep=sleep, quiet_note=120)
    assert [s.state for s in states][:2] == ["waiting", "following"]
    quiet = states[-1]
    assert quiet.state == "quiet" and "pid 12345 on another-host" in quiet.text and "cannot be checked" in quiet.text


# ---- the watch screen ----


async def test_a_run_written_by_another_process_is_followed_live(tmp_path):
    writer = SessionWriter(tmp_path)
    writer.start()
    app = create_app(sessions_dir=tmp_path, watch=writer.session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, WatchScreen)
        pane = screen.run_pane
        await wait_until(pilot, lambda: pane.progress.phase == "preparing", what="the before evaluation")
        assert pane.status == "watching" and pane.session_id == writer.session.id
        assert "batch 32 = 8×4×1" in str(pane.query_one("#run-scale").render())
        await wait_until(pilot, lambda: screen.probe_pane.answer_step == 0, what="the first probe answers")

        thread = threading.Thread(target=writer.steps, args=(15, 0.01))
        thread.start()
        await wait_until(pilot, lambda: pane.step == 15, timeout=30, what="step 15 to be shown")
        thread.join()
        loss = next(s for s in pane.query(SeriesSpark).results(SeriesSpark) if s.series == "loss")
        assert [p[0] for p in loss.points] == list(range(1, 16))  # every step, in order
        accuracy = next(s for s in pane.query(SeriesSpark).results(SeriesSpark) if s.series == "forget accuracy")
        assert [p[0] for p in accuracy.points] == [0, 10]
        assert screen.probe_pane.answer_step == 10
        assert pane.progress.phase == "training" and "step 15/40" in str(pane.query_one("#run-phase").render())

        writer.steps(40)
        writer.finish()
        await wait_until(pilot, lambda: pane.status == "finished", what="the end of the run")
        assert pane.query_one("#run-results").display
        assert "forget quality 0.012" in str(pane.query_one("#run-results").render())
        # The follower's verdict comes right after the end event, as a message of its own.
        await wait_until(
            pilot,
            lambda: "the run ended: finished" in str(screen.query_one("#watch-title").render()),
            what="the watch title to say the run ended",
        )


async def test_a_killed_writer_is_noticed_and_ctrl_x_only_says_how_to_stop(tmp_path, writer_process):
    writer = SessionWriter(tmp_path, pid=writer_process.pid, host=socket.gethostname())
    writer.start()
    writer.steps(5)
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine(), watch=writer.session)
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        pane = app.screen.run_pane
        await wait_until(pilot, lambda: pane.step == 5, what="step 5")
        await pilot.press("ctrl+x")
        await pilot.pause()
        told = [n.message for n in shown(seen)]
        assert any(f"kill -INT {writer_process.pid}" in m for m in told), told
        assert writer_process.poll() is None  # nobody's process was touched
        assert pane.status == "watching"

        writer_process.kill()
        writer_process.wait()
        await wait_until(pilot, lambda: pane.status == "interrupted", timeout=15, what="the dead writer to be noticed")
        title = str(app.screen.query_one("#watch-title").render())
        assert f"pid {writer_process.pid}" in title and "stopped without finishing" in title
        assert "interrupted at step 5/40" in str(pane.query_one("#run-phase").render())
        assert "ETA" not in str(pane.query_one("#run-phase").render())


# ---- the sessions screen ----


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
async def test_the_sessions_screen_follows_sessions_as_they_start_and_end(tmp_path):
    make_sessions(tmp_path)
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        table = screen.query_one("#sessions-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 3, what="the first scan")

        writer = SessionWriter(tmp_path)  # newest: the first row; no pid, so taken at its word
        writer.start()
        writer.steps(12)
        writer.session.update_summary(steps=12, total_steps=40)
        await wait_until(pilot, lambda: table.row_count == 4, what="the new session to be listed")
        sid = writer.session.id
        assert str(table.get_cell(sid, "status")) == "● running"
        assert table.get_cell(sid, "steps") == "12/40"
        assert "(1 running)" in str(screen.query_one("#sessions-title").render())

        writer.steps(40)
        writer.finish()
        await wait_until(pilot, lambda: str(table.get_cell(sid, "status")) == "finished", what="the end to show")

        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, WatchScreen), what="the watch screen")
        await wait_until(pilot, lambda: app.screen.run_pane.status == "finished", what="the replay")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the sessions")


async def test_the_sessions_screen_reads_no_file_on_the_ui_thread(tmp_path, monkeypatch):
    make_sessions(tmp_path)
    on_ui_thread = []
    real_summary, real_events = Session.summary, Session.read_events

    def spy(real):
        def wrapped(self, *args, **kwargs):
            if threading.current_thread() is threading.main_thread():
                on_ui_thread.append(real.__name__)
            return real(self, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(Session, "summary", spy(real_summary))
    monkeypatch.setattr(Session, "read_events", spy(real_events))
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the first scan")
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: screen.query_one("#compare-table").row_count > 0, what="the comparison")
        await pilot.press("p")
        await pilot.pause()
    assert on_ui_thread == []


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_enter_on_this_apps_own_run_goes_to_its_run_tab(tmp_path):
    engine = FakeEngine(steps=50, pause_at=4)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to pause")
        await pilot.press("ctrl+o")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded and screen.rows, what="the scan")
        assert screen.rows[engine.session_id]["running"]
        assert screen.rows[engine.session_id]["pid"] == os.getpid()
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is app.workbench
        assert app.workbench.query_one("#tabs").active == "tab-run"
        engine.release.set()
        await settle(pilot, include_run=True)


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_an_interrupted_session_resumes_in_the_run_tab(tmp_path):
    engine = FakeEngine(steps=30, pause_at=8, eval_every=10)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, engine.paused.is_set, what="the run to pause")
        await pilot.press("ctrl+x")
        await settle(pilot, include_run=True)
        assert app.workbench.run_pane.status == "interrupted"

        engine.pause_at = None
        await pilot.press("ctrl+o")
        screen = app.screen
        await wait_until(
            pilot,
            lambda: screen.rows.get(engine.session_id, {}).get("status") == "interrupted",
            what="the interrupted session",
        )
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        pane = app.workbench.run_pane
        assert app.screen is app.workbench and app.workbench.query_one("#tabs").active == "tab-run"
        assert pane.status == "finished" and pane.step == 30
        assert engine.allow_remote_code is False  # the app was not started with --trust-remote-code
        assert any(line.startswith("resuming session") for line in pane.log_lines)
        loss = next(s for s in pane.query(SeriesSpark).results(SeriesSpark) if s.series == "loss")
        assert [p[0] for p in loss.points] == list(range(1, 31))  # the history, then the new steps
        assert Session(tmp_path / engine.session_id).summary()["status"] == "finished"


async def test_a_session_that_cannot_resume_is_refused_with_the_engines_reason(tmp_path):
    make_sessions(tmp_path)  # the newest (first row) is interrupted; the second finished
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        await wait_until(pilot, lambda: screen.loaded, what="the scan")
        await pilot.press("down", "ctrl+r")
        await settle(pilot, include_run=True)
        pane = app.workbench.run_pane
        assert pane.status == "not started"
        assert any("already ended (finished)" in line and line.startswith("could not start") for line in pane.log_lines)
        assert any(n.title == "Cannot resume" for n in shown(seen))
        assert pane.log_lines == [pane.log_lines[-1]]  # refused before any of its history was shown
