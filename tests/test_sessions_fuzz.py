"""Fuzzing the session readers: a real session folder, randomly damaged (truncated, bytes
replaced, values swapped for other JSON types, files made folders, named pipes or endless
devices, or deleted), next to an intact one. ``sessions list``, ``sessions show``,
``analyze`` and ``sessions delete`` never raise and never block: they exit 0, 2 (a usage
error, e.g. the damaged session is gone) or 3 (nothing readable to compare), with one line on
stderr, and the intact session is always listed and compared.

Checkpoints are fuzzed the same way (``test_damaged_checkpoints_...``): a damaged one is
loaded, or refused with one line (DataError) before it changes the model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tui_fakes import losses_at, metrics_at
from typer.testing import CliRunner

from tui_unlearn import events as ev
from tui_unlearn.cli import app
from tui_unlearn.sessions import Session

FILES = ("summary.json", "config.json", "events.jsonl", "examples.jsonl")
DOCUMENTED_EXITS = {0, 2, 3}
# A sparse file longer than any reader takes in: it stands for an endless file without
# filling the memory of the test run should a reader fail to stop at its limit (a device
# such as /dev/zero is a row of tests/hostile/test_sessions_hostile.py, run in a subprocess).
ENDLESS = (1 << 30) + 1

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
) | st.integers(min_value=2**63, max_value=10**400)


def build_session(root: Path, label: str) -> Session:
    """A finished session with every file the tool writes, the way the engine writes them."""
    config = {
        "algorithm": label,
        "model": "tiny-authors",
        "forget": "bundled:forget01",
        "retain": "bundled:retain99",
        "holdout": None,
        "steps": 4,
        "hparams": {"beta": 0.1},
    }
    session = Session.create(root, label, config)
    session.append_event(
        ev.RunStarted(session.id, str(session.path), config, 4, {}, {"forget": 4, "retain": 9}).to_dict()
    )
    before = metrics_at(0, 4)
    session.append_event(ev.Evaluation(0, "before", before, 1.0).to_dict())
    for step in range(1, 5):
        session.append_event(ev.StepLosses(step, 4, losses_at(step), 1e-4, 0.5 * step).to_dict())
        if step == 2:
            session.append_event(ev.Evaluation(step, "during", metrics_at(step, 4), 1.5).to_dict())
            session.append_event(
                ev.ProbeAnswers(step, [{"split": "forget", "question": "q?", "current": "a"}]).to_dict()
            )
    after = metrics_at(4, 4)
    session.append_event(ev.Evaluation(4, "after", after, 3.0).to_dict())
    session.write_examples(
        [{"phase": p, "split": "forget", "question": "q?", "answer": "a", "f1": 0.5} for p in ("before", "after")]
    )
    summary = session.update_summary(
        status="finished",
        steps=4,
        total_steps=4,
        seconds=3.2,
        ended="2025-01-01T00:00:10+00:00",
        hparams={"beta": 0.1},
        data={"forget": 4, "retain": 9},
        final_losses=losses_at(4),
        metrics={"before": before, "after": after},
        forget_quality=0.5,
        model_utility=0.8,
        privleak=-3.0,
        oracle={"source": "tiny-authors-retain"},
        field_metrics={
            "before": {"forget_quality": 0.01, "mia_auc": 0.9},
            "after": {"forget_quality": 0.5, "mia_auc": 0.6},
        },
        relearn={
            "steps": 2,
            "forget_accuracy_before_relearn": 0.1,
            "forget_accuracy_after_relearn": 0.3,
            "recovered": 0.2,
        },
        # Keys the engine writes too: each one's type is swapped by the fuzzer like any other.
        recipe={"name": "bundled", "headline": ["forget_quality", "model_utility", "privleak", "mia_auc"]},
        null_reasons={"privleak": "no holdout set"},
        headline_details={"forget_quality": {"basis": "truth_ratio"}},
        scale={"processes": 1, "batch_size": 4, "effective_batch": 4},
        calibration={"stopped_at": 3, "kept_step": 2},
    )
    session.append_event(ev.RunFinished("finished", summary).to_dict())
    return session


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A sessions folder holding a session to damage ("victim") and an intact one."""
    root = tmp_path_factory.mktemp("template")
    victim = build_session(root, "npo")
    victim.path.rename(root / "20250101-100000-npo-vict")
    intact = build_session(root, "grad_diff")
    intact.path.rename(root / "20250101-090000-grad_diff-good")
    return root


VICTIM, INTACT = "20250101-100000-npo-vict", "20250101-090000-grad_diff-good"


def _json_paths(value, prefix=()):
    """Every path (a tuple of keys and indexes) into a parsed JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_paths(item, (*prefix, index))


def _parsed(raw: bytes):
    """The JSON in ``raw``, or None when an earlier damage left none (swapping then
    replaces the whole value)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _replace_at(value, path, new):
    if not path:
        return new
    value[path[0]] = _replace_at(value[path[0]], path[1:], new)
    return value


