"""Fuzzing the session readers: a real session folder, randomly damaged (truncated, bytes
replaced, values swapped for other JSON types, files made folders or deleted), next to an
intact one. ``sessions list``, ``sessions show`` and ``analyze`` never raise: they exit 0,
2 (a usage error, e.g. the damaged session is gone) or 3 (nothing readable to compare),
with one line on stderr, and the intact session is always listed and compared.
"""

from __future__ import annotations

import json
import shutil
import tempfile
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
    kind = draw(st.sampled_from(["truncate", "bytes", "swap", "line", "folder", "delete", "append"]))
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
    elif kind == "delete":
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return f"{kind} {name}"


def run_cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
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
        rows = {row["session_id"]: row for row in json.loads(out)}
        assert rows[INTACT]["status"] == "finished", note
        for extra in ([], ["--json"]):
            run_cli("sessions", "show", VICTIM, "--sessions-dir", root, *extra)
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
