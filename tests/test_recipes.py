"""Evaluation recipes as declared data: the registry, the settings they decide, the
bundled recipe (today's default evaluation) and the reasons a headline number is None."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.config import SETTINGS, RunConfig, resolve
from tui_unlearn.data.benchmark import SPLITS as BENCHMARK_SPLITS
from tui_unlearn.data.run_data import load_run_data
from tui_unlearn.errors import ConfigError
from tui_unlearn.metrics.registry import all_metrics
from tui_unlearn.params import CLI, EVAL, TUI
from tui_unlearn.recipes import all_recipes, get_recipe, recipe_names
from tui_unlearn.recipes.base import Headline
from tui_unlearn.recipes.plan import build_plan, record_id


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_registry_and_the_recipe_setting():
    assert recipe_names() == ("bundled", "tofu", "muse", "wmdp")
    param = SETTINGS["recipe"]
    assert param.choices == recipe_names() and param.default == "bundled"
    assert {CLI, EVAL, TUI} <= param.faces
    with pytest.raises(ConfigError, match="unknown recipe"):
        get_recipe("nope")
    metrics = all_metrics()
    for recipe in all_recipes().values():
        assert recipe.headline_keys and all(k in metrics for k in recipe.headline_keys), recipe.name
        assert recipe.splits and recipe.max_new_tokens > 0 and recipe.command


def test_recipe_flags_in_both_commands():
    for args in (["--batch", "--help"], ["eval", "--help"]):
        r = cli(*args)
        assert r.exit_code == 0
        for flag in ("--recipe", "--forget-split", "--recipe-data", "--retain-eval", "--max-new-tokens"):
            assert flag in r.stdout, (args, flag)
    r = cli("--batch", "--recipe", "nope")
    assert r.exit_code == 2 and "bundled" in r.stderr


def test_the_recipe_decides_unset_settings_only():
    default = resolve(RunConfig())
    assert (default.recipe, default.forget_split, default.max_new_tokens, default.eval_samples) == (
        "bundled",
        "forget10",
        48,
        100,
    )
    assert (default.forget, default.retain, default.oracle) == (
        "bundled:forget10",
        "bundled:retain90",
        "tiny-authors-retain",
    )
    mine = resolve(RunConfig(recipe="tofu", max_new_tokens=12, eval_samples=30), training=False)
    assert (mine.max_new_tokens, mine.eval_samples) == (12, 30)
    assert resolve(RunConfig(forget_split="forget05")).forget == "bundled:forget05"
    with pytest.raises(ConfigError, match="not a split of the tofu recipe"):
        resolve(RunConfig(recipe="tofu", forget_split="forget50"))
    with pytest.raises(ConfigError, match="disagree"):
        resolve(RunConfig(forget="bundled:forget01", forget_split="forget05"))
    # resolving twice changes nothing (a session's config.json runs again as it ran)
    again = resolve(resolve(RunConfig(recipe="tofu"), training=False), training=False)
    assert again == resolve(RunConfig(recipe="tofu"), training=False)


def test_bundled_plan_is_todays_samples():
    from tui_unlearn.engine.inputs import eval_splits_for

    config = resolve(RunConfig())
    data = load_run_data(config)
    plan = build_plan(config, data)
    today = eval_splits_for(config, data)
    for name in ("forget", "retain", "holdout"):
        assert plan.splits[name] == today[name]
    assert [len(plan.splits[n]) for n in ("forget", "retain", "holdout")] == [100, 100, 100]
    assert plan.describe()["splits"]["retain"]["of"] == 900


def test_bundled_utility_splits_or_the_reason_they_are_missing():
    config = resolve(RunConfig())
    plan = build_plan(config, load_run_data(config))
    if "real_authors" in BENCHMARK_SPLITS:
        assert len(plan.splits["real_authors"]) and len(plan.splits["world_facts"])
        assert all(r["perturbed_answers"] and not r["paraphrased_answer"] for r in plan.splits["world_facts"])
    else:
        assert set(plan.missing) == {"real_authors", "world_facts"}
        assert "not in this version of the bundled benchmark" in plan.missing["real_authors"]


def test_bundled_utility_splits_are_not_used_for_other_data(tmp_path):
    forget = tmp_path / "f.jsonl"
    forget.write_text(json.dumps({"question": "Q?", "answer": "A."}) + "\n")
    config = resolve(RunConfig(forget=str(forget), model="tiny-authors"))
    plan = build_plan(config, load_run_data(config))
    assert "real_authors" not in plan.splits
    if "real_authors" in BENCHMARK_SPLITS:
        assert "is not from it" in plan.missing["real_authors"]


def test_headline_records_a_reason_for_every_none():
    h = Headline()
    h.set("a", 0.5)
    h.set("b", None, "why b")
    h.set("c", float("nan"), "why c")
    assert h.values == {"a": 0.5, "b": None, "c": None}
    assert h.reasons == {"b": "why b", "c": "why c"}
    h.set("b", 1.0)
    assert "b" not in h.reasons


def test_record_ids_are_stable_and_content_based():
    a = {"question": "Q?", "answer": "A."}
    assert record_id(a) == record_id(dict(a)) and len(record_id(a)) == 16
    assert record_id(a) != record_id({"question": "Q?", "answer": "B."})
    assert record_id({"prompt": "p", "gt": "g"}) != record_id({"prompt": "p", "gt": "h"})


@pytest.fixture(scope="module")
def bundled_eval(tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions")
    r = cli("eval", "--eval-samples", "10", "--sessions-dir", root)
    assert r.exit_code == 0, r.stderr
    table = r.stdout
    session = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    return table, json.loads((session / "summary.json").read_text())


def test_bundled_eval_summary_names_the_recipe_and_the_reasons(bundled_eval):
    table, summary = bundled_eval
    recipe = summary["recipe"]
    assert recipe["name"] == "bundled" and recipe["forget_split"] == "forget10" and recipe["max_new_tokens"] == 48
    assert recipe["splits"]["forget"]["records"] == 10 and recipe["splits"]["forget"]["source"] == "bundled:forget10"
    assert isinstance(summary["forget_quality"], float)  # the bundled oracle is the default
    assert set(summary["null_reasons"]) <= {"model_utility"}
    if "real_authors" in BENCHMARK_SPLITS:
        assert isinstance(summary["model_utility"], float)
        assert len(summary["headline_details"]["after"]["model_utility_parts"]) == 9
    else:
        assert summary["model_utility"] is None
        assert "needs nine numbers" in summary["null_reasons"]["model_utility"]
        # the batch table says why, in one line per number
        assert "model utility: none, TOFU's model utility needs nine numbers" in table


def test_null_reasons_without_an_oracle(micro_model_dir, tmp_path):
    forget = tmp_path / "forget.jsonl"
    forget.write_text(
        "".join(json.dumps({"question": f"What is fact {i}?", "answer": f"Fact {i} is blue."}) + "\n" for i in range(4))
    )
    r = cli("eval", "--model", micro_model_dir, "--forget", forget, "--sessions-dir", tmp_path / "s", "--json")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    reasons = obj["null_reasons"]
    assert set(reasons) == {"forget_quality", "model_utility", "retain_utility", "privleak", "mia_auc"}
    # records without perturbed answers still have a forget quality (their answer losses): the oracle is missing
    assert reasons["forget_quality"].startswith("no oracle: pass --oracle")
    assert "pass --retain" in reasons["retain_utility"]
    assert "holdout" in reasons["mia_auc"]
    assert all("\n" not in why for why in reasons.values())


def test_the_batch_table_shows_recipe_numbers_and_reasons():
    from tui_unlearn.analysis.tables import before_after_table

    summary = {
        "kind": "eval",
        "model": "m",
        "status": "finished",
        "seconds": 1.0,
        "metrics": {"after": {"forget": {"choice_accuracy": 0.25}}},
        "recipe": {"name": "wmdp", "headline": ["wmdp_accuracy", "mmlu_accuracy"]},
        "wmdp_accuracy": 0.25,
        "mmlu_accuracy": None,
        "null_reasons": {"mmlu_accuracy": "no utility split: mmlu.json is missing"},
    }
    table = before_after_table(summary)
    assert "wmdp accuracy 0.250  mmlu accuracy -" in table
    assert "mmlu accuracy: none, no utility split: mmlu.json is missing" in table.splitlines()


def test_bundled_model_utility_has_nine_parts_when_the_utility_splits_exist(monkeypatch):
    """The bundled benchmark's utility splits come from another branch of work; whatever
    version is installed, a benchmark that has them makes the bundled recipe's model
    utility TOFU's nine-part one (stand-in records here, shaped as TOFU's: an answer and
    three perturbed ones, no paraphrase)."""
    from tui_unlearn.data import benchmark
    from tui_unlearn.data.records import make_record
    from tui_unlearn.models.loading import load_model
    from tui_unlearn.recipes import sources
    from tui_unlearn.recipes.evaluate import evaluate_plan

    stand_in = {
        "bundled:real_authors": [
            make_record(
                f"Who wrote book {i}?", f"Author {i}.", perturbed_answers=[f"Author {i + j}." for j in (1, 2, 3)]
            )
            for i in range(4)
        ],
        "bundled:world_facts": [
            make_record(
                f"What is the capital of land {i}?",
                f"City {i}.",
                perturbed_answers=[f"City {i + j}." for j in (1, 2, 3)],
            )
            for i in range(4)
        ],
    }
    monkeypatch.setattr(benchmark, "SPLITS", (*benchmark.SPLITS, "real_authors", "world_facts"))
    real_read = sources.read_split
    monkeypatch.setattr(sources, "read_split", lambda spec, task: stand_in.get(spec) or real_read(spec, task))
    config = resolve(RunConfig(eval_samples=4, max_new_tokens=6))
    plan = build_plan(config, load_run_data(config))
    assert [len(plan.splits[n]) for n in ("real_authors", "world_facts")] == [4, 4] and not plan.missing
    loaded = load_model("tiny-authors", device="cpu")
    result = evaluate_plan(plan, loaded.model, loaded.tokenizer)
    h = plan.headline(result, None)
    assert isinstance(h.values["model_utility"], float) and "model_utility" not in h.reasons
    assert len(h.details["model_utility_parts"]) == 9
    assert set(h.reasons) == {"forget_quality", "privleak"}  # no oracle given here
