"""Resumable runs: a run killed between checkpoints, resumed, ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from project_docs import doc_text
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.errors import ExitCode
from tui_unlearn.sessions import list_sessions

FORGET = [{"question": f"Where was author {i} born?", "answer": f"Author {i} was born in town {i}."} for i in range(6)]
RETAIN = [{"question": f"What does writer {i} write?", "answer": f"Writer {i} writes genre {i}."} for i in range(6)]


@pytest.fixture()
def run_args(micro_model_dir, tmp_path):
    forget, retain = tmp_path / "forget.jsonl", tmp_path / "retain.jsonl"
    forget.write_text("".join(json.dumps(r) + "\n" for r in FORGET))
    retain.write_text("".join(json.dumps(r) + "\n" for r in RETAIN))
    # Dropout makes every step draw from the RNG: the resumed run must restore it exactly.
    return [
        "--model",
        str(micro_model_dir),
        "--forget",
        str(forget),
        "--retain",
        str(retain),
        "--steps",
        "8",
        "--lr",
        "1e-2",
        "--batch-size",
        "2",
        "--checkpoint-every",
        "2",
        "--eval-every",
        "3",
        "--eval-samples",
        "6",
        "--max-new-tokens",
        "4",
        # lr 1e-2 wrecks the micro model within a few steps: the guard would end the run early.
        "--guard-general",
        "0",
        "--dropout",
        "0.2",
        "--device",
        "cpu",
    ]


def _batch(args, sessions, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    # No general-ability guard: it may stop the micro model's run early, and these runs must go on.
    guard = ["--guard-general", "0"]
    return [sys.executable, "-m", "tui_unlearn", "--batch", "--sessions-dir", str(sessions), *guard, *args, *extra], env


def _step_losses(session) -> dict[int, dict]:
    return {e["step"]: e["losses"] for e in session.events() if e.get("event") == "step"}


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_killed_between_checkpoints_then_resumed_ends_like_an_uninterrupted_run(run_args, tmp_path):
    cmd, env = _batch(run_args, tmp_path / "whole", "--json")
    whole = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert whole.returncode == 0, whole.stderr[-1500:]
    expected = json.loads(whole.stdout)

    cmd, env = _batch(run_args, tmp_path / "killed", "--jsonl")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for line in proc.stdout:  # kill -9 after step 5: the last checkpoint is step 4
        event = json.loads(line)
        if event["event"] == "step" and event["step"] == 5:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    (session,) = list_sessions(tmp_path / "killed")
    assert session.summary()["status"] == "interrupted"  # its process is gone
    assert session.summary()["steps"] >= 1  # progress was written as the run went (at most once a second)
    assert (session.path / "checkpoint" / "state.json").exists()

    result = CliRunner().invoke(
        app, ["--batch", "--sessions-dir", str(tmp_path / "killed"), "--resume", session.id, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    resumed = json.loads(result.stdout)
    assert resumed["session_id"] == session.id and resumed["status"] == "finished" and resumed["steps"] == 8
    assert resumed["metrics"] == expected["metrics"]
    (whole_session,) = list_sessions(tmp_path / "whole")
    assert _step_losses(session) == _step_losses(whole_session)  # history has each step once, as taken
    assert not (session.path / "checkpoint").exists()  # a finished run keeps no checkpoint


def test_an_interrupted_run_checkpoints_where_it_stopped_and_resumes(micro_model_dir, run_args, tmp_path):
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run

    forget, retain = run_args[3], run_args[5]
    config = RunConfig(
        model=str(micro_model_dir),
        forget=forget,
        retain=retain,
        steps=8,
        lr=1e-2,
        batch_size=2,
        eval_every=0,
        eval_samples=4,
        max_new_tokens=4,
        device="cpu",
        guard_general=0,
    )
    calls = {"n": 0}

    def stop_after_three_steps():
        calls["n"] += 1
        return calls["n"] > 3

    first = run(config, should_stop=stop_after_three_steps, sessions_dir=tmp_path / "s")
    assert first.status == "interrupted" and first.summary["steps"] == 3
    state = json.loads((tmp_path / "s" / first.session_id / "checkpoint" / "state.json").read_text())
    assert state["step"] == 3
    result = CliRunner().invoke(
        app, ["--batch", "--sessions-dir", str(tmp_path / "s"), "--resume", first.session_id, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 8


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_resume_refuses_what_it_cannot_continue(run_args, tmp_path):
    cmd, env = _batch(run_args[:-10] + ["--steps", "2", "--eval-every", "0", "--eval-samples", "2"], tmp_path / "s")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    (session,) = list_sessions(tmp_path / "s")
    cases = [
        (["--resume", session.id], "already ended (finished)"),
        (["--resume", "nope"], "no session 'nope'"),
        (["--resume", session.id, "--steps", "3"], "drop --steps (only this machine's settings may change: "),
    ]
    for extra, fragment in cases:
        result = CliRunner().invoke(app, ["--batch", "--sessions-dir", str(tmp_path / "s"), *extra])
        assert result.exit_code == ExitCode.USAGE and fragment in result.stderr, (extra, result.stderr)
    no_batch = CliRunner().invoke(app, ["--sessions-dir", str(tmp_path / "s"), "--resume", session.id])
    assert no_batch.exit_code == ExitCode.USAGE and "add --batch" in no_batch.stderr


def test_without_checkpoint_every_a_checkpoint_is_due_after_five_minutes_of_training(monkeypatch):
    from tui_unlearn.engine import checkpoint

    now = [1000.0]
    monkeypatch.setattr(checkpoint.time, "monotonic", lambda: now[0])
    auto, never, every3 = (
        checkpoint.CheckpointPolicy(None),
        checkpoint.CheckpointPolicy(0),
        checkpoint.CheckpointPolicy(3),
    )
    now[0] += checkpoint.AUTO_EVERY_S - 1
    assert not auto.due(7)
    now[0] += 1
    assert auto.due(8) and not never.due(8)
    auto.saved()  # the clock starts again from the checkpoint
    now[0] += checkpoint.AUTO_EVERY_S / 2
    assert not auto.due(9)
    assert [s for s in range(1, 10) if every3.due(s)] == [3, 6, 9]  # by steps, whatever the clock
    assert checkpoint.AUTO_EVERY_S == 300.0
    assert f"every {checkpoint.AUTO_EVERY_S / 60:g} minutes of training" in doc_text()  # what the docs promise


# ---- checkpoints are checked before they are trusted (issue 19) ----


def _saved(tmp_path):
    from checkpoint_fakes import fake_run

    from tui_unlearn.engine.checkpoint import save_checkpoint

    ctx = fake_run(tmp_path)
    return ctx, save_checkpoint(ctx)


def test_a_checkpoint_loads_back_exactly(tmp_path):
    import torch
    from checkpoint_fakes import fake_run, weights_of

    from tui_unlearn.engine.checkpoint import load_checkpoint, verify_checkpoint

    saved, folder = _saved(tmp_path)
    assert verify_checkpoint(tmp_path, saved.config) == 3
    fresh = fake_run(tmp_path, seed=1, done=0)
    load_checkpoint(fresh, folder)
    assert fresh.done == 3 and fresh.loop.scheduler.last_epoch == 3
    for name, value in weights_of(saved).items():
        assert torch.equal(weights_of(fresh)[name], value), name


def _edit_state(folder, **changes):
    state = json.loads((folder / "state.json").read_text())
    state.update(changes)
    (folder / "state.json").write_text(json.dumps(state))


def _edit_tensors(path, name, value):
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    tensors[name] = value
    save_file(tensors, str(path))


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("weight of one number", "tensor 0.weight is (1,) torch.float32, the model's is (3, 4) torch.float32"),
        ("weight of another dtype", "tensor 0.weight is (3, 4) torch.float64"),
        ("optimizer moment of another shape", "optimizer tensor 0.exp_avg is (4, 3)"),
        ("learning rate as text", "optimizer settings are not this run's"),
        ("scheduler epoch as text", "scheduler state 'last_epoch' is damaged"),
        ("torch random state cut short", "states cannot be restored"),
    ],
)
def test_a_checkpoint_that_does_not_fit_the_model_changes_nothing(tmp_path, damage, fragment):
    import torch
    from checkpoint_fakes import fake_run, weights_of

    from tui_unlearn.engine.checkpoint import OPTIMIZER, WEIGHTS, load_checkpoint
    from tui_unlearn.errors import DataError

    _, folder = _saved(tmp_path)
    if damage == "weight of one number":  # copy_ used to spread it over the whole matrix
        _edit_tensors(folder / WEIGHTS, "0.weight", torch.zeros(1))
    elif damage == "weight of another dtype":
        _edit_tensors(folder / WEIGHTS, "0.weight", torch.zeros(3, 4, dtype=torch.float64))
    elif damage == "optimizer moment of another shape":
        _edit_tensors(folder / OPTIMIZER, "0.exp_avg", torch.zeros(4, 3))
    elif damage == "learning rate as text":
        state = json.loads((folder / "state.json").read_text())
        state["optimizer"]["param_groups"][0]["lr"] = "x"
        (folder / "state.json").write_text(json.dumps(state))
    elif damage == "scheduler epoch as text":
        state = json.loads((folder / "state.json").read_text())
        state["scheduler"]["last_epoch"] = "x"
        (folder / "state.json").write_text(json.dumps(state))
    else:
        _edit_tensors(folder / OPTIMIZER, "rng.torch_cpu", torch.zeros(10, dtype=torch.uint8))
    fresh = fake_run(tmp_path, seed=1, done=0)
    before = weights_of(fresh)
    with pytest.raises(DataError, match="cannot be used") as raised:
        load_checkpoint(fresh, folder)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert all(torch.equal(weights_of(fresh)[n], v) for n, v in before.items())  # not half-loaded
    assert fresh.done == 0


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"step": 1_000_000}, "it claims step 1000000 of 8"),  # used to "finish" without training
        ({"step": True}, "not a whole number"),
        ({"total_steps": 80}, "it is for a run of 80 steps"),
        ({"config": "0" * 64}, "written for another config"),
        ({"optimizer": None}, "optimizer state is not what a checkpoint holds"),  # was KeyError: 'optimizer'
        ({"python_random": [3, [1, 2], None, 4]}, "Python random state is damaged"),
        ({"numpy_random": ["MT19937", [-1], 0, 0, 0.0]}, "NumPy random state is damaged"),
        ({"trainable": ["0.weight"]}, "does not hold the tensors state.json lists"),
    ],
)
def test_a_checkpoint_is_checked_before_anything_is_loaded(tmp_path, changes, fragment):
    from tui_unlearn.engine.checkpoint import verify_checkpoint
    from tui_unlearn.errors import DataError, ExitCode

    saved, folder = _saved(tmp_path)
    _edit_state(folder, **changes)
    with pytest.raises(DataError, match="cannot be used") as raised:
        verify_checkpoint(tmp_path, saved.config)
    assert fragment in str(raised.value) and raised.value.exit_code == ExitCode.LOAD


def test_a_session_without_a_checkpoint_resumes_from_the_start(tmp_path):
    from checkpoint_fakes import fake_run

    from tui_unlearn.engine.checkpoint import discard_checkpoint, save_checkpoint, verify_checkpoint

    ctx = fake_run(tmp_path)
    assert verify_checkpoint(tmp_path, ctx.config) is None
    save_checkpoint(ctx)
    (tmp_path / ".checkpoint.tmp-999-abcdef").mkdir()  # a save killed midway
    discard_checkpoint(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_resume_in_progress_is_a_running_run_to_every_other_command(micro_model_dir, run_args, tmp_path):
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run

    config = RunConfig(
        model=str(micro_model_dir),
        forget=run_args[3],
        retain=run_args[5],
        steps=8,
        batch_size=2,
        eval_every=0,
        eval_samples=2,
        max_new_tokens=2,
        device="cpu",
        guard_general=0,
    )
    calls = {"n": 0}

    def stop_after_three_steps():
        calls["n"] += 1
        return calls["n"] > 3

    sessions = tmp_path / "s"
    first = run(config, should_stop=stop_after_three_steps, sessions_dir=sessions)
    assert first.status == "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tui_unlearn", "--batch", "--sessions-dir", str(sessions), "--resume"]
    proc = subprocess.Popen(
        [*cmd, first.session_id, "--jsonl"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the session is claimed before this line is said
            if b"resuming session" in line:
                break
        proc.send_signal(signal.SIGSTOP)  # held mid-run: alive, its pid unchanged
        (session,) = list_sessions(sessions)
        assert session.summary()["status"] == "running"  # was "interrupted": the old start time was kept
        for args, fragment in (
            (["sessions", "delete", "--yes", session.id], "still running"),
            (["--batch", "--resume", session.id], "still running"),
        ):
            result = CliRunner().invoke(app, [*args, "--sessions-dir", str(sessions)])
            assert result.exit_code == ExitCode.USAGE and fragment in result.stderr, (args, result.stderr)
        assert (session.path / "config.json").is_file()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert session.summary()["status"] == "interrupted"  # killed: no longer running


def test_a_config_read_back_from_its_file_has_the_same_identity():
    from tui_unlearn.config import RunConfig, resolve
    from tui_unlearn.engine.checkpoint import config_identity

    given = resolve(RunConfig(steps=8, guard_general=0, lr=1))  # ints where the settings are floats
    read_back = resolve(RunConfig.from_dict(json.loads(json.dumps(given.to_dict())), source="config.json"))
    assert config_identity(read_back) == config_identity(given)
    assert config_identity(resolve(RunConfig(steps=9))) != config_identity(resolve(RunConfig(steps=8)))


@pytest.mark.slow  # two runs of the micro model
def test_a_run_resumes_on_another_machine_with_its_time_before_counted(micro_model_dir, run_args, tmp_path):
    """Issue 20 item 4: threads, device and evaluation batch size may change on resume; the
    run's settings may not; the elapsed time counts what ran before."""
    from tui_unlearn.config import MACHINE_SETTINGS, SETTINGS, RunConfig
    from tui_unlearn.engine import run
    from tui_unlearn.sessions import atomic_write_json, open_session

    assert {"threads", "device", "eval_batch_size"} <= MACHINE_SETTINGS
    assert MACHINE_SETTINGS & set(SETTINGS) >= {"threads", "device", "eval_batch_size", "models_cache"}
    config = RunConfig(
        model=str(micro_model_dir),
        forget=run_args[3],
        retain=run_args[5],
        steps=6,
        lr=1e-2,
        batch_size=2,
        eval_every=0,
        eval_samples=4,
        max_new_tokens=4,
        device="cpu",
        threads=2,
        eval_batch_size=8,
        guard_general=0,
    )
    calls = {"n": 0}

    def stop_after_three_steps():
        calls["n"] += 1
        return calls["n"] > 3

    first = run(config, should_stop=stop_after_three_steps, sessions_dir=tmp_path / "s")
    assert first.status == "interrupted"
    session = open_session(tmp_path / "s", first.session_id)
    # As if the first part had run for 1000 s on the other machine.
    atomic_write_json(session.path / "summary.json", {**session.summary(), "seconds": 1000.0})
    base = ["--batch", "--sessions-dir", str(tmp_path / "s"), "--resume", first.session_id]
    refused = CliRunner().invoke(app, [*base, "--threads", "1", "--lr", "0.5"])
    assert refused.exit_code == ExitCode.USAGE and "drop --lr" in refused.stderr and "--threads" in refused.stderr
    result = CliRunner().invoke(app, [*base, "--threads", "1", "--eval-batch-size", "4", "--json"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["steps"] == 6
    summary = session.summary()
    assert summary["seconds"] >= 1000.0  # the time before the resume counts
    assert summary["scale"]["threads"] == 1 and summary["scale"]["eval_batch_size"] <= 4
    logs = [e.get("message", "") for e in session.events() if e.get("event") == "log"]
    assert any("with threads 1 (was 2), eval_batch_size 4 (was 8)" in line for line in logs), logs
    # The session's own config is unchanged: a later resume starts from its settings again.
    assert json.loads((session.path / "config.json").read_text())["threads"] == 2
