"""Hostile inputs on the data, config and sweep side: each row a bad thing given on the command
line, the exit code and the words of the one-line error it must get (issue 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import Case, check, make_world

LONG = "n" * 300  # one name over the 255 bytes file systems allow
BATCH = ("--batch", "--sessions-dir", "{sessions}", "--model", "{model}", "--steps", "1", "--max-new-tokens", "4")
RUN = (*BATCH, "--forget", "{forget}", "--retain", "{retain}")
SWEEP = ("sweep", "--sessions-dir", "{sessions}", "--model", "{model}", "--steps", "1", "--max-new-tokens", "4")
SWEEP_RUN = (*SWEEP, "--forget", "{forget}", "--retain", "{retain}", "--no-charts", "--grid", "lr=1e-3,2e-3")


def write(name: str, data: bytes | str):
    def setup(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return setup


def fifo(name: str):
    def setup(tmp: Path) -> None:
        if not (tmp / name).exists():
            os.mkfifo(tmp / name)

    return setup


def sparse(name: str, size: int):
    """A file that says it holds ``size`` bytes and takes no disk: bigger than any data limit."""

    def setup(tmp: Path) -> None:
        with open(tmp / name, "wb") as fh:
            fh.truncate(size)

    return setup


def damaged_sweep(name: str):
    def setup(tmp: Path) -> None:
        (tmp / name).mkdir(exist_ok=True)
        (tmp / name / "sweep.json").write_text('{"id": "x", "identi')

    return setup


def dangling(name: str):
    def setup(tmp: Path) -> None:
        if not (tmp / name).is_symlink():
            (tmp / name).symlink_to(tmp / "gone" / "data.jsonl")

    return setup


SURROGATE = '{"question": "q\\ud800", "answer": "x"}\n'  # valid JSON, a lone UTF-16 half inside
SEPARATORS = '{"question": "Where\u2028was it?", "answer": "There\u0085and then."}\n'  # LS and NEL, unescaped

CASES = [
    # Special files: refused by what they are, before any open could block or read forever.
    Case(
        "fifo-forget",
        (*BATCH, "--forget", "{tmp}/pipe.jsonl", "--retain", "{retain}"),
        3,
        "is a FIFO",
        fifo("pipe.jsonl"),
    ),
    Case(
        "fifo-retain",
        (*BATCH, "--forget", "{forget}", "--retain", "{tmp}/pipe2.json"),
        3,
        "is a FIFO",
        fifo("pipe2.json"),
    ),
    Case("dev-zero", (*BATCH, "--forget", "/dev/zero", "--retain", "{retain}"), 3, "/dev/zero is a character device"),
    Case(
        "endless-file",
        (*BATCH, "--forget", "{tmp}/huge.jsonl", "--retain", "{retain}"),
        3,
        "raise it with TUI_UNLEARN_MAX_DATA_MB=",
        sparse("huge.jsonl", 1025 * 2**20),
    ),
    Case("root-folder", (*BATCH, "--forget", "/", "--retain", "{retain}"), 3, "/ is the root of the file system"),
    Case(
        "dangling-link",
        (*BATCH, "--forget", "{tmp}/link.jsonl", "--retain", "{retain}"),
        3,
        "is a link to",
        dangling("link.jsonl"),
    ),
    # A name too long for any file system: the same one check for every path option.
    Case("long-forget", (*BATCH, "--forget", f"{{tmp}}/{LONG}.jsonl"), 2, "forget has a name of 306 bytes"),
    Case("long-retain", (*RUN[:-1], f"{{tmp}}/{LONG}.json"), 2, "retain has a name of 305 bytes"),
    Case("long-holdout", (*RUN, "--holdout", f"/x/{LONG}/h.json"), 2, "holdout has a name of 300 bytes"),
    Case("long-retain-eval", (*RUN, "--retain-eval", f"{LONG}.json"), 2, "retain_eval has a name of 305 bytes"),
    Case("long-model", ("--batch", "--model", f"{{tmp}}/{LONG}", "--forget", "{forget}"), 2, "model has a name"),
    Case("long-config", ("--batch", "--config", f"{{tmp}}/{LONG}.toml"), 2, "--config has a name of 305 bytes"),
    Case("long-sessions-dir", ("--batch", "--sessions-dir", f"{{tmp}}/{LONG}"), 2, "--sessions-dir has a name"),
    Case("long-sweep-dir", (*SWEEP_RUN, "--sweep-dir", f"{{tmp}}/{LONG}/s"), 2, "--sweep-dir has a name of 300"),
    Case("long-analyze-csv", ("analyze", "x", "--csv", f"{{tmp}}/{LONG}.csv"), 2, "--csv has a name of 304 bytes"),
    Case("long-path-total", (*BATCH, "--forget", "/a" * 2100), 2, "over the 4095 a path may have"),
    # What the data holds.
    Case(
        "lone-surrogate",
        (*BATCH, "--forget", "{tmp}/surrogate.jsonl", "--retain", "{retain}"),
        3,
        "line 1 of {tmp}/surrogate.jsonl: its question holds a lone surrogate (\\ud800)",
        write("surrogate.jsonl", SURROGATE),
    ),
    Case(
        "ragged-columns",
        (*BATCH, "--forget", "{tmp}/ragged.json", "--retain", "{retain}"),
        3,
        "holds columns of different lengths (question 2, answer 1)",
        write("ragged.json", '{"question": ["a", "b"], "answer": ["x"]}'),
    ),
    Case(
        "jsonl-line-separators",
        (*BATCH, "--forget", "{tmp}/separators.jsonl", "--retain", "{retain}", "--eval-samples", "1"),
        0,
        "",
        write("separators.jsonl", SEPARATORS),
    ),
    # --retain-eval is asked for by name: a set that cannot be used fails the run.
    Case("retain-eval-missing", (*RUN, "--retain-eval", "{tmp}/nowhere.json"), 3, "--retain-eval {tmp}/nowhere.json"),
    Case(
        "retain-eval-empty",
        (*RUN, "--retain-eval", "{tmp}/empty.jsonl"),
        3,
        "holds no records",
        write("empty.jsonl", ""),
    ),
    Case(
        "retain-eval-binary",
        (*RUN, "--retain-eval", "{tmp}/binary.jsonl"),
        3,
        "is not UTF-8 text",
        write("binary.jsonl", b"\x89PNG\r\n\x1a\n\xff\xfe\x00"),
    ),
    # Config files.
    Case(
        "config-json-bom",
        ("--config", "{tmp}/bom.json", "--print-config"),
        0,
        "",
        write("bom.json", b'\xef\xbb\xbf{"steps": 3}'),
    ),
    Case(
        "config-toml-bom",
        ("--config", "{tmp}/bom.toml", "--print-config"),
        0,
        "",
        write("bom.toml", b"\xef\xbb\xbfsteps = 3\n"),
    ),
    # Sweeps.
    Case(
        "grid-without-values", (*SWEEP_RUN[:-2], "--grid", "beta=,", "-a", "npo"), 2, "--grid 'beta=,' lists no values"
    ),
    Case("sweep-dir-is-file", (*SWEEP_RUN, "--sweep-dir", "{forget}"), 2, "is a file, or a part of its path is"),
    Case("sweep-dir-below-file", (*SWEEP_RUN, "--sweep-dir", "{forget}/s"), 2, "is a file, or a part of its path is"),
    Case(
        "sweep-json-damaged-rerun",
        (*SWEEP_RUN, "--sweep-dir", "{tmp}/damaged-sweep"),
        3,
        "sweep.json is damaged",
        damaged_sweep("damaged-sweep"),
    ),
    Case(
        "sweep-json-damaged-analyze",
        ("analyze", "{tmp}/damaged-sweep2", "--no-charts"),
        3,
        "sweep.json is damaged",
        damaged_sweep("damaged-sweep2"),
    ),
    Case(
        "sweep-all-trials-fail-early",
        (*SWEEP[:-4], "--forget", "{tmp}/nothing.jsonl", "--retain", "{retain}", "--grid", "lr=1e-3,2e-3"),
        3,
        "every trial failed before a session existed (2 of 2): forget set: file not found",
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, micro_model_dir):
    """One world for the table: each row names its own files under it."""
    return make_world(tmp_path_factory.mktemp("inputs"), micro_model_dir)


class TookTooLong(Exception):
    pass


def check_in_time(case: Case, world, seconds: int = 60) -> None:
    """``check`` with an alarm: a row that blocks (a FIFO opened for reading) fails, not hangs.

    The alarm interrupts a blocking open() in this (the main) thread: the CLI's own signal
    handling needs the main thread, so the row cannot run in another one.
    """

    def alarm(signum, frame):
        raise TookTooLong(f"{case.id}: still running after {seconds} s (blocked?)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        check(case, world)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_input(case: Case, world) -> None:
    world_case = Case(case.id, case.args, case.code, world.fill(case.fragment), case.setup)
    check_in_time(world_case, world)


def test_data_in_a_folder_that_cannot_be_entered(world, monkeypatch) -> None:
    """Root enters every folder, so the refusal is made by the OS call itself."""
    locked = world.tmp / "locked"
    locked.mkdir(exist_ok=True)
    (locked / "forget.jsonl").write_text(world.forget.read_text())
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if str(path).startswith(str(locked) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    case = Case(
        "folder-not-enterable",
        (*BATCH, "--forget", f"{locked}/forget.jsonl", "--retain", "{retain}"),
        3,
        "permission denied on a folder of its path",
    )
    check_in_time(case, world)
    (locked / "run.json").write_text('{"steps": 1}')
    config = Case("config-not-enterable", ("--config", f"{locked}/run.json", "--print-config"), 2, "permission denied")
    check_in_time(config, world)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root enters every folder")
def test_data_in_a_folder_without_search_permission(world) -> None:
    locked = world.tmp / "really-locked"
    locked.mkdir(exist_ok=True)
    (locked / "forget.jsonl").write_text(world.forget.read_text())
    locked.chmod(0o600)
    try:
        case = Case(
            "folder-no-x",
            (*BATCH, "--forget", f"{locked}/forget.jsonl", "--retain", "{retain}"),
            3,
            "permission denied",
        )
        check_in_time(case, world)
    finally:
        locked.chmod(0o700)


def test_sweep_dir_that_cannot_be_created(world, monkeypatch) -> None:
    """Root writes everywhere, so the refusal is made by the OS call itself."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == "unwritable":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    case = Case(
        "sweep-dir-unwritable",
        (*SWEEP_RUN, "--sweep-dir", "{tmp}/unwritable"),
        2,
        "can't create the sweep folder {tmp}/unwritable: permission denied",
    )
    check_in_time(Case(case.id, case.args, case.code, world.fill(case.fragment)), world)


def test_endless_standard_input(world) -> None:
    """``--forget -`` fed from /dev/zero, a real process's standard input, stops at the size limit."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    args = [world.fill(a) for a in (*BATCH, "--forget", "-", "--retain", "{retain}")]
    with open("/dev/zero", "rb") as endless:
        done = subprocess.run(
            [sys.executable, "-m", "tui_unlearn", *args],
            stdin=endless,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TUI_UNLEARN_MAX_DATA_MB": "1"},
        )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: standard input holds more than the size limit")
    assert "TUI_UNLEARN_MAX_DATA_MB=4" in done.stderr and "Traceback" not in done.stderr
