import json
import os
import subprocess
import sys

import pytest

from tui_unlearn.errors import ConfigError
from tui_unlearn.paths import is_safe_name, sessions_dir
from tui_unlearn.sessions import Session, delete_session, list_sessions, open_session


def test_create_write_read(tmp_path):
    s = Session.create(tmp_path, "grad_diff", {"algorithm": "grad_diff", "model": "m"})
    assert s.summary()["status"] == "running"
    s.append_event({"event": "step", "step": 1})
    s.update_summary(status="finished", steps=1)
    assert [e["step"] for e in s.events()] == [1]
    assert s.summary()["status"] == "finished"
    assert s.config()["model"] == "m"
    assert list_sessions(tmp_path)[0].id == s.id
    assert not list(tmp_path.glob(f"{s.id}/.*.tmp"))  # atomic writes leave no temp files


def test_killed_process_leaves_interrupted_session(tmp_path):
    code = (
        "import os, sys; from pathlib import Path; from tui_unlearn.sessions import Session;"
        "s = Session.create(Path(sys.argv[1]), 'x', {});"
        "s.append_event({'event': 'step', 'step': 1});"
        "open(s.path / 'events.jsonl', 'a').write('{\"event\": \"st');"  # half-written line
        "os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    (session,) = list_sessions(tmp_path)
    assert session.summary()["status"] == "interrupted"
    assert [e["event"] for e in session.events()] == ["step"]


def test_open_by_prefix_and_refuse_escapes(tmp_path):
    s = Session.create(tmp_path, "npo", {})
    assert open_session(tmp_path, s.id[:17]).id == s.id
    for bad in ("../etc", "/etc/passwd", "a/b", ".hidden", ".."):
        with pytest.raises(ConfigError):
            open_session(tmp_path, bad)
    with pytest.raises(ConfigError, match="no session"):
        open_session(tmp_path, "20990101")


def test_delete_only_inside_root(tmp_path):
    root = tmp_path / "sessions"
    s = Session.create(root, "x", {})
    other = Session.create(tmp_path / "elsewhere", "y", {})
    with pytest.raises(ConfigError):
        delete_session(other, root)
    assert other.path.exists()
    s.update_summary(status="finished")  # a running session (this process) is refused
    delete_session(s, root)
    assert not s.path.exists()


def test_safe_names():
    assert is_safe_name("20261128-101010-npo-ab12")
    for bad in ("", "..", "../x", "a/b", ".x", "x\\y", "a" * 200):
        assert not is_safe_name(bad)


def test_sessions_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_UNLEARN_SESSIONS_DIR", str(tmp_path / "env"))
    assert sessions_dir() == tmp_path / "env"
    assert sessions_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("TUI_UNLEARN_SESSIONS_DIR")
    assert "tui-unlearn" in str(sessions_dir())


# ---- statuses ----


def test_status_is_a_str_enum_equal_to_the_written_strings(tmp_path):
    from tui_unlearn.sessions import Status

    assert Status.FINISHED == "finished" and "interrupted" == Status.INTERRUPTED
    assert {s.value for s in Status} == {"running", "finished", "failed", "interrupted", "diverged", "unreadable"}
    s = Session.create(tmp_path, "x", {})
    s.update_summary(status="diverged")
    assert s.summary()["status"] is Status.DIVERGED
    assert json.loads((s.path / "summary.json").read_text())["status"] == "diverged"


# ---- one bad session does not take the rest down ----


def _finished(root, label="x"):
    s = Session.create(root, label, {"algorithm": label, "model": "m"})
    s.update_summary(status="finished", steps=2, metrics={"before": {"forget": {"accuracy": 1.0}}})
    return s


@pytest.mark.parametrize(
    "write, why",
    [
        (lambda p: p.write_text('"a string"'), "summary.json holds text, not an object"),
        (lambda p: p.write_text("[1, 2]"), "summary.json holds a list, not an object"),
        (lambda p: p.write_text("null"), "summary.json holds null, not an object"),
        (lambda p: p.write_text('{"status": "finished", "metrics": 5}'), "'metrics' is a number, not an object"),
        (lambda p: p.write_text('{"metrics": {"after": [1]}}'), "metrics.after is a list, not an object"),
        (
            lambda p: p.write_text('{"metrics": {"after": {"forget": "x"}}}'),
            "metrics.after.forget is text, not an object",
        ),
        (lambda p: p.write_text('{"field_metrics": {"after": 3}}'), "field_metrics.after is a number"),
        (lambda p: p.write_text('{"steps": "ten"}'), "'steps' is text, not a whole number"),
        (lambda p: p.write_bytes(b'{"status": "\xff"}'), "summary.json is not UTF-8 text"),
        (lambda p: p.write_text('{"status": '), "summary.json is not valid JSON"),
        (lambda p: (p.unlink(), p.mkdir()), "summary.json is a folder"),
    ],
)
def test_an_unusable_summary_makes_the_session_unreadable_not_a_crash(tmp_path, write, why):
    from tui_unlearn.analysis.tables import session_report, session_row, sessions_table

    good = _finished(tmp_path, "good")
    bad = _finished(tmp_path, "bad")
    write(bad.path / "summary.json")
    summary = bad.summary()
    assert summary["status"] == "unreadable" and why in summary["problem"]
    assert bad.problem == summary["problem"] and good.problem is None
    rows = [session_row(s) for s in list_sessions(tmp_path)]
    assert {r["session_id"]: r["status"] for r in rows} == {good.id: "finished", bad.id: "unreadable"}
    table = sessions_table(rows)
    assert f"unreadable: {summary['problem']}" in table and good.id in table
    assert why in session_report(bad)


def test_bad_event_lines_are_skipped_and_counted(tmp_path):
    from tui_unlearn.analysis.curves import session_curves

    s = _finished(tmp_path)
    good = {"event": "step", "step": 1, "total_steps": 2, "losses": {"loss": 1.5}, "lr": 1e-3, "elapsed": 0.1}
    lines = [
        json.dumps(good).encode(),
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b"42",
        json.dumps({**good, "step": "x"}).encode(),
        json.dumps({**good, "losses": [1]}).encode(),
        json.dumps({**good, "losses": {"loss": "high"}}).encode(),
        json.dumps({"event": "evaluation", "step": 2, "phase": "after", "metrics": 5}).encode(),
        json.dumps({"event": "evaluation", "step": 2, "phase": "after", "metrics": {"forget": [0.1]}}).encode(),
        json.dumps(
            {"event": "evaluation", "step": 2, "phase": "after", "metrics": {"forget": {"accuracy": 0.1}}}
        ).encode(),
        json.dumps({"event": 7}).encode(),
        json.dumps({"event": "future-kind", "anything": [1]}).encode(),  # unknown kinds are kept
        b'{"event": "st',  # a half-written last line
    ]
    (s.path / "events.jsonl").write_bytes(b"\n".join(lines))
    read = s.read_events()
    assert [e["event"] for e in read.rows] == ["step", "evaluation", "future-kind"]
    assert read.skipped == 10 and read.note("events.jsonl") == "events.jsonl: 10 unreadable lines skipped"
    curves = session_curves(s)
    assert curves.series == {"loss": [(1, 1.5)], "forget accuracy": [(2, 0.1)]}
    assert curves.skipped == 10 and "10 unreadable lines" in curves.note()


def test_events_file_that_is_a_folder_is_a_problem_not_a_crash(tmp_path):
    s = _finished(tmp_path)
    (s.path / "events.jsonl").unlink()
    (s.path / "events.jsonl").mkdir()
    read = s.read_events()
    assert read.rows == [] and read.problem == "events.jsonl is a folder"
    assert list(s.events()) == []


def test_bad_example_lines_are_skipped_and_counted(tmp_path):
    s = _finished(tmp_path)
    s.write_examples([{"phase": "after", "split": "forget", "question": "q?", "answer": "a"}])
    with open(s.path / "examples.jsonl", "ab") as fh:
        fh.write(b'"text"\n{"phase": 3}\n\xff\n{"phase": "before", "split": "retain"}\n')
    read = s.read_examples()
    assert [r["phase"] for r in read.rows] == ["after", "before"] and read.skipped == 3
    assert s.examples() == read.rows


def test_config_that_is_not_an_object_reads_as_empty_with_a_reason(tmp_path):
    from tui_unlearn.analysis.tables import session_report

    s = _finished(tmp_path)
    (s.path / "config.json").write_text("[]")
    assert s.config() == {} and s.read_config()[1] == "config.json holds a list, not an object"
    assert "config: config.json holds a list" in session_report(s)


# ---- running sessions ----


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_running_session_whose_process_is_gone_reads_interrupted(tmp_path):
    from tui_unlearn.analysis.tables import session_row

    s = Session.create(tmp_path, "x", {})
    s.update_summary(pid=_dead_pid())
    assert s.summary()["status"] == "interrupted" and s.still_running() is None
    assert session_row(s)["status"] == "interrupted"
    assert json.loads((s.path / "summary.json").read_text())["status"] == "running"  # reading changes nothing


def test_a_reused_pid_does_not_keep_a_dead_run_running(tmp_path):
    # The run's pid now belongs to another live process (pid 1 here, started long before).
    s = Session.create(tmp_path, "x", {})
    assert isinstance(s.summary()["pid_started"], float)  # recorded at creation
    s.update_summary(pid=1)
    assert s.summary()["status"] == "interrupted" and s.still_running() is None
    delete_session(s, tmp_path)
    assert not s.path.exists()
    old = Session.create(tmp_path, "y", {})  # written by an older version: no start time
    old.update_summary(pid=1, pid_started=None)
    assert old.summary()["status"] == "running"  # a live pid is all it can go by


def test_a_session_whose_run_is_going_cannot_be_deleted(tmp_path):
    s = Session.create(tmp_path, "x", {})  # this process is its run
    why = s.still_running()
    assert why is not None and f"pid {os.getpid()}" in why and f"kill {os.getpid()}" in why
    with pytest.raises(ConfigError, match="still running"):
        delete_session(s, tmp_path)
    assert s.path.is_dir()
    s.update_summary(host="elsewhere")  # another machine's run: taken at its word
    with pytest.raises(ConfigError, match="cannot check"):
        delete_session(s, tmp_path)
    s.update_summary(status="interrupted")
    delete_session(s, tmp_path)
    assert not s.path.exists()


def test_record_progress_writes_steps_at_most_once_a_second_and_always_the_last(tmp_path, monkeypatch):
    from tui_unlearn import sessions as sessions_mod

    clock = [100.0]
    monkeypatch.setattr(sessions_mod.time, "monotonic", lambda: clock[0])
    s = Session.create(tmp_path, "x", {})
    writes = []
    real = Session.update_summary
    monkeypatch.setattr(Session, "update_summary", lambda self, **kw: (writes.append(kw), real(self, **kw))[1])
    s.record_progress(1, 10)  # the first is written
    clock[0] += 0.3
    s.record_progress(2, 10)  # too soon
    clock[0] += 0.8
    s.record_progress(3, 10)  # a second after the first
    clock[0] += 0.1
    s.record_progress(10, 10)  # the last step, however soon
    assert writes == [
        {"steps": 1, "total_steps": 10},
        {"steps": 3, "total_steps": 10},
        {"steps": 10, "total_steps": 10},
    ]
    summary = s.summary()
    assert (summary["steps"], summary["total_steps"], summary["status"]) == (10, 10, "running")


def test_update_summary_of_a_dead_run_keeps_what_was_written(tmp_path):
    s = Session.create(tmp_path, "x", {})
    s.update_summary(pid=_dead_pid())
    s.update_summary(steps=3)  # the raw summary is updated, not the "interrupted" reading of it
    assert json.loads((s.path / "summary.json").read_text())["status"] == "running"


# ---- the sessions folder must be writable before anything is loaded ----


def test_check_sessions_dir_writable(tmp_path):
    from tui_unlearn.sessions import check_sessions_dir_writable

    fresh = tmp_path / "a" / "b"
    check_sessions_dir_writable(fresh)
    assert fresh.is_dir() and list(fresh.iterdir()) == []  # created; the probe file is gone
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_sessions_dir_writable(a_file)
    with pytest.raises(ConfigError, match="a part of that path is a file"):
        check_sessions_dir_writable(a_file / "sub")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_sessions_dir_writable_read_only(tmp_path):
    from tui_unlearn.sessions import check_sessions_dir_writable

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot write in the sessions folder"):
            check_sessions_dir_writable(ro)
    finally:
        ro.chmod(0o700)


def test_list_sessions_of_a_file_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        list_sessions(tmp_path / "file")
    assert list_sessions(tmp_path / "missing") == []


# ---- saving the model all at once ----


def test_save_model_renames_a_complete_folder_into_place(tmp_path):
    s = Session.create(tmp_path, "x", {})
    (s.path / ".model.tmp-999-stray").mkdir()  # left by a save that was killed
    assert s.model_path is None

    def write(folder):
        assert folder.parent == s.path and folder.name.startswith(".model.tmp-")
        assert not (s.path / "model").exists()  # nothing at model/ while writing
        (folder / "model.safetensors").write_bytes(b"weights")

    path = s.save_model(write)
    assert path == s.path / "model" == s.model_path
    assert (path / "model.safetensors").read_bytes() == b"weights"
    assert [p.name for p in s.path.iterdir() if p.name.startswith(".model")] == []  # stray cleaned up
    s.save_model(lambda folder: (folder / "model.safetensors").write_bytes(b"newer"))
    assert (s.model_path / "model.safetensors").read_bytes() == b"newer"


def test_a_save_that_fails_half_way_leaves_no_model(tmp_path):
    s = Session.create(tmp_path, "x", {})

    def write(folder):
        (folder / "config.json").write_text("{}")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        s.save_model(write)
    assert s.model_path is None and not (s.path / "model").exists()
    assert [p.name for p in s.path.iterdir() if p.name.startswith(".model")] == []
    assert "model_saved" not in s.summary()
