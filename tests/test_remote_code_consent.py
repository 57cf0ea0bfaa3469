"""A model folder's own Python code runs only when the person at the keyboard asks for it:
a config file or a resumed session saying ``trust_remote_code: true`` is not consent."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.errors import ConfigError
from tui_unlearn.sessions import Session, Status

FORGET = [{"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."}]
RETAIN = [{"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."}]


@pytest.fixture()
def data(tmp_path):
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.json"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    retain.write_text(json.dumps(RETAIN))
    return forget, retain


def test_a_config_file_alone_does_not_turn_on_remote_code(tmp_path):
    config = tmp_path / "shared.json"
    config.write_text(json.dumps({"model": "some/model", "trust_remote_code": True}))
    refused = CliRunner().invoke(app, ["--print-config", "--config", str(config)])
    assert refused.exit_code == 2, refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "trust_remote_code" in line and "--trust-remote-code" in line and "some/model" in line

    asked = CliRunner().invoke(app, ["--print-config", "--config", str(config), "--trust-remote-code"])
    assert asked.exit_code == 0 and json.loads(asked.stdout)["trust_remote_code"] is True
    assert "set it to false in the file" in line


def test_eval_and_sweep_read_config_files_the_same_way(tmp_path):
    config = tmp_path / "shared.json"
    config.write_text(json.dumps({"model": "some/model", "trust_remote_code": True}))
    for command in (["eval"], ["sweep", "--grid", "lr=1e-4"]):
        result = CliRunner().invoke(app, [*command, "--config", str(config), "--sessions-dir", str(tmp_path / "s")])
        assert result.exit_code == 2 and "give --trust-remote-code too" in result.stderr, (command, result.stderr)


def _interrupted_session_that_trusts(tmp_path, micro_model_dir, data) -> Session:
    forget, retain = data
    sessions = tmp_path / "sessions"
    made = CliRunner().invoke(
        app,
        ["--batch", "--json", "--sessions-dir", str(sessions), "--model", str(micro_model_dir)]
        + ["--forget", str(forget), "--retain", str(retain), "--steps", "2", "--trust-remote-code"],
    )
    assert made.exit_code == 0, made.stderr
    session = Session(sessions / json.loads(made.stdout)["session_id"])
    session.update_summary(status=Status.INTERRUPTED, pid=None)
    return session


def test_resume_asks_for_the_flag_again(tmp_path, micro_model_dir, data):
    session = _interrupted_session_that_trusts(tmp_path, micro_model_dir, data)
    files = {p.name: p.read_bytes() for p in session.path.iterdir() if p.is_file()}
    root = str(session.path.parent)

    refused = CliRunner().invoke(app, ["--batch", "--sessions-dir", root, "--resume", session.id])
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: session {session.id}'s config turns on")
    assert {p.name: p.read_bytes() for p in session.path.iterdir() if p.is_file()} == files  # untouched

    resumed = CliRunner().invoke(
        app, ["--batch", "--sessions-dir", root, "--resume", session.id, "--trust-remote-code"]
    )
    assert resumed.exit_code == 0, resumed.stderr
    assert session.summary()["status"] == Status.FINISHED


def test_the_engine_refuses_a_resumed_config_without_consent(tmp_path, micro_model_dir, data):
    from tui_unlearn.engine import run

    session = _interrupted_session_that_trusts(tmp_path, micro_model_dir, data)
    with pytest.raises(ConfigError, match="trust_remote_code"):
        run(None, sessions_dir=session.path.parent, resume=session.id)
