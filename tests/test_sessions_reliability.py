"""Sessions that must not lie or crash (issue 19): a resumed run reads as running, the
sessions folder means the same folder to every command, session files that are pipes,
devices or folders are refused before they are opened, and a failure that cannot be
written down is still said in one line."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn import events as ev
from tui_unlearn.cli import app
from tui_unlearn.errors import ConfigError, ExitCode, RunFailedError
from tui_unlearn.paths import sessions_dir
from tui_unlearn.session_files import read_json_lines, read_json_object
from tui_unlearn.sessions import (
    Session,
    Status,
    _process_started,
    atomic_write_text,
    delete_session,
    json_safe,
    session_lock,
)


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _killed_run(root: Path) -> Session:
    """A session whose run was killed: running, with a dead writer's pid and start time."""
    session = Session.create(root, "npo", {"algorithm": "npo", "steps": 8})
    session.update_summary(pid=_dead_pid(), pid_started=1_000_000.0, host=socket.gethostname(), steps=3)
    return session


def _runs(func, seconds: float = 20.0):
    """``func()`` in a thread; fails instead of hanging when it blocks (a named pipe)."""
    out: list = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            out.append(func())
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked (opened a named pipe?)"
    if failure:
        raise failure[0]
    return out[0]


# ---- item 3: a resumed run is a running run ----


def test_a_resumed_run_reads_running_and_cannot_be_deleted_or_resumed_again(tmp_path):
    from tui_unlearn.engine.resume import open_for_resume, reclaim

    session = _killed_run(tmp_path)
    assert session.summary()["status"] == Status.INTERRUPTED
    reclaim(open_for_resume(tmp_path, session.id))  # what a resume does before its first step
    written = json.loads((session.path / "summary.json").read_text())
    assert written["pid"] == os.getpid() and written["pid_started"] == _process_started(os.getpid())
    assert session.summary()["status"] == Status.RUNNING  # was "interrupted": the old start time was kept
    with pytest.raises(ConfigError, match="still running"):
        delete_session(session, tmp_path)
    assert session.path.is_dir()
    with pytest.raises(ConfigError, match="still running"):
        open_for_resume(tmp_path, session.id)  # a second writer
    with pytest.raises(ConfigError, match="still running"):
        session.claim()
    result = CliRunner().invoke(app, ["sessions", "delete", "--yes", session.id, "--sessions-dir", str(tmp_path)])
    assert result.exit_code == ExitCode.USAGE and "still running" in result.stderr
    assert session.path.is_dir()


def test_a_delete_and_a_resume_deciding_at_once_do_not_both_go_ahead(tmp_path, monkeypatch):
    import tui_unlearn.sessions as sessions_module

    monkeypatch.setattr(sessions_module, "LOCK_WAIT_S", 0.2)
    session = _killed_run(tmp_path)
    with session_lock(session.path):  # another process is claiming it right now
        with pytest.raises(ConfigError, match="being resumed or deleted by another process"):
            delete_session(session, tmp_path)
        with pytest.raises(ConfigError, match="being resumed or deleted by another process"):
            session.claim()
    assert session.path.is_dir()
    delete_session(session, tmp_path)  # free again: an interrupted session can go
    assert not session.path.exists()
    with pytest.raises(ConfigError, match="is gone"):
        session.claim()  # deleted before the resume could claim it: one line, no traceback


def test_a_resume_removes_what_a_killed_writer_left_half_written(tmp_path):
    session = _killed_run(tmp_path)
    strays = [".summary.json.4242.tmp", ".events.jsonl.4242.tmp", ".checkpoint.tmp-4242-abcdef"]
    (session.path / strays[0]).write_text("{")
    (session.path / strays[1]).write_text("")
    (session.path / strays[2]).mkdir()
    (session.path / strays[2] / "state.json").write_text("{}")
    from tui_unlearn.engine.resume import reclaim

    reclaim(session)
    assert sorted(p.name for p in session.path.iterdir()) == ["config.json", "events.jsonl", "summary.json"]


