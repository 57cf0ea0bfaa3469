"""CONTRIBUTING.md followed literally: its code blocks applied to a copy of the package, then run.

Every block marked ``file=``, ``append=``, ``tuple=`` or ``class=`` and every ``diff`` block of
CONTRIBUTING.md is applied exactly as written to a temporary copy of ``tui_unlearn/``; the copy
must then list the new setting, method, metric and recipe, and run them on the bundled model.
The document and this test read the same text, so neither can drift from the code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "CONTRIBUTING.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(text: str) -> list[tuple[str, dict[str, str], str]]:
    """(language, marks, code) of every fenced block; marks are the ``key=value`` words after the language."""
    out = []
    for lang, info, code in FENCE.findall(text):
        marks = dict(word.split("=", 1) for word in info.split() if "=" in word)
        out.append((lang, marks, code))
    return out


def _indent(code: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in code.splitlines(keepends=True))


def apply_block(root: Path, lang: str, marks: dict[str, str], code: str) -> Path | None:
    """Apply one block to the copy under ``root``; the path it changed (None: not an edit)."""
    if lang == "diff":
        return _apply_diff(root, code)
    if lang != "python" or not marks:
        return None
    (mark, target), *_ = marks.items()
    path_text, _, name = target.partition(":")
    path = root / path_text
    if mark == "file":
        assert not path.exists(), f"{path_text} exists already"
        path.write_text(code)
        return path
    text = path.read_text()
    if mark == "append":
        path.write_text(text.rstrip("\n") + "\n\n\n" + code)
    elif mark == "tuple":  # new lines before the closing parenthesis of NAME = ( ... )
        lines = text.splitlines(keepends=True)
        start = lines.index(f"{name} = (\n")
        end = lines.index(")\n", start)
        path.write_text("".join(lines[:end]) + _indent(code) + "".join(lines[end:]))
    elif mark == "class":  # the last fields of class NAME: before its first method
        lines = text.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.startswith(f"class {name}"))
        method = next(i for i in range(start, len(lines)) if lines[i].startswith("    def "))
        path.write_text("".join(lines[:method]) + _indent(code) + "\n" + "".join(lines[method:]))
    else:
        raise AssertionError(f"unknown mark {mark}= in CONTRIBUTING.md")
    return path


def _apply_diff(root: Path, code: str) -> Path:
    """A unified diff's hunk applied by its text (context and removed lines must appear once)."""
    lines = code.splitlines()
    target = next(line[len("+++ b/") :] for line in lines if line.startswith("+++ "))
    old, new = [], []
    for line in lines:
        if line.startswith(("--- ", "+++ ", "@@")):
            continue
        if line.startswith(("-", " ")):
            old.append(line[1:])
        if line.startswith(("+", " ")):
            new.append(line[1:])
    path = root / target
    text, before = path.read_text(), "\n".join(old) + "\n"
    assert text.count(before) == 1, f"CONTRIBUTING's diff for {target} no longer matches the code"
    path.write_text(text.replace(before, "\n".join(new) + "\n"))
    return path


def test_every_recipe_in_contributing_has_its_marked_blocks():
    found = blocks(DOC.read_text())
    marked = [(lang, marks) for lang, marks, _ in found if lang == "diff" or marks]
    targets = sorted(next(iter(marks.values()), "diff").split(":")[0] for _, marks in marked)
    assert targets == sorted(
        [
            "tui_unlearn/config.py",
            "diff",
            "tui_unlearn/algorithms/my_method.py",
            "tui_unlearn/algorithms/__init__.py",
            "tui_unlearn/metrics/catalog.py",
            "tui_unlearn/recipes/my_recipe.py",
            "tui_unlearn/recipes/__init__.py",
        ]
    )
    assert "--snapshot-update" in DOC.read_text().split("## Adding a method")[0]  # the setting's step says it


@pytest.mark.slow
def test_following_contributing_adds_a_working_setting_method_metric_and_recipe(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "tui_unlearn", copy / "tui_unlearn", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "models_cache").symlink_to(ROOT / "models_cache")
    changed = [p for lang, marks, code in blocks(DOC.read_text()) if (p := apply_block(copy, lang, marks, code))]
    assert len(changed) == 7
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():  # the examples are code the project would accept as written
        for args in (["check", "--no-fix"], ["format", "--check"]):
            lint = subprocess.run([str(ruff), *args, *map(str, changed)], capture_output=True, text=True, cwd=ROOT)
            assert lint.returncode == 0, lint.stdout + lint.stderr

    env = {**os.environ, "PYTHONPATH": str(copy)}
    found = subprocess.run(
        [sys.executable, "-c", FOUND], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert found.returncode == 0, found.stderr
    seen = json.loads(found.stdout)
    assert seen["file"].startswith(str(copy))  # the copy ran, not the checkout
    assert seen["algorithms"][-1] == "my_method" and seen["recipes"][-1] == "my_recipe"
    assert seen["metrics"][-1] == "answer_length" and "warmup_fraction" in seen["tui_settings"]
    for flag in ("--warmup-fraction", "--alpha", "my_method", "my_recipe"):
        assert flag in seen["help"], flag
    assert seen["out_of_range"] == "warmup_fraction must be <= 1, got 2"

    run = [sys.executable, "-m", "tui_unlearn", "--batch", "--sessions-dir", str(tmp_path / "s"), "--jsonl"]
    run += ["--algorithm", "my_method", "--alpha", "0.5", "--recipe", "my_recipe", "--warmup-fraction", "1"]
    run += ["--steps", "3", "--lr", "3e-4", "--eval-every", "0", "--oracle", "none", "--no-calibrate"]
    run += ["--guard-general", "0", "--guard-knowledge", "0", "--no-general-retain"]
    result = subprocess.run(run, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["config"]["warmup_fraction"] == 1.0 and started["config"]["hparams"]["alpha"] == 0.5
    steps = [e for e in events if e["event"] == "step"]
    # Warm-up over all 3 steps: the rate after step 1 is 2/3 of --lr (the default 0.1 would give all of it).
    assert steps[0]["lr"] == pytest.approx(3e-4 * 2 / 3)
    assert all({"loss", "forget_nll", "retain_nll"} <= set(e["losses"]) for e in steps)
    summary = events[-1]["summary"]
    assert summary["status"] == "finished" and summary["recipe"]["name"] == "my_recipe"
    assert set(summary["metrics"]["after"]) >= {"forget", "holdout"} and "retain" not in summary["metrics"]["after"]
    assert summary["metrics"]["after"]["forget"]["answer_length"] >= 0


FOUND = """
import json
from typer.testing import CliRunner
import tui_unlearn
from tui_unlearn.algorithms import all_algorithms
from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig, resolve, settings_for
from tui_unlearn.errors import ConfigError
from tui_unlearn.metrics.registry import all_metrics
from tui_unlearn.params import TUI
from tui_unlearn.recipes import recipe_names

try:
    resolve(RunConfig(warmup_fraction=2.0))
    out_of_range = None
except ConfigError as error:
    out_of_range = str(error)
print(json.dumps({
    "file": tui_unlearn.__file__,
    "algorithms": list(all_algorithms()),
    "metrics": list(all_metrics()),
    "recipes": list(recipe_names()),
    "tui_settings": [p.name for p in settings_for(TUI)],
    "help": CliRunner().invoke(app, ["--batch", "--help"], terminal_width=200).output,
    "out_of_range": out_of_range,
}))
"""