@st.composite
def damage(draw, folder: Path) -> str:
    """Apply one random corruption to one file of ``folder``; say what was done."""
    name = draw(st.sampled_from(FILES))
    path = folder / name
    kind = draw(st.sampled_from(["truncate", "bytes", "swap", "line", "folder", "delete", "append", "fifo", "endless"]))
    if kind in ("truncate", "bytes", "swap", "line", "append") and not path.is_file():
        kind = "delete"
    if kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: draw(st.integers(0, len(raw)))])
    elif kind == "bytes":
        raw = bytearray(path.read_bytes())
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        junk = draw(st.binary(min_size=1, max_size=8))
        raw[at : at + len(junk)] = junk
        path.write_bytes(bytes(raw))
    elif kind == "swap" and name.endswith(".json"):
        data = _parsed(path.read_bytes())
        target = draw(st.sampled_from(list(_json_paths(data))))
        path.write_text(json.dumps(_replace_at(data, target, draw(json_values))))
        kind = f"swap {target}"
    elif kind in ("swap", "line"):  # one line of a JSON-lines file
        lines = path.read_bytes().split(b"\n") or [b"{}"]
        index = draw(st.integers(0, len(lines) - 1))
        if kind == "swap":
            data = _parsed(lines[index])
            target = draw(st.sampled_from(list(_json_paths(data))))
            new = _replace_at(data, target, draw(json_values))
            kind = f"swap line {index} {target}"
        else:
            new = draw(json_values)
        lines[index] = json.dumps(new).encode()
        path.write_bytes(b"\n".join(lines))
    elif kind == "append":
        with open(path, "ab") as fh:
            fh.write(draw(st.binary(max_size=20)))
    elif kind == "folder":
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        path.mkdir()
    elif kind in ("delete", "fifo", "endless"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "endless":
            with open(path, "wb") as fh:  # past every reader's limit; a device is a hostile row
                fh.truncate(ENDLESS)
    return f"{kind} {name}"


def _unblock(folder: Path) -> None:
    """Open every named pipe under ``folder`` for writing once: a reader blocked on one ends."""
    for path in folder.rglob("*"):
        if path.is_fifo():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass


def _invoke(args: list[str], limit_s: float = 60.0):
    """The CLI's result, in a thread: a command blocked on a named pipe fails the test
    (after being freed) instead of hanging the suite."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(CliRunner().invoke(app, args)), daemon=True)
    thread.start()
    thread.join(limit_s)
    if thread.is_alive():
        for arg in args:
            if Path(arg).is_dir():
                _unblock(Path(arg))
        thread.join(5)
        pytest.fail(f"{args} still running after {limit_s:.0f} s: blocked on a named pipe or an endless file?")
    return out[0]


def run_cli(*args) -> tuple[int, str, str]:
    result = _invoke([str(a) for a in args])
    ok_exit = result.exception is None or isinstance(result.exception, SystemExit)
    assert ok_exit, f"{args} raised {result.exception!r}"
    assert result.exit_code in DOCUMENTED_EXITS, (args, result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, result.stdout, result.stderr


# No shrinking (each example is a few CLI calls; a failure's draws list the damage done) and
# no example database written into the checkout.
@settings(
    max_examples=60,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow  # several seconds: run by .ci/run's second pass
@given(data=st.data())
def test_damaged_sessions_never_crash_the_readers(template, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "sessions"
        shutil.copytree(template, root)
        done = [data.draw(damage(root / VICTIM)) for _ in range(data.draw(st.integers(1, 3)))]
        note = f"damage: {done}"

        code, out, _ = run_cli("sessions", "list", "--sessions-dir", root)
        assert code == 0 and INTACT in out, note
        code, out, _ = run_cli("sessions", "list", "--sessions-dir", root, "--json")
        rows = {row["session_id"]: row for row in json.loads(out, parse_constant=_not_json)}
        assert rows[INTACT]["status"] == "finished", note
        for extra in ([], ["--json"]):
            code, out, _ = run_cli("sessions", "show", VICTIM, "--sessions-dir", root, *extra)
            if code == 0 and extra:
                json.loads(out, parse_constant=_not_json)
        charts = [] if data.draw(st.booleans()) else ["--no-charts"]
        code, out, err = run_cli("analyze", VICTIM, INTACT, "--sessions-dir", root, "--width", 70, *charts)
        assert code in (0, 2), note  # 2: the victim is no longer a session at all
        if code == 0:
            assert "grad_diff" in out, note
        code, _, _ = run_cli(
            "analyze",
            VICTIM,
            "--sessions-dir",
            root,
            "--no-charts",
            "--json",
            Path(tmp) / "c.json",
            "--csv",
            Path(tmp) / "c.csv",
            "--markdown",
            Path(tmp) / "c.md",
        )
        if code == 0:
            json.loads((Path(tmp) / "c.json").read_text())
        code, _, _ = run_cli("sessions", "delete", "--yes", VICTIM, "--sessions-dir", root)
        assert code in (0, 2), note
        code, out, _ = run_cli("sessions", "list", "--sessions-dir", root)
        assert code == 0 and INTACT in out, note


def _not_json(name: str):
    raise AssertionError(f"{name} in --json output: not JSON")


# ---- checkpoints ----

CHECKPOINT_FILES = ("state.json", "weights.safetensors", "optimizer.safetensors")


@st.composite
def checkpoint_damage(draw, folder: Path) -> str:
    """One random corruption of one file of a checkpoint ``folder``; says what was done."""
    import torch
    from safetensors.torch import load_file, save_file

    name = draw(st.sampled_from(CHECKPOINT_FILES))
    path = folder / name
    kinds = ["truncate", "bytes", "folder", "fifo", "endless", "delete"]
    kinds += ["swap"] if name == "state.json" else ["tensor"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("truncate", "bytes", "swap", "tensor") and not path.is_file():
        kind = "delete"
    if kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: draw(st.integers(0, len(raw)))])
    elif kind == "bytes":
        raw = bytearray(path.read_bytes())
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        junk = draw(st.binary(min_size=1, max_size=8))
        raw[at : at + len(junk)] = junk
        path.write_bytes(bytes(raw))
    elif kind == "swap":
        data = _parsed(path.read_bytes())
        target = draw(st.sampled_from(list(_json_paths(data))))
        path.write_text(json.dumps(_replace_at(data, target, draw(json_values))))
        kind = f"swap {target}"
    elif kind == "tensor":  # a tensor swapped for one of another shape or type, dropped, or added
        try:
            tensors = load_file(str(path))
        except Exception:  # an earlier damage left no readable file: start from an empty one
            tensors = {}
        names = sorted(tensors) + ["9.exp_avg", "rng.extra", "0.weight", "junk"]
        target = draw(st.sampled_from(names))
        if draw(st.booleans()) and target in tensors:
            del tensors[target]
            kind = f"drop {target}"
        else:
            shape = draw(st.lists(st.integers(0, 5), max_size=3))
            dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8]))
            tensors[target] = torch.zeros(shape, dtype=dtype)
            kind = f"tensor {target} {shape} {dtype}"
        save_file(tensors, str(path))
    else:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "endless":
            with open(path, "wb") as fh:
                fh.truncate(ENDLESS)
    return f"{kind} {name}"


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory) -> Path:
    """A session folder holding one checkpoint (saved once: its bytes must not vary between
    examples, or hypothesis cannot replay its draws)."""
    from checkpoint_fakes import fake_run

    from tui_unlearn.engine.checkpoint import save_checkpoint

    session = tmp_path_factory.mktemp("checkpointed")
    save_checkpoint(fake_run(session))
    return session


@settings(
    max_examples=60,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_damaged_checkpoints_load_whole_or_are_refused_in_one_line(saved_checkpoint, data):
    import torch
    from checkpoint_fakes import fake_run, weights_of

    from tui_unlearn.engine.checkpoint import CHECKPOINT_DIR, load_checkpoint, verify_checkpoint
    from tui_unlearn.errors import DataError

    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp) / "session"
        shutil.copytree(saved_checkpoint, session)
        folder = session / CHECKPOINT_DIR
        done = [data.draw(checkpoint_damage(folder)) for _ in range(data.draw(st.integers(1, 3)))]
        fresh = fake_run(session, seed=1, done=0)
        before = weights_of(fresh)

        def resume() -> str:
            try:
                step = verify_checkpoint(session, fresh.config)
                assert step is not None and 0 <= step <= fresh.config.steps
                load_checkpoint(fresh, folder)
            except DataError as error:
                assert "\n" not in str(error) and "cannot be used" in str(error), str(error)
                return "refused"
            return "loaded"

        out: list[str] = []
        thread = threading.Thread(target=lambda: out.append(resume()), daemon=True)
        thread.start()
        thread.join(30)
        if thread.is_alive():
            _unblock(session)
            thread.join(5)
            pytest.fail(f"blocked on {done}")
        assert out, f"raised something other than DataError: {done}"
        if out[0] == "refused":  # nothing was changed by a checkpoint that was refused
            assert all(torch.equal(weights_of(fresh)[n], v) for n, v in before.items()), done
            assert fresh.done == 0, done
        else:
            assert 0 <= fresh.done <= fresh.config.steps, done


@pytest.mark.parametrize("word", [-1, 2**32])
def test_a_random_state_word_out_of_32_bits_is_refused(saved_checkpoint, tmp_path, word):
    """What the fuzzer found: a negative Mersenne Twister word made random.setstate raise
    OverflowError, which the load did not turn into its one-line refusal."""
    from checkpoint_fakes import fake_run

    from tui_unlearn.engine.checkpoint import CHECKPOINT_DIR, STATE, verify_checkpoint
    from tui_unlearn.errors import DataError

    session = tmp_path / "session"
    shutil.copytree(saved_checkpoint, session)
    state_path = session / CHECKPOINT_DIR / STATE
    state = json.loads(state_path.read_text())
    state["python_random"][1][206] = word
    state_path.write_text(json.dumps(state))
    with pytest.raises(DataError, match="cannot be used"):
        verify_checkpoint(session, fake_run(session, seed=1, done=0).config)
