"""The command line around the workbench (issue 11 §2 and §5): `watch`, what a script that
forgot --batch gets, the help's metavars, and the README's list of --jsonl events."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from project_docs import doc_text
from tui_fakes import SessionWriter
from typer.testing import CliRunner

from tui_unlearn import events as ev
from tui_unlearn.cli import app
from tui_unlearn.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_a_script_that_forgot_batch_gets_a_usage_error_not_a_hang(tmp_path):
    # `tui-unlearn --json > out.json < /dev/null`: no terminal, so no workbench.
    proc = subprocess.run(
        [sys.executable, "-m", "tui_unlearn", "--json", "--sessions-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == ExitCode.USAGE
    assert proc.stdout == ""
    assert "add --batch" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "tui_unlearn", "--sessions-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == ExitCode.USAGE and "needs a terminal" in proc.stderr


def test_watch_names_a_session_and_needs_a_terminal(tmp_path):
    writer = SessionWriter(tmp_path)
    unknown = runner.invoke(app, ["watch", "nope", "--sessions-dir", str(tmp_path)])
    assert unknown.exit_code == ExitCode.USAGE and "no session 'nope'" in unknown.stderr
    piped = runner.invoke(app, ["watch", writer.session.id[:10], "--sessions-dir", str(tmp_path)])
    assert piped.exit_code == ExitCode.USAGE
    assert "watch needs a terminal" in piped.stderr and f"sessions show {writer.session.id}" in piped.stderr


def test_repeatable_options_read_as_lists_in_the_help():
    shown = runner.invoke(app, ["--batch", "--help"]).stdout
    assert re.search(r"--probe TEXT\.\.\.", shown)
    assert re.search(r"--lora-target NAME\.\.\.", shown)
    assert not re.search(r"--steps INT\.\.\.", shown)
    analyze = runner.invoke(app, ["analyze", "--help"]).stdout
    assert "{SESSION}..." in analyze and "<path>" not in analyze


def test_the_readme_lists_every_event_kind_jsonl_prints():
    readme = doc_text("README.md")
    line = next(line for line in readme.splitlines() if "--batch --jsonl" in line and "#" in line)
    listed = set(re.findall(r"[a-z]+", line.split("#", 1)[1]))
    assert set(ev.EVENT_TYPES) <= listed, set(ev.EVENT_TYPES) - listed
