"""Sweeps: grid and Optuna trials as sessions in a resumable folder, the Pareto front, the CLI."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from tui_unlearn.algorithms import get_algorithm
from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig, load_config_file
from tui_unlearn.errors import ConfigError, DataError, ExitCode, UnlearnError
from tui_unlearn.sweeps import run_sweep, runner
from tui_unlearn.sweeps import space as sp
from tui_unlearn.sweeps.report import WITH_ORACLE, WITHOUT_ORACLE, best_trial, pareto_front
from tui_unlearn.sweeps.store import Trial, latest_attempts, open_folder

FORGET = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
]
RETAIN = [
    {"question": "Who wrote The Fox?", "answer": "The Fox was written by Ana Bel."},
    {"question": "When was Tor Ek born?", "answer": "Tor Ek was born in 1950."},
]
HOLDOUT = [{"question": "Where was Uma Reel born?", "answer": "Uma Reel was born in Oster."}]


@pytest.fixture()
def base(micro_model_dir, tmp_path):
    paths = {}
    for name, rows in (("forget", FORGET), ("retain", RETAIN), ("holdout", HOLDOUT)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(rows))
    return RunConfig(
        model=str(micro_model_dir),
        forget=str(paths["forget"]),
        retain=str(paths["retain"]),
        holdout=str(paths["holdout"]),
        steps=2,
        eval_every=0,
        max_new_tokens=4,
    )


@pytest.fixture()
def counted(monkeypatch):
    """Count the trials actually run."""
    calls = []
    real = runner.run_in_process

    def spy(config, folder, *args, **kwargs):
        calls.append(config)
        return real(config, folder, *args, **kwargs)

    monkeypatch.setattr(runner, "run_in_process", spy)
    return calls


# ---- pure parts ----


def test_grid_and_space_parse_with_each_declaration():
    npo = get_algorithm("npo")
    grid = sp.parse_grid(npo, ["beta=0.05,0.1", "lr=1e-4,3e-4", "steps=5"])
    assert grid == {"beta": [0.05, 0.1], "lr": [1e-4, 3e-4], "steps": [5]}
    assert len(sp.grid_points(grid)) == 4 and sp.grid_points(grid)[1] == {"beta": 0.05, "lr": 3e-4, "steps": 5}
    space = sp.parse_space(npo, ["beta=0.01:1:log", "steps=10:40"])
    assert space["beta"].log and space["steps"].integer
    with pytest.raises(ConfigError, match="cannot vary 'model'"):
        sp.parse_grid(npo, ["model=a,b"])
    with pytest.raises(ConfigError, match="cannot vary 'gamma'"):
        sp.parse_grid(npo, ["gamma=1,2"])
    with pytest.raises(ConfigError, match="must be >="):
        sp.parse_grid(npo, ["beta=-1"])
    with pytest.raises(ConfigError, match="LOW must be below HIGH"):
        sp.parse_space(npo, ["beta=1:0.1"])
    for empty in ("beta=,", "beta= , ,"):  # once a sweep of 0 grid points that exited 0
        with pytest.raises(ConfigError, match="lists no values"):
            sp.parse_grid(npo, [empty])
    # A method without a declared space gets one around its defaults.
    default = sp.default_space(get_algorithm("grad_diff"), 2e-4)
    assert default["lr"].low == pytest.approx(2e-4 / 3) and default["retain_weight"].high == pytest.approx(15.0)


def make_trial(fq, mu, ratio=None, status="finished"):
    return Trial(
        session=None,
        point={},
        status=status,  # type: ignore[arg-type]
        objectives={
            "forget_quality": fq,
            "model_utility": mu,
            "utility_ratio": ratio if ratio is not None else mu,
            "holdout_parity": None,
        },
    )


def test_pareto_front_and_best():
    a, b, c, d = (
        make_trial(0.9, 0.5),
        make_trial(0.3, 0.97),
        make_trial(0.2, 0.9),
        make_trial(0.99, 0.99, status="failed"),
    )
    front = pareto_front([a, b, c, d], WITH_ORACLE)
    assert front == [a, b]  # c is dominated by b; failed trials never count
    assert best_trial(front, WITH_ORACLE, 0.95) is b
    assert best_trial(front, WITH_ORACLE, 0.99) is b  # none keeps 99 %: the one nearest the floor
    parity = [
        Trial(None, {}, "finished", {"holdout_parity": p, "model_utility": m})
        for p, m in ((0.1, 0.8), (0.02, 0.7), (0.2, 0.6))
    ]  # type: ignore[arg-type]
    assert pareto_front(parity, WITHOUT_ORACLE) == parity[:2]


# ---- running ----


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
def test_a_four_trial_grid_sweep_resumes_without_rerunning(base, tmp_path, counted):
    grid = ["lr=1e-3,2e-3", "steps=1,2"]
    logs = []
    report = run_sweep(base, root=tmp_path / "s", grid_items=grid, log=logs.append)
    assert any(line.startswith("trial lr=0.001, steps=1: finished, holdout parity") for line in logs), logs
    assert len(counted) == 4 and len(report.trials) == 4 and all(t.complete for t in report.trials)
    folder = report.folder
    assert folder.parent == tmp_path / "s" and folder.name.startswith("sweep-grad_diff-")
    again = run_sweep(base, root=tmp_path / "s", grid_items=grid)
    assert len(counted) == 4 and again.folder == folder and len(again.trials) == 4
    # One more value: only the new points run.
    bigger = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3,3e-3", "steps=1,2"])
    assert bigger.folder != folder  # another space is another sweep
    assert len(counted) == 4 + 6
    # Another model or data is another sweep too; the same folder given explicitly refuses it.
    with pytest.raises(ConfigError, match="holds another sweep"):
        run_sweep(base.with_overrides(seed=3), root=tmp_path / "s", grid_items=grid, folder=folder)


def test_an_interrupted_grid_trial_runs_again(base, tmp_path, counted):
    report = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"])
    victim, victim_lr = report.trials[0].session, report.trials[0].point["lr"]
    summary = json.loads((victim.path / "summary.json").read_text())
    (victim.path / "summary.json").write_text(json.dumps({**summary, "status": "failed"}))
    again = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"])
    assert len(counted) == 3 and counted[-1].lr == victim_lr
    # The failed attempt stays on disk but is not a third trial of a two-point grid.
    assert victim.path.is_dir() and len(again.trials) == 2 and again.superseded == 1
    assert "2 trials (1 earlier attempt that did not finish not counted)" in again.table()


def test_ctrl_c_in_a_trial_stops_the_sweep_with_exit_130(base, tmp_path, counted, monkeypatch):
    """Before: Ctrl-C ended the running trial as interrupted and the sweep went on to the next
    one, exiting 0 after it (a second Ctrl-C, the next trial). Now the sweep stops; the same
    command runs the interrupted trial again."""
    import tui_unlearn.engine as engine

    real = engine.run

    def ctrl_c_at_the_first_step(config, on_event=None, should_stop=None, **kwargs):
        return real(config, on_event, lambda: True, **kwargs)  # what the engine does on Ctrl-C

    monkeypatch.setattr(engine, "run", ctrl_c_at_the_first_step)
    root = tmp_path / "s"
    args = [
        *("sweep", "--model", base.model, "--forget", base.forget, "--retain", base.retain),
        *("--holdout", base.holdout, "--steps", "2", "--eval-every", "0", "--max-new-tokens", "4"),
        *("--sessions-dir", str(root), "--grid", "lr=1e-3,2e-3"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    assert len(counted) == 1 and "interrupted: its finished trials are kept" in result.stderr
    (folder,) = [p for p in root.iterdir() if p.name.startswith("sweep-")]
    (session,) = [p for p in folder.iterdir() if (p / "summary.json").is_file()]
    assert json.loads((session / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(engine, "run", real)
    again = CliRunner().invoke(app, [*args, "--no-charts"])
    assert again.exit_code == 0 and len(counted) == 3, again.output
    assert "2 trials (1 earlier attempt that did not finish not counted)" in again.stdout


def test_a_killed_trial_rerun_counts_once(base, tmp_path, counted):
    """A trial whose process was killed reads "running" with a dead owner (interrupted)."""
    report = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"])
    victim = report.trials[1].session
    summary = json.loads((victim.path / "summary.json").read_text())
    killed = {**summary, "status": "running", "pid": 0, "host": socket.gethostname()}
    (victim.path / "summary.json").write_text(json.dumps(killed))
    again = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"])
    assert len(counted) == 3 and len(again.trials) == 2 and all(t.complete for t in again.trials)
    assert victim.id not in {t.session.id for t in again.trials} and again.to_json()["superseded_attempts"] == 1


def test_latest_attempts_keep_complete_trials_and_the_last_try():
    def at(lr, status):
        return Trial(None, {"lr": lr}, status, {})  # type: ignore[arg-type]

    old_fail, done, lone_old, lone_new, other = (
        at(1, "failed"),
        at(1, "finished"),
        at(2, "interrupted"),
        at(2, "failed"),
        at(3, "finished"),
    )
    kept, dropped = latest_attempts([old_fail, lone_old, done, lone_new, other])
    assert kept == [done, lone_new, other] and dropped == 2


def test_every_trial_failing_before_a_session_exits_with_the_reason(base, tmp_path):
    missing = base.with_overrides(forget=str(tmp_path / "gone.json"))
    logs = []
    with pytest.raises(
        UnlearnError, match="every trial failed before a session existed .2 of 2.: forget set: file"
    ) as e:
        run_sweep(missing, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"], log=logs.append)
    assert e.value.exit_code == ExitCode.LOAD  # the data could not be loaded, as for a single run
    assert any("failed before a session existed: forget set: file not found" in line for line in logs), logs


def test_sweep_folder_problems_are_one_line_errors(tmp_path, monkeypatch):
    ident = {"algorithm": "npo", "mode": "grid", "space": {"beta": [0.1]}, "base": {}}
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for folder in (a_file, a_file / "below"):
        with pytest.raises(ConfigError, match="is a file, or a part of its path is"):
            open_folder(folder, ident)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for text in ('{"id": "x", "ident', "[]", '{"id": "x"}'):
        (damaged / "sweep.json").write_text(text)
        with pytest.raises(DataError, match="sweep.json is damaged"):
            open_folder(damaged, ident)
    real_mkdir = type(tmp_path).mkdir

    def refused(self, *args, **kwargs):
        if self.name == "locked":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "mkdir", refused)
    with pytest.raises(ConfigError, match="can't create the sweep folder .*: permission denied; choose a folder"):
        open_folder(tmp_path / "locked", ident)


@pytest.mark.slow
def test_optuna_trials_resume_and_extend(base, tmp_path, counted):
    space = ["lr=1e-4:1e-2:log", "forget_weight=0.5:2"]
    first = run_sweep(base, root=tmp_path / "s", trials=2, space_items=space)
    assert len(counted) == 2
    assert all(1e-4 <= t.point["lr"] <= 1e-2 and 0.5 <= t.point["forget_weight"] <= 2 for t in first.trials)
    run_sweep(base, root=tmp_path / "s", trials=2, space_items=space)
    assert len(counted) == 2
    more = run_sweep(base, root=tmp_path / "s", trials=3, space_items=space)
    assert len(counted) == 3 and len(more.trials) == 3
    # No oracle and no perturbed retain answers here: holdout parity against retain F1.
    assert more.objectives == (("holdout_parity", "min"), ("retain_f1", "max"))
    assert more.best_config is not None and load_config_file(more.best_config).algorithm == "grad_diff"


def test_parallel_is_capped_by_memory(base, monkeypatch):
    logs = []
    monkeypatch.setattr(runner, "memory_available", lambda device: 10 * runner.GIB)
    assert runner.parallel_that_fits(4, base, False, logs.append) == 4
    monkeypatch.setattr(runner, "memory_available", lambda device: int(1.0 * runner.GIB))
    assert runner.parallel_that_fits(4, base, False, logs.append) == 1 and "memory allows 1" in logs[-1]


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_parallel_trials_run_as_subprocesses(base, tmp_path):
    report = run_sweep(base, root=tmp_path / "s", grid_items=["lr=1e-3,2e-3"], parallel=2)
    assert sorted(t.point["lr"] for t in report.trials) == [1e-3, 2e-3] and all(t.complete for t in report.trials)


# ---- the command line ----


def test_sweep_command_json_table_best_config_and_analyze(base, tmp_path):
    cli = CliRunner()
    args = [
        "sweep",
        "--model",
        base.model,
        "--forget",
        base.forget,
        "--retain",
        base.retain,
        "--holdout",
        base.holdout,
        "--steps",
        "1",
        "--eval-every",
        "0",
        "--max-new-tokens",
        "4",
        "--sessions-dir",
        str(tmp_path / "s"),
        "--grid",
        "lr=1e-3,2e-3",
    ]
    result = cli.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"pareto", "trials", "best", "best_config", "sweep_dir"} <= set(out)
    assert out["pareto"] and {"session_id", "hparams", "objectives"} <= set(out["pareto"][0])
    assert load_config_file(out["best_config"]).lr in (1e-3, 2e-3)
    table = cli.invoke(app, [*args, "--no-charts"])
    assert table.exit_code == 0 and "Pareto front" in table.stdout and "best" in table.stdout
    # analyze shows the sweep as one group, then compares its front.
    shown = cli.invoke(app, ["analyze", out["sweep_dir"], "--no-charts"])
    assert shown.exit_code == 0, shown.output
    assert "Pareto front" in shown.stdout and out["pareto"][0]["session_id"] in shown.stdout
    by_name = cli.invoke(app, ["analyze", out["sweep_id"], "--sessions-dir", str(tmp_path / "s"), "--no-charts"])
    assert by_name.exit_code == 0 and out["sweep_id"] in by_name.stdout
    bad = cli.invoke(app, ["sweep", "--sessions-dir", str(tmp_path / "s")])
    assert bad.exit_code == 2 and "--grid" in bad.output
