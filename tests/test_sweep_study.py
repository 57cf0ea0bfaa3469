"""Sweeps shared through Optuna's storage (sweeps.study): several workers on one study, a
worker killed mid-trial and its trial retried by another, a bad --storage in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig
from tui_unlearn.errors import ConfigError
from tui_unlearn.sweeps import run_sweep, runner
from tui_unlearn.sweeps.study import open_storage, storage_kind

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
]
HOLDOUT = [{"question": "Where was Uma Reel born?", "answer": "Uma Reel was born in Oster."}]
SPACE = ["--space", "lr=1e-4:1e-2:log"]


@pytest.fixture()
def data(tmp_path):
    paths = {}
    for name, rows in (("forget", FORGET), ("retain", RETAIN), ("holdout", HOLDOUT)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(rows))
    return paths


def sweep_args(model, data, sessions: Path, storage: str, trials: int, steps: int = 2) -> list[str]:
    return [
        "sweep",
        "--model",
        str(model),
        "--forget",
        str(data["forget"]),
        "--retain",
        str(data["retain"]),
        "--holdout",
        str(data["holdout"]),
        "--steps",
        str(steps),
        "--eval-every",
        "0",
        "--max-new-tokens",
        "4",
        "--trials",
        str(trials),
        *SPACE,
        "--storage",
        storage,
        "--study",
        "shared",
        "--sessions-dir",
        str(sessions),
        "--json",
        "--no-charts",
    ]


def worker(args: list[str], heartbeat: int | None = None) -> subprocess.Popen:
    extra = ["--heartbeat", str(heartbeat)] if heartbeat else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "tui_unlearn", *args, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def load(db: Path):
    import optuna

    return optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")


def finished(proc: subprocess.Popen, timeout: float = 600) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


# ---- fast: the storage's URL ----


def test_storage_kinds_and_bad_urls_are_one_line(tmp_path):
    assert storage_kind("study.db") == "sqlite" and storage_kind("postgresql://u@h/db") == "rdb"
    assert storage_kind("journal:/shared/sweep.log") == "journal"
    for url, said in (
        ("nosuchdb://host/x", "can't open it"),
        (str(tmp_path / "missing" / "study.db"), "does not exist"),
        (str(tmp_path), "is a folder"),
        ("journal:" + str(tmp_path / "missing" / "j.log"), "does not exist"),
        ("journal:", "is empty"),
    ):
        with pytest.raises(ConfigError, match=said) as e:
            open_storage(url)
        assert "\n" not in str(e.value)


def test_a_bad_storage_is_a_usage_error_before_anything_runs(micro_model_dir, data, tmp_path):
    args = sweep_args(micro_model_dir, data, tmp_path / "s", "nosuchdb://host/x", 2)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--storage nosuchdb://host/x: can't open it" in lines[0]
    assert not (tmp_path / "s").exists()  # no sweep folder made for a sweep that cannot run
    grid = [a for a in args if a not in ("--trials", "2", *SPACE)] + ["--grid", "lr=1e-3,2e-3"]
    grid[grid.index("--storage") + 1] = str(tmp_path / "study.db")
    assert CliRunner().invoke(app, grid).exit_code == 2


# ---- slow: workers ----


@pytest.mark.slow  # two worker processes, four trials
def test_two_workers_share_one_sqlite_study(micro_model_dir, data, tmp_path):
    db = tmp_path / "study.db"
    a = worker(sweep_args(micro_model_dir, data, tmp_path / "a", str(db), 4, steps=20))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # B joins once A is running a trial
        time.sleep(0.2)
        if db.is_file() and any(t.state.name == "RUNNING" for t in _trials(db)):
            break
    b = worker(sweep_args(micro_model_dir, data, tmp_path / "b", str(db), 4, steps=20))
    out_a, out_b = finished(a), finished(b)

    trials = load(db).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and all(t.state.name == "COMPLETE" for t in trials)  # exactly 4, none surplus
    paths = [t.user_attrs["session_path"] for t in complete]
    assert len(set(paths)) == 4 and all(Path(p).is_dir() for p in paths)  # each trial ran once
    by_worker = {w: [p for p in paths if Path(p).parent.parent == tmp_path / w] for w in ("a", "b")}
    assert by_worker["a"] and by_worker["b"], by_worker  # both workers ran trials, each in its folder
    assert len(by_worker["a"]) + len(by_worker["b"]) == 4
    # Each worker reports every worker's trials, and the same front from them.
    for out in (out_a, out_b):
        assert out["study"] == "shared" and len(out["trials"]) == 4
        assert {t["session_path"] for t in out["trials"]} == set(paths)
    assert [t["session_id"] for t in out_a["pareto"]] == [t["session_id"] for t in out_b["pareto"]]
    assert out_a["pareto"]


def _trials(db: Path):
    try:
        return load(db).get_trials()
    except Exception:  # noqa: BLE001 - the study is still being created
        return []


@pytest.mark.slow  # a worker killed mid-trial, another finishing the study
def test_a_killed_workers_trial_is_retried_by_another(micro_model_dir, data, tmp_path):
    db = tmp_path / "study.db"
    a = worker(sweep_args(micro_model_dir, data, tmp_path / "a", str(db), 2, steps=200), heartbeat=1)
    deadline = time.monotonic() + 300
    victim = None
    while time.monotonic() < deadline and victim is None:
        time.sleep(0.1)
        running = [t for t in _trials(db) if t.state.name == "RUNNING" and "session_path" in t.user_attrs]
        victim = running[0] if running else None
    assert victim is not None, "worker A never started a trial"
    a.send_signal(signal.SIGKILL)
    a.wait()

    out = finished(worker(sweep_args(micro_model_dir, data, tmp_path / "b", str(db), 2, steps=200), heartbeat=1))
    trials = load(db).get_trials()
    killed = [t for t in trials if t.number == victim.number][0]
    assert killed.state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == victim.params
    assert Path(retry[0].user_attrs["session_path"]).parent.parent == tmp_path / "b"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2
    # The report counts the retry, not the lost attempt.
    assert len(out["trials"]) == 2 and out["superseded_attempts"] == 1
    assert all(t["status"] == "finished" for t in out["trials"])


@pytest.mark.slow  # two trials of the micro model
def test_a_journal_study_resumes_without_rerunning(micro_model_dir, data, tmp_path, monkeypatch):
    calls = []
    real = runner.run_in_process
    monkeypatch.setattr(runner, "run_in_process", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    base = RunConfig(
        model=str(micro_model_dir),
        forget=str(data["forget"]),
        retain=str(data["retain"]),
        holdout=str(data["holdout"]),
        steps=2,
        eval_every=0,
        max_new_tokens=4,
    )
    journal = "journal:" + str(tmp_path / "sweep.log")
    kw = dict(root=tmp_path / "s", trials=2, space_items=["lr=1e-4:1e-2:log"], storage=journal)
    report = run_sweep(base, **kw)
    assert len(calls) == 2 and len(report.trials) == 2 and report.study == report.folder.name
    assert report.best_config is not None and report.best_config.is_file()
    again = run_sweep(base, **kw)
    assert len(calls) == 2 and len(again.trials) == 2  # the study is done: nothing runs again
    more = run_sweep(base, **{**kw, "trials": 3})
    assert len(calls) == 3 and len(more.trials) == 3
