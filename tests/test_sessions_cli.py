"""The sessions commands and ``analyze`` against damaged, running and unwritable sessions,
and the progress lines the batch face shares with the TUI."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import psutil
import pytest
from tui_fakes import make_sessions, metrics_at
from typer.testing import CliRunner

from tui_unlearn import events as ev
from tui_unlearn.analysis.reporting import evaluation_line, progress_text, run_started_line
from tui_unlearn.batch import BatchReporter
from tui_unlearn.cli import app
from tui_unlearn.sessions import Session

GOOD, BAD_EVENTS, BAD = "20250101-090000-grad_ascent-aaaa", "20250101-100000-grad_diff-bbbb", "20250101-110000-npo-cccc"


def cli(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def one_line_error(result, code: int) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


@pytest.fixture
def damaged(tmp_path):
    """Three sessions: one fine, one with bad event lines, one whose summary is a list."""
    root = tmp_path / "sessions"
    make_sessions(root)
    (root / BAD / "summary.json").write_text("[1, 2]")
    with open(root / BAD_EVENTS / "events.jsonl", "ab") as fh:
        fh.write(
            b'{"event": "step", "step": "x", "losses": [1]}\n\xff\xfe\n{"event": "evaluation", "step": 1, "metrics": 5}\n'
        )
    return root


def test_list_shows_an_unreadable_session_among_good_ones(damaged):
    r = cli("sessions", "list", "--sessions-dir", damaged)
    assert r.exit_code == 0, r.stderr
    assert "unreadable: summary.json holds a list, not an object" in r.stdout
    assert GOOD in r.stdout and BAD_EVENTS in r.stdout
    rows = {
        row["session_id"]: row
        for row in json.loads(cli("sessions", "list", "--sessions-dir", damaged, "--json").stdout)
    }
    assert rows[BAD]["status"] == "unreadable" and rows[BAD]["problem"] == "summary.json holds a list, not an object"
    assert rows[GOOD]["status"] == "finished" and "problem" not in rows[GOOD]


def test_show_says_why_a_session_cannot_be_read(damaged):
    r = cli("sessions", "show", BAD, "--sessions-dir", damaged)
    assert r.exit_code == 0 and "problem: summary.json holds a list" in r.stdout
    r = cli("sessions", "show", BAD_EVENTS, "--sessions-dir", damaged)
    assert r.exit_code == 0 and "note: events.jsonl: 3 unreadable lines skipped" in r.stdout
    r = cli("sessions", "show", BAD, "--sessions-dir", damaged, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["summary"]["status"] == "unreadable"


def test_analyze_leaves_out_what_it_cannot_read_with_a_note(damaged, tmp_path):
    r = cli("analyze", GOOD, BAD_EVENTS, BAD, "--sessions-dir", damaged, "--no-charts", "--json", tmp_path / "c.json")
    assert r.exit_code == 0, r.stderr
    assert f"note: skipping {BAD}: unreadable: summary.json holds a list" in r.stderr
    assert f"note: {BAD_EVENTS}: events.jsonl: 3 unreadable lines skipped" in r.stderr
    data = json.loads((tmp_path / "c.json").read_text())
    assert [s["session_id"] for s in data["sessions"]] == [GOOD, BAD_EVENTS] and len(data["notes"]) == 2
    r = cli("analyze", GOOD, BAD_EVENTS, "--sessions-dir", damaged, "--width", 60)  # charts with the bad lines
    assert r.exit_code == 0 and "accuracy over steps" in r.stdout
    r = cli("analyze", BAD, "--sessions-dir", damaged)
    assert r.exit_code == 3 and "none of the sessions given can be read" in r.stderr and "Traceback" not in r.stderr


def test_analyze_export_that_cannot_be_written_is_exit_2(damaged, tmp_path):
    (tmp_path / "file").write_text("x")
    for target in (tmp_path, tmp_path / "file" / "out.csv", tmp_path / "missing" / "out.csv"):
        r = cli("analyze", GOOD, "--sessions-dir", damaged, "--no-charts", "--csv", target)
        one_line_error(r, 2)
        assert f"cannot write {target}" in r.stderr


def test_markdown_export_is_an_aligned_table(damaged, tmp_path):
    r = cli("analyze", GOOD, BAD_EVENTS, "--sessions-dir", damaged, "--no-charts", "--markdown", tmp_path / "c.md")
    assert r.exit_code == 0, r.stderr
    tables = [block for block in (tmp_path / "c.md").read_text().split("\n\n") if block.startswith("|")]
    assert len(tables) == 2
    for table in tables:
        lines = table.splitlines()
        assert len({len(line) for line in lines}) == 1  # padded to one width
        assert set(lines[1]) <= {"|", "-"}
        assert [c.strip() for c in lines[0].strip("|").split("|")][:2] in (["session", "kind"], ["split", "metric"])


def test_list_of_a_file_is_exit_2(tmp_path):
    (tmp_path / "file").write_text("x")
    r = cli("sessions", "list", "--sessions-dir", tmp_path / "file")
    one_line_error(r, 2)
    assert "is a file" in r.stderr


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_dead_running_session_is_listed_interrupted(tmp_path):
    s = Session.create(tmp_path, "npo", {"algorithm": "npo", "model": "m"})
    s.update_summary(pid=_dead_pid())
    r = cli("sessions", "list", "--sessions-dir", tmp_path)
    assert r.exit_code == 0 and "interrupted" in r.stdout and "running" not in r.stdout
    assert (
        json.loads(cli("sessions", "list", "--sessions-dir", tmp_path, "--json").stdout)[0]["status"] == "interrupted"
    )


# ---- delete ----


def test_delete_exit_codes(tmp_path, monkeypatch):
    ids = make_sessions(tmp_path)
    r = cli("sessions", "delete", ids[0], "--sessions-dir", tmp_path)  # CliRunner's stdin is no terminal
    one_line_error(r, 2)
    assert "pass --yes" in r.stderr and (tmp_path / ids[0]).is_dir()
    r = cli("sessions", "delete", "no-such-session", "--sessions-dir", tmp_path, "--yes")
    one_line_error(r, 2)
    r = cli("sessions", "delete", ids[0], "--sessions-dir", tmp_path, "--yes")
    assert r.exit_code == 0 and not (tmp_path / ids[0]).exists()

    monkeypatch.setattr("tui_unlearn.cli._stdin_is_terminal", lambda: True)
    r = cli("sessions", "delete", ids[1], "--sessions-dir", tmp_path, input="n\n")
    assert r.exit_code == 0 and (tmp_path / ids[1]).is_dir()
    r = cli("sessions", "delete", ids[1], "--sessions-dir", tmp_path, input="y\n")
    assert r.exit_code == 0 and not (tmp_path / ids[1]).exists()


def test_delete_refuses_a_session_whose_run_is_going(tmp_path):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as proc:
        try:
            s = Session.create(tmp_path, "npo", {"algorithm": "npo"})
            s.update_summary(pid=proc.pid, pid_started=round(psutil.Process(proc.pid).create_time(), 2))
            r = cli("sessions", "delete", s.id, "--sessions-dir", tmp_path, "--yes")
            one_line_error(r, 2)
            assert f"still running (pid {proc.pid})" in r.stderr and f"kill {proc.pid}" in r.stderr
            assert s.path.is_dir()
        finally:
            proc.kill()
    proc.wait()
    assert cli("sessions", "delete", s.id, "--sessions-dir", tmp_path, "--yes").exit_code == 0  # gone: interrupted


# ---- a sessions folder that cannot be written fails first ----


@pytest.mark.parametrize("where", ["file", "under-file"])
@pytest.mark.parametrize("command", [["--batch", "--algorithm", "grad_ascent"], ["eval"]])
def test_unwritable_sessions_folder_fails_before_loading_anything(tmp_path, where, command):
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" if where == "file" else tmp_path / "file" / "sessions"
    # A model and a forget set that do not exist: the sessions folder is checked before either.
    r = cli(
        *command,
        "--sessions-dir",
        target,
        "--model",
        tmp_path / "no-model",
        "--forget",
        tmp_path / "no.jsonl",
        "--retain",
        tmp_path / "no.jsonl",
    )
    one_line_error(r, 2)
    assert "sessions folder" in r.stderr and "no-model" not in r.stderr


# ---- progress lines written once for the batch face and the TUI ----


def test_batch_lines_are_the_shared_formatters():
    err = io.StringIO()
    reporter = BatchReporter(as_json=False, as_jsonl=False, stdout=io.StringIO(), stderr=err)
    metrics = metrics_at(0, 10)
    data = {"forget": 4, "retain": 9, "holdout": 2, "removed_from_retain": 1}
    reporter.on_event(ev.RunStarted("sid", "/tmp/sid", {}, 10, {}, data))
    reporter.on_event(ev.StepLosses(10, 10, {"loss": 0.5}, 1e-3, 20.0))
    reporter.on_event(ev.Evaluation(10, "after", metrics, 21.0))
    lines = err.getvalue().splitlines()
    assert (
        lines[0]
        == run_started_line("sid", data, 10)
        == ("session sid: forget 4, retain 9, holdout 2 records, 1 removed from retain as forget duplicates; 10 steps")
    )
    assert lines[1] == progress_text(10, 10, 20.0) + " · loss 0.5000" == "step 10/10 · 20s · ETA 0s · loss 0.5000"
    assert lines[2] == evaluation_line(10, "after", metrics)
    for split in ("forget", "retain", "holdout"):  # every split with accuracy, F1 and loss
        m = metrics[split]
        assert f"{split} acc {m['accuracy']:.2f} f1 {m['f1']:.2f} loss {m['loss']:.2f}" in lines[2]


def test_evaluation_line_and_eta_handle_missing_values():
    assert evaluation_line(0, "before", {"forget": {"accuracy": None}, "retain": "?"}) == (
        "step 0 (before): forget -; retain -"
    )
    # What a split did not compute is left out, not printed as "acc -" (score-only evaluations
    # during training; the bundled holdout, only scored).
    scored = {"forget": {"accuracy": None, "f1": None, "loss": 2.5}, "holdout": {"loss": 4.236, "rouge_l": 0.2}}
    assert evaluation_line(10, "during", scored) == "step 10 (during): forget loss 2.50; holdout loss 4.24"
    assert progress_text(0, 10, None) == "step 0/10 · - · ETA -"
    assert progress_text(5, 10, 125.0) == "step 5/10 · 2m05s · ETA 2m05s"
