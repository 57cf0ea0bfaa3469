"""The sessions screen and run pane against damaged and running sessions (Pilot, fake engine)."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest
from textual.widgets import DataTable
from tui_fakes import FakeEngine, make_sessions, metrics_at, settle, wait_until
from tui_shown import shown

from tui_unlearn.analysis.reporting import evaluation_line
from tui_unlearn.sessions import Session
from tui_unlearn.tui.app import create_app
from tui_unlearn.tui.screens.sessions import SessionsScreen

pytestmark = pytest.mark.anyio

SIZE = (100, 32)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_damaged_sessions_are_listed_and_cannot_be_compared(tmp_path):
    ids = make_sessions(tmp_path)  # oldest first
    (tmp_path / ids[0] / "summary.json").write_text('"just text"')
    (tmp_path / ids[2] / "summary.json").write_text('{"status": "finished", "metrics": {"after": [1]}}')
    with open(tmp_path / ids[1] / "events.jsonl", "ab") as fh:
        fh.write(b'{"event": "step", "step": "x", "losses": [1]}\n\xff\n')
    app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
    seen: list = []  # every message the app handles (run_test's public hook)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        await wait_until(pilot, lambda: screen.loaded, what="the sessions to be read")
        table = screen.query_one("#sessions-table", DataTable)
        assert table.row_count == 3
        assert [screen.rows[sid]["status"] for sid in reversed(ids)] == ["unreadable", "finished", "unreadable"]
        await pilot.press("space")  # the newest: unreadable
        await pilot.pause()
        assert screen.selected == []
        assert any("cannot compare" in n.message and "metrics.after is a list" in n.message for n in shown(seen))
        await pilot.press("down", "space")
        await pilot.pause()
        assert screen.selected == [ids[1]]
        await wait_until(
            pilot,
            lambda: (
                "events.jsonl: 2 unreadable lines skipped" in str(screen.query_one("#compare-area").border_subtitle)
            ),
            what="the comparison's note",
        )
        await pilot.press("p")  # plotting the next series reads the curves again
        await pilot.pause()
        assert app.is_running


async def test_a_session_whose_run_is_going_is_not_offered_for_deletion(tmp_path):
    make_sessions(tmp_path)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            running = Session.create(tmp_path, "npo", {"algorithm": "npo"})  # the newest: first row
            running.update_summary(pid=proc.pid, pid_started=round(psutil.Process(proc.pid).create_time(), 2))
            app = create_app(sessions_dir=tmp_path, engine=FakeEngine())
            seen: list = []  # every message the app handles (run_test's public hook)
            async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
                await settle(pilot)
                await pilot.press("ctrl+o")
                await wait_until(pilot, lambda: app.screen.loaded, what="the sessions to be read")
                await pilot.press("d")
                await pilot.pause()
                assert isinstance(app.screen, SessionsScreen)  # no confirmation asked
                assert any(f"still running (pid {proc.pid})" in n.message for n in shown(seen))
                assert running.path.is_dir()
        finally:
            proc.kill()


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
async def test_the_run_log_shows_every_split_of_an_evaluation(tmp_path):
    engine = FakeEngine(steps=10)
    app = create_app(sessions_dir=tmp_path, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot, include_run=True)
        lines = app.workbench.run_pane.log_lines
        after = evaluation_line(10, "after", metrics_at(10, 10))
        assert after in lines
        assert "holdout acc 0.02 f1 0.20 loss 3.10" in after and after.count(" loss ") == 3
