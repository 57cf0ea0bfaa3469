import json
import os
import subprocess
import sys

import pytest

from tui_unlearn.errors import ConfigError
from tui_unlearn.paths import child, is_safe_name, sessions_dir
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
    delete_session(s, root)
    assert not s.path.exists()


def test_safe_names():
    assert is_safe_name("20261128-101010-npo-ab12")
    for bad in ("", "..", "../x", "a/b", ".x", "x\\y", "a" * 200):
        assert not is_safe_name(bad)
    with pytest.raises(ValueError):
        child(__import__("pathlib").Path("/tmp"), "../x")


def test_sessions_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_UNLEARN_SESSIONS_DIR", str(tmp_path / "env"))
    assert sessions_dir() == tmp_path / "env"
    assert sessions_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("TUI_UNLEARN_SESSIONS_DIR")
    assert "tui-unlearn" in str(sessions_dir())
