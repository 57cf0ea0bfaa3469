"""Third-party methods, metrics and recipes through entry points, from an installed package.

The plugin is a real distribution on disk (a module folder and its ``.dist-info`` with
``entry_points.txt``), put on the ``PYTHONPATH`` of a fresh interpreter, as ``pip install``
would leave it: what the test runs is what a lab's package gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

METHOD = """
from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, HyperParam, LossInputs, nll, plus_retain_nll, retain_weight


def _loss(x: LossInputs) -> dict:
    forget = nll(x.model, x.forget)
    return plus_retain_nll(x, -x.hp["lab_weight"] * forget, {"lab_forget_nll": forget.detach()})


register(
    Algorithm(
        name="lab_ascent",
        description="A lab's own gradient ascent (a plugin).",
        loss=_loss,
        hyperparams=(HyperParam("lab_weight", "float", 1.0, "weight of the ascent term", 0.0, 10.0), retain_weight()),
        needs_retain=True,
    )
)
"""

METRIC = """
from tui_unlearn.metrics.registry import LOWER, Metric, register

register(
    Metric(
        "answer_tokens",
        "answer tokens",
        better=LOWER,
        per_example=lambda e: e.main.num_tokens,
        field_metric=False,
        help="tokens in the gold answer (a plugin's metric)",
    )
)
"""

# An object entry point: the module declares the recipe, the registry registers it.
RECIPE = """
from tui_unlearn.metrics.registry import SUMMARY_HEADLINES
from tui_unlearn.recipes.base import EvalSplit, Recipe
from tui_unlearn.recipes.headline import tofu_headline

RECIPE = Recipe(
    name="lab_quick",
    description="forget and holdout only, 8 records each (a plugin's recipe)",
    splits=(
        EvalSplit("forget", "run:forget"),
        EvalSplit("holdout", "run:holdout", generate=False, truth_ratio=False, required=False),
    ),
    headline=tofu_headline,
    headline_keys=SUMMARY_HEADLINES,
    max_new_tokens=16,
    eval_samples=8,
)
"""

ENTRY_POINTS = """
[tui_unlearn.methods]
lab_ascent = plugin_pkg.method

[tui_unlearn.metrics]
answer_tokens = plugin_pkg.metric

[tui_unlearn.recipes]
lab_quick = plugin_pkg.recipe:RECIPE
"""


def write_dist(site: Path, name: str, modules: dict[str, str], entry_points: str) -> None:
    """A distribution ``name`` 0.1 as an installer leaves it: its package and its dist-info."""
    package = site / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture()
def site(tmp_path) -> Path:
    """A folder holding a working plugin and a broken one."""
    site = tmp_path / "site"
    write_dist(site, "plugin_pkg", {"method": METHOD, "metric": METRIC, "recipe": RECIPE}, ENTRY_POINTS)
    write_dist(
        site,
        "broken_pkg",
        {"method": "raise RuntimeError('the lab server is unreachable')\n", "empty": ""},
        "[tui_unlearn.methods]\nbroken = broken_pkg.method\n\n[tui_unlearn.metrics]\nnothing = broken_pkg.empty\n",
    )
    return site


def run_tool(site: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    return subprocess.run(
        [sys.executable, "-m", "tui_unlearn", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


OBJECTS = """
from tui_unlearn.algorithms.base import Algorithm
from tui_unlearn.metrics.registry import Metric

METHOD = Algorithm(name="lab_method", description="a plugin", loss=lambda x: {})
TAKEN = Algorithm(name="npo", description="a plugin taking a built-in's name", loss=lambda x: {})
METRIC = Metric("lab_metric", "lab metric", per_example=lambda e: 1.0)


def not_a_method():
    pass