def test_an_atomic_write_that_fails_leaves_no_temp_file(tmp_path):
    (tmp_path / "events.jsonl").mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "events.jsonl", "{}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


# ---- item 5: one sessions folder for every command ----


def test_tilde_is_expanded_alike_and_an_empty_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sessions_dir("~/x") == tmp_path / "home" / "x"
    assert sessions_dir(Path("~/x")) == tmp_path / "home" / "x"
    for empty in ("", "  "):
        with pytest.raises(ConfigError, match="--sessions-dir is empty"):
            sessions_dir(empty)


def test_a_run_given_a_quoted_tilde_writes_where_sessions_list_reads(tmp_path, monkeypatch):
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run
    from tui_unlearn.errors import DataError

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    # The data is missing: the run stops right after it has made its sessions folder.
    with pytest.raises(DataError):
        run(RunConfig(forget=str(tmp_path / "missing.jsonl")), sessions_dir="~/x")
    assert (tmp_path / "home" / "x").is_dir()
    assert not (tmp_path / "~").exists()  # was: ./~/x, a folder sessions list never looks in


# ---- special files ----


@pytest.mark.parametrize("name", ["summary.json", "config.json"])
def test_a_named_pipe_is_refused_without_being_opened(tmp_path, name):
    session = Session.create(tmp_path, "npo", {})
    (session.path / name).unlink()
    os.mkfifo(session.path / name)
    data, problem = _runs(lambda: read_json_object(session.path / name))
    assert data == {} and problem == f"{name} is a named pipe, not a file"


def test_pipes_devices_and_oversized_files_in_a_session_are_reasons_not_hangs(tmp_path, monkeypatch):
    import tui_unlearn.session_files as session_files

    session = Session.create(tmp_path, "npo", {})
    (session.path / "events.jsonl").unlink()
    os.mkfifo(session.path / "events.jsonl")
    (session.path / "summary.json").unlink()
    (session.path / "summary.json").symlink_to("/dev/null")  # /dev/zero, read, would fill the memory
    (session.path / "examples.jsonl").write_text('{"phase": "before"}\n' * 100)
    monkeypatch.setattr(session_files, "LINES_LIMIT", 1000)
    summary = _runs(session.summary)
    assert summary["status"] == Status.UNREADABLE and summary["problem"] == "summary.json is a device, not a file"
    assert _runs(session.read_events).problem == "events.jsonl is a named pipe, not a file"
    assert _runs(session.read_examples).problem == "examples.jsonl is larger than 1000 bytes"
    assert _runs(lambda: session.still_running()) is None
    delete_session(session, tmp_path)  # an unreadable session can be deleted, pipe and all
    assert not session.path.exists()


def test_the_watchers_tail_does_not_open_a_pipe(tmp_path):
    from tui_unlearn.tui.follow import EventTail

    os.mkfifo(tmp_path / "events.jsonl")
    assert _runs(lambda: EventTail(tmp_path / "events.jsonl").read()).events == []


# ---- fields of the wrong type ----


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"recipe": "x"}, "'recipe' is text, not an object"),
        ({"null_reasons": "x"}, "'null_reasons' is text, not an object"),
        ({"calibration": [1]}, "'calibration' is a list, not an object"),
        ({"recipe": {"headline": [["forget_quality"]]}}, "recipe.headline is a list, not a list of names"),
    ],
)
def test_summary_fields_of_the_wrong_type_make_the_session_unreadable(tmp_path, changes, why):
    session = Session.create(tmp_path, "npo", {})
    session.update_summary(status="finished", **changes)
    summary = session.summary()
    assert summary["status"] == Status.UNREADABLE and why in summary["problem"]
    result = CliRunner().invoke(app, ["sessions", "show", session.id, "--sessions-dir", str(tmp_path)])
    assert result.exit_code == 0 and "unreadable" in result.stdout, result.stderr  # was: AttributeError


def test_a_finished_event_whose_summary_is_damaged_is_skipped(tmp_path):
    from tui_unlearn.session_files import event_problem

    path = tmp_path / "events.jsonl"
    good = ev.RunFinished("finished", {"status": "finished", "recipe": {"headline": ["forget_quality"]}}).to_dict()
    bad = ev.RunFinished("finished", {"status": "finished", "recipe": "x"}).to_dict()
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    read = read_json_lines(path, event_problem)
    assert read.rows == [good] and read.skipped == 1


