"""Nothing read from a file reaches the terminal raw: control characters in a session's
files are shown as escapes by every face that prints them."""

from __future__ import annotations

import json

import pytest
from hostile import make_world
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.printable import printable, printable_data
from tui_unlearn.sessions import Session, list_sessions

TITLE = "\x1b]0;pwned\x07"  # an OSC sequence: sets the terminal's title
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def test_printable_escapes_controls_and_keeps_layout():
    assert printable(TITLE) == "\\x1b]0;pwned\\x07"
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("csi\x9b2J rtl\u202eexe.txt del\x7f") == "csi\\x9b2J rtl\\u202eexe.txt del\\x7f"
    assert printable("Zoë, 東京, ✓") == "Zoë, 東京, ✓"
    assert printable(printable(TITLE)) == printable(TITLE)  # escaping twice changes nothing
    data = printable_data({"k\x1b": [TITLE, 1, None, {"x": "\x00"}], "n": 0.5})
    assert data == {"k\\x1b": ["\\x1b]0;pwned\\x07", 1, None, {"x": "\\x00"}], "n": 0.5}


@pytest.fixture()
def hostile_session(tmp_path, micro_model_dir):
    world = make_world(tmp_path, micro_model_dir)
    (session,) = list_sessions(world.sessions)
    session.update_summary(algorithm=TITLE, error="bad\x1b[2Jthing", model="m\u202eodel")
    return world, session


def _clean(text: str) -> bool:
    return not any(ch in text for ch in RAW)


def test_sessions_list_and_show_escape_what_they_quote(hostile_session):
    world, session = hostile_session
    root = str(world.sessions)
    listed = CliRunner().invoke(app, ["sessions", "list", "--sessions-dir", root])
    assert listed.exit_code == 0 and _clean(listed.stdout) and "\\x1b]0;pwned\\x07" in listed.stdout
    shown = CliRunner().invoke(app, ["sessions", "show", session.id, "--sessions-dir", root])
    assert shown.exit_code == 0 and _clean(shown.stdout) and "\\x1b[2J" in shown.stdout
    as_json = CliRunner().invoke(app, ["sessions", "list", "--sessions-dir", root, "--json"])
    assert _clean(as_json.stdout) and json.loads(as_json.stdout)[0]["algorithm"] == TITLE  # data stays data
    analyzed = CliRunner().invoke(app, ["analyze", session.id, "--sessions-dir", root])
    assert analyzed.exit_code == 0 and _clean(analyzed.stdout + analyzed.stderr)


def test_an_error_message_quoting_a_file_is_escaped(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"algorithm": TITLE}))
    result = CliRunner().invoke(app, ["--print-config", "--config", str(config)])
    assert result.exit_code == 2 and _clean(result.stderr) and "\\x1b]0;pwned" in result.stderr


def test_the_tui_reads_rows_and_events_escaped(hostile_session):
    from tui_unlearn.tui.follow import EventTail
    from tui_unlearn.tui.session_reader import read_comparison, read_row

    _, session = hostile_session
    row = read_row(Session(session.path))
    assert row["algorithm"] == "\\x1b]0;pwned\\x07"
    summaries, _ = read_comparison({session.id: session}, [session.id])
    assert summaries[session.id]["error"] == "bad\\x1b[2Jthing"
    with open(session.path / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"event": "log", "message": "look \x1b]0;pwned\x07", "step": 1}) + "\n")
    events = [e for e, _ in EventTail(session.path / "events.jsonl").read().events]
    assert any(getattr(e, "message", "") == "look \\x1b]0;pwned\\x07" for e in events)