"""


def test_entry_points_register_objects_and_report_each_broken_plugin_in_one_line(tmp_path, monkeypatch, capsys):
    """In process, into registries of the test's own (the tool's registries stay as they are)."""
    from tui_unlearn import plugins
    from tui_unlearn.algorithms.base import Algorithm
    from tui_unlearn.metrics.registry import Metric

    site = tmp_path / "site"
    write_dist(
        site,
        "objs_pkg",
        {"objects": OBJECTS, "broken": "import a_module_nobody_installed\n", "empty": ""},
        """
        [tui_unlearn.methods]
        good = objs_pkg.objects:METHOD
        taken = objs_pkg.objects:TAKEN
        function = objs_pkg.objects:not_a_method
        broken = objs_pkg.broken

        [tui_unlearn.metrics]
        metric = objs_pkg.objects:METRIC
        empty = objs_pkg.empty
        """,
    )
    monkeypatch.syspath_prepend(str(site))
    for name in [m for m in sys.modules if m.startswith("objs_pkg")]:
        monkeypatch.delitem(sys.modules, name)

    methods: dict = {"npo": object()}

    def register(item):
        if item.name in methods:
            raise ValueError(f"algorithm {item.name!r} registered twice")
        methods[item.name] = item

    try:
        assert plugins.load_plugins(plugins.METHODS, Algorithm, register, lambda: methods) == ["lab_method"]
        metrics: dict = {}
        added = plugins.load_plugins(plugins.METRICS, Metric, lambda m: metrics.setdefault(m.name, m), lambda: metrics)
        assert added == ["lab_metric"] and metrics["lab_metric"].display == "lab metric"
    finally:
        for name in [m for m in sys.modules if m.startswith("objs_pkg")]:
            del sys.modules[name]
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(line.startswith("tui-unlearn: skipped the ") for line in lines)
    said = {line.split(" plugin ", 1)[1].split(" ", 1)[0]: line for line in lines}
    assert "ModuleNotFoundError: No module named 'a_module_nobody_installed'" in said["'broken'"]
    assert "from objs_pkg" in said["'broken'"]
    assert "ValueError: algorithm 'npo' registered twice" in said["'taken'"]
    assert "names a function, not a module or a Algorithm" in said["'function'"]
    assert "registered no metric" in said["'empty'"]


@pytest.mark.slow
def test_plugins_show_in_help_and_a_broken_one_is_one_line(site):
    result = run_tool(site, "--batch", "--help")
    assert result.returncode == 0, result.stderr
    assert "lab_ascent" in result.stdout and "--lab-weight" in result.stdout
    assert "lab_quick" in result.stdout  # the plugin recipe is a --recipe choice
    problems = [line for line in result.stderr.splitlines() if "plugin" in line]
    assert len(problems) == 1, result.stderr
    assert "'broken'" in problems[0] and "broken_pkg" in problems[0]
    assert "RuntimeError: the lab server is unreachable" in problems[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_plugin_method_metric_and_recipe_run_from_the_cli(site, tmp_path):
    result = run_tool(
        site,
        "--batch",
        "--algorithm",
        "lab_ascent",
        "--lab-weight",
        "0.5",
        "--recipe",
        "lab_quick",
        "--steps",
        "2",
        "--eval-every",
        "1",
        "--probe-samples",
        "2",
        "--oracle",
        "none",
        "--no-general-retain",
        "--guard-general",
        "0",
        "--guard-knowledge",
        "0",
        "--no-calibrate",
        "--sessions-dir",
        str(tmp_path / "sessions"),
        "--jsonl",
    )
    assert result.returncode == 0, result.stderr
    assert "skipped the method plugin 'broken'" in result.stderr  # the tool works without it
    assert "skipped the metric plugin 'nothing'" in result.stderr and "registered no metric" in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    started = next(e for e in events if e["event"] == "started")
    assert started["config"]["algorithm"] == "lab_ascent" and started["config"]["hparams"]["lab_weight"] == 0.5
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2 and all("lab_forget_nll" in e["losses"] for e in steps)
    summary = next(e for e in events if e["event"] == "finished")["summary"]
    assert summary["recipe"]["name"] == "lab_quick"
    after = summary["metrics"]["after"]
    assert set(after) >= {"forget", "holdout"} and "retain" not in after
    # The plugin metric is computed on every split and every evaluation, before and during too.
    assert after["forget"]["answer_tokens"] > 1
    during = [e for e in events if e["event"] == "evaluation" and e["phase"] == "during"]
    assert during and all("answer_tokens" in e["metrics"]["forget"] for e in during)
