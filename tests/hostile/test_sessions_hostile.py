"""Hostile input for sessions, resuming and checkpoints (issue 19): each row damages a copy of
an interrupted session (one with a checkpoint) and runs the real CLI on it.

A row whose command could block on a named pipe runs in a thread with a time limit; when the
limit passes, the pipes are opened for writing once, which frees the blocked reader, and the
row fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from hostile import Case, check, make_world
from typer.testing import CliRunner

from tui_unlearn.cli import app

SESSION = "20250101-000000-grad_diff-host"
LIMIT_S = 60.0  # a row loads no model: seconds at most, even on a busy machine
MEMORY_LIMIT = 4 << 30  # for a row run in a subprocess: its heap never needs a tenth of this


@pytest.fixture(scope="module")
def interrupted(micro_model_dir, tmp_path_factory) -> Path:
    """A session interrupted after 3 of 8 steps, with its checkpoint."""
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run

    tmp = tmp_path_factory.mktemp("interrupted")
    world = make_world(tmp, micro_model_dir, with_session=False)
    config = RunConfig(
        model=str(micro_model_dir),
        forget=str(world.forget),
        retain=str(world.retain),
        steps=8,
        batch_size=2,
        eval_every=0,
        eval_samples=2,
        max_new_tokens=2,
        device="cpu",
    )
    calls = iter(range(1000))
    result = run(config, should_stop=lambda: next(calls) >= 3, sessions_dir=tmp / "made")
    assert result.status == "interrupted"
    folder = tmp / "made" / str(result.session_id)
    assert (folder / "checkpoint" / "state.json").is_file()
    return folder


def _session(tmp: Path) -> Path:
    return tmp / "sessions" / SESSION


def _edit_json(relative: str, **changes):
    def setup(tmp: Path) -> None:
        path = _session(tmp) / relative
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is _DROP:
                data.pop(key)
            else:
                data[key] = value
        path.write_text(json.dumps(data))

    return setup


_DROP = object()


def _replace(relative: str, kind: str):
    """Put a folder, a named pipe or an endless device where ``relative`` was."""

    def setup(tmp: Path) -> None:
        path = _session(tmp) / relative
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "endless":
            path.symlink_to("/dev/zero")
        elif kind == "file":
            path.write_text("not a checkpoint")

    return setup


def _truncate(relative: str, size: int):
    def setup(tmp: Path) -> None:
        path = _session(tmp) / relative
        path.write_bytes(path.read_bytes()[:size])

    return setup


def _nan_headline(tmp: Path) -> None:
    path = _session(tmp) / "summary.json"
    data = json.loads(path.read_text())
    data["forget_quality"] = float("nan")
    path.write_text(json.dumps(data))  # json writes NaN, and reads it back


RESUME = ("--batch", "--sessions-dir", "{sessions}", "--resume", SESSION)
CASES = [
    Case("resume-empty-id", ("--batch", "--sessions-dir", "{sessions}", "--resume", ""), 2, "needs a session id"),
    Case("list-empty-sessions-dir", ("sessions", "list", "--sessions-dir", ""), 2, "--sessions-dir is empty"),
    Case("show-empty-sessions-dir", ("sessions", "show", SESSION, "--sessions-dir", ""), 2, "--sessions-dir is empty"),
    Case(
        "batch-empty-sessions-dir",
        ("--batch", "--sessions-dir", "", "--model", "{model}", "--forget", "{forget}", "--steps", "1"),
        2,
        "--sessions-dir is empty",
    ),
    Case("resume-recipe-text", RESUME, 2, "'recipe' is text", _edit_json("summary.json", recipe="x")),
    Case("resume-null-reasons-text", RESUME, 2, "'null_reasons' is text", _edit_json("summary.json", null_reasons="x")),
    Case(
        "show-recipe-text",
        ("sessions", "show", SESSION, "--sessions-dir", "{sessions}"),
        0,
        "",
        _edit_json("summary.json", recipe="x"),
    ),
    Case("resume-events-folder", RESUME, 2, "events.jsonl is a folder", _replace("events.jsonl", "folder")),
    Case("resume-events-fifo", RESUME, 2, "events.jsonl is a named pipe", _replace("events.jsonl", "fifo")),
    Case("resume-summary-fifo", RESUME, 2, "summary.json is a named pipe", _replace("summary.json", "fifo")),
    Case("resume-config-fifo", RESUME, 2, "config.json is a named pipe", _replace("config.json", "fifo")),
    Case("resume-summary-endless", RESUME, 2, "summary.json is a device", _replace("summary.json", "endless")),
    Case(
        "list-summary-fifo",
        ("sessions", "list", "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("summary.json", "fifo"),
    ),
    Case(
        "list-json-summary-endless",
        ("sessions", "list", "--json", "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("summary.json", "endless"),
    ),
    Case(
        "show-events-fifo",
        ("sessions", "show", SESSION, "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("events.jsonl", "fifo"),
    ),
    Case(
        "show-json-config-fifo",
        ("sessions", "show", SESSION, "--json", "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("config.json", "fifo"),
    ),
    Case(
        "analyze-events-fifo",
        ("analyze", SESSION, "--no-charts", "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("events.jsonl", "fifo"),
    ),
    Case(
        "show-examples-endless",
        ("sessions", "show", SESSION, "--sessions-dir", "{sessions}"),
        0,
        "",
        _replace("examples.jsonl", "endless"),
    ),
    Case("list-json-nan", ("sessions", "list", "--json", "--sessions-dir", "{sessions}"), 0, "", _nan_headline),
    Case(
        "checkpoint-step-million",
        RESUME,
        3,
        "claims step 1000000 of 8",
        _edit_json("checkpoint/state.json", step=1_000_000),
    ),
    Case("checkpoint-negative-step", RESUME, 3, "claims step -1 of 8", _edit_json("checkpoint/state.json", step=-1)),
    Case("checkpoint-step-text", RESUME, 3, "not a whole number", _edit_json("checkpoint/state.json", step="3")),
    Case(
        "checkpoint-without-optimizer",
        RESUME,
        3,
        "optimizer state",
        _edit_json("checkpoint/state.json", optimizer=_DROP),
    ),
    Case(
        "checkpoint-of-another-config",
        RESUME,
        3,
        "another config",
        _edit_json("checkpoint/state.json", config="0" * 64),
    ),
    Case(
        "checkpoint-other-total",
        RESUME,
        3,
        "run of 80 steps",
        _edit_json("checkpoint/state.json", total_steps=80),
    ),
    Case("checkpoint-truncated-weights", RESUME, 3, "unreadable", _truncate("checkpoint/weights.safetensors", 1000)),
    Case("checkpoint-empty-optimizer", RESUME, 3, "unreadable", _truncate("checkpoint/optimizer.safetensors", 0)),
    Case("checkpoint-state-not-json", RESUME, 3, "not valid JSON", _truncate("checkpoint/state.json", 50)),
    Case("checkpoint-state-fifo", RESUME, 3, "state.json is a named pipe", _replace("checkpoint/state.json", "fifo")),
    Case(
        "checkpoint-weights-folder",
        RESUME,
        3,
        "weights.safetensors is a folder",
        _replace("checkpoint/weights.safetensors", "folder"),
    ),
    Case("checkpoint-weights-endless", RESUME, 3, "is a device", _replace("checkpoint/weights.safetensors", "endless")),
    Case("checkpoint-is-a-file", RESUME, 3, "not a folder", _replace("checkpoint", "file")),
]


def _unblock(folder: Path) -> None:
    """Open every named pipe under ``folder`` for writing once, so a reader blocked on one
    sees its end."""
    for path in folder.rglob("*"):
        if path.is_fifo():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def within(seconds: float, folder: Path, work) -> None:
    """Run ``work()``; fail (after freeing it) if it is still going after ``seconds``.

    It runs in a thread of its own, except a ``--batch`` command (it sets a signal handler,
    which only the main thread may): that one runs here while a timer thread frees the pipes.
    """
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        _unblock(folder)
        thread.join(5)
        pytest.fail(f"still running after {seconds:.0f} s: blocked on a named pipe or an endless file?")
    if failure:
        raise failure[0]


def in_main_thread(seconds: float, folder: Path, work) -> None:
    """``within`` for a command that must run in the main thread: a timer frees the pipes."""
    fired = threading.Event()

    def free() -> None:
        fired.set()
        _unblock(folder)

    timer = threading.Timer(seconds, free)
    timer.start()
    try:
        work()
    finally:
        timer.cancel()
    assert not fired.is_set(), f"still running after {seconds:.0f} s: blocked on a named pipe?"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_sessions_hostile_input(case, interrupted, micro_model_dir, tmp_path):
    world = make_world(tmp_path, micro_model_dir, with_session=False)
    shutil.copytree(interrupted, world.sessions / SESSION, symlinks=True)
    if "endless" in case.id:
        check_in_subprocess(case, world)
        return
    guard = in_main_thread if "--batch" in case.args else within
    guard(LIMIT_S, tmp_path, lambda: check(case, world))
    if "--json" in case.args:
        within(
            LIMIT_S, tmp_path, lambda: _strict_json(CliRunner().invoke(app, [world.fill(a) for a in case.args]).stdout)
        )


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def check_in_subprocess(case: Case, world) -> None:
    """``check`` for a row with an endless device: a reader that does not stop would fill the
    memory (no thread can stop a read), so the command runs in a process of its own, with a
    memory limit and a time limit."""
    import subprocess
    import sys

    from hostile import snapshot

    case.setup(world.tmp)
    before = snapshot(world.sessions)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "tui_unlearn", *(world.fill(a) for a in case.args)]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=180, preexec_fn=_limit_memory)
    assert done.returncode == case.code, (case.id, done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, (case.id, done.stderr[-2000:])
    if case.code != 0:
        lines = done.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: ") and case.fragment in lines[-1], (case.id, done.stderr)
    else:
        assert "--json" not in case.args or _strict_json(done.stdout) is None
    after = snapshot(world.sessions)
    assert {k: v for k, v in after.items() if k in before} == before, case.id


def _strict_json(text: str) -> None:
    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")

    json.loads(text, parse_constant=no_constant)


def _one_number_weight(tmp: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    path = _session(tmp) / "checkpoint" / "weights.safetensors"
    tensors = load_file(str(path))
    tensors[sorted(tensors)[0]] = torch.zeros(1)  # copy_ would spread it over the whole matrix
    save_file(tensors, str(path))


@pytest.mark.slow
def test_a_checkpoint_that_does_not_fit_the_model_is_refused_in_one_line(interrupted, micro_model_dir, tmp_path):
    world = make_world(tmp_path, micro_model_dir, with_session=False)
    shutil.copytree(interrupted, world.sessions / SESSION, symlinks=True)
    case = Case("checkpoint-wrong-shape", RESUME, 3, "is (1,) torch.float32, the model's is (", _one_number_weight)
    # The model is loaded before the tensors can be compared with it: the session says it failed.
    in_main_thread(LIMIT_S * 3, tmp_path, lambda: check(case, world, sessions_untouched=False))
    summary = json.loads((world.sessions / SESSION / "summary.json").read_text())
    assert summary["status"] == "failed" and "cannot be used" in summary["error"]