def test_sessions_json_output_is_strict_json(tmp_path):
    session = Session.create(tmp_path, "npo", {})
    session.update_summary(status="diverged", forget_quality=float("nan"), final_losses={"loss": float("inf")})

    def strict(text):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in --json output"))

    listed = CliRunner().invoke(app, ["sessions", "list", "--json", "--sessions-dir", str(tmp_path)])
    assert listed.exit_code == 0 and strict(listed.stdout)[0]["forget_quality"] is None  # was: NaN
    shown = CliRunner().invoke(app, ["sessions", "show", "--json", session.id, "--sessions-dir", str(tmp_path)])
    assert shown.exit_code == 0 and strict(shown.stdout)["summary"]["final_losses"] == {"loss": None}
    assert json_safe({"a": [1.0, float("-inf")], "b": "NaN"}) == {"a": [1.0, None], "b": "NaN"}


def test_resume_with_an_empty_id_is_a_usage_error_not_a_fresh_run(tmp_path):
    result = CliRunner().invoke(app, ["--batch", "--sessions-dir", str(tmp_path), "--resume", ""])
    assert result.exit_code == ExitCode.USAGE and "--resume needs a session id" in result.stderr
    assert not tmp_path.joinpath("x").exists() and list(tmp_path.iterdir()) == []  # nothing was started


# ---- the error path ----


@pytest.mark.parametrize("damage", ["error.txt is a folder", "the session folder is gone"])
def test_a_failure_that_cannot_be_written_down_is_still_one_line(tmp_path, damage):
    import shutil

    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine.context import RunContext, guarded

    heard: list = []
    ctx = RunContext(RunConfig(), heard.append, lambda: False, tmp_path)
    ctx.is_main = True
    ctx.session = Session.create(tmp_path, "npo", {})
    if damage == "error.txt is a folder":
        (ctx.session.path / "error.txt").mkdir()
    else:
        shutil.rmtree(ctx.session.path)

    def body():
        raise ValueError("boom")

    with pytest.raises(RunFailedError, match="run failed: ValueError: boom"):
        guarded(ctx, body)
    assert [type(e).__name__ for e in heard] == ["RunFailed"]
    if damage == "error.txt is a folder":
        assert ctx.session.summary()["status"] == Status.FAILED


# ---- watch ----


@pytest.mark.parametrize("damage", ["recipe", "null_reasons", "fifo", "events folder"])
@pytest.mark.slow
def test_watch_shows_a_damaged_session_instead_of_crashing(tmp_path, damage):
    import asyncio

    from tui_fakes import SessionWriter

    from tui_unlearn.tui.app import create_app

    writer = SessionWriter(tmp_path)
    writer.start()
    writer.steps(3)
    writer.finish()
    summary_path = writer.session.path / "summary.json"
    if damage == "fifo":
        summary_path.unlink()
        os.mkfifo(summary_path)
    elif damage == "events folder":
        (writer.session.path / "events.jsonl").unlink()
        (writer.session.path / "events.jsonl").mkdir()
    else:
        summary = json.loads(summary_path.read_text())
        summary[damage] = "x"
        summary_path.write_text(json.dumps(summary))
        events = writer.session.path / "events.jsonl"
        lines = events.read_text().splitlines()
        finished = json.loads(lines[-1])
        finished["summary"][damage] = "x"  # the end event carries the summary too
        events.write_text("\n".join([*lines[:-1], json.dumps(finished)]) + "\n")

    async def watch() -> None:
        app = create_app(sessions_dir=tmp_path, watch=writer.session)
        async with app.run_test(size=(100, 32)) as pilot:
            for _ in range(40):
                await pilot.pause(0.05)
            assert type(app.screen).__name__ == "WatchScreen"
        assert app.return_code in (None, 0)

    def run_watch() -> None:
        asyncio.run(watch())

    _runs(run_watch, seconds=60)
