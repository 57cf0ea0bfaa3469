"""The tofu recipe: TOFU's published headline numbers from its authors' per-example logs,
through the recipe's own aggregation; and the recipe end to end on TOFU's real files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.errors import DataError
from tui_unlearn.metrics.evaluate import result_from_examples
from tui_unlearn.metrics.registry import Example
from tui_unlearn.metrics.scoring import AnswerScore
from tui_unlearn.oracle import from_result
from tui_unlearn.recipes.plan import EvalPlan, build_plan
from tui_unlearn.recipes.tofu import RECIPE as TOFU

DATA = Path(__file__).parent / "data"
# ../shared beside the checkout; a git worktree elsewhere points TUI_UNLEARN_TOFU_DIR at
# shared/datasets/tofu (as tests/test_data_tofu.py does), and the reference logs sit beside it.
_TOFU_OVERRIDE = os.environ.get("TUI_UNLEARN_TOFU_DIR")
SHARED = Path(_TOFU_OVERRIDE).resolve().parents[1] if _TOFU_OVERRIDE else Path(__file__).resolve().parents[2] / "shared"
LEGACY_FILES = SHARED / "reference" / "tofu-legacy-eval"

# TOFU's published figures for Llama-2-7b-chat, full vs retain90 (reference README).
PUBLISHED_FORGET_QUALITY = 1.834e-21
PUBLISHED_MODEL_UTILITY = 0.6227
PUBLISHED_PARTS = {
    "retain.probability": 0.9895,
    "retain.rouge_l": 0.9857,
    "retain.truth_ratio": 0.4747,
    "real_authors.relative_probability": 0.4555,
    "real_authors.rouge_l": 0.9330,
    "real_authors.truth_ratio": 0.5962,
    "world_facts.relative_probability": 0.4186,
    "world_facts.rouge_l": 0.8825,
    "world_facts.truth_ratio": 0.5390,
}


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# ---- the published numbers, from the per-example logs -------------------------------


def _score(loss: float, n: int = 1) -> AnswerScore:
    empty = np.zeros(0, dtype=np.float32)
    return AnswerScore(loss, n, float("nan"), float("nan"), empty, empty, loss * n)


def examples_from_items(split_items: dict[str, list]) -> list[Example]:
    """Examples as our evaluation would have scored them, from TOFU's per-item log values:
    [avg_gt_loss, num_token_gt, avg_paraphrased_loss, perturbed losses(, generation, gold)].

    On real authors and world facts TOFU's truth-ratio base is the answer scored a second
    time (``base_answer_key: answer``); its log keeps that score as the "paraphrased" one.
    """
    out = []
    for split, items in split_items.items():
        for gt, n, para, perturbed, *text in items:
            generated, gold = text if text else (None, "")
            record = {"question": "", "answer": gold, "group": ""}
            out.append(
                Example(
                    split=split,
                    kind="qa",
                    record=record,
                    gold=gold,
                    main=_score(gt, n),
                    generated=generated,
                    paraphrased=_score(para),
                    perturbed=[_score(x) for x in perturbed],
                )
            )
    return out


def tofu_plan() -> EvalPlan:
    return EvalPlan(TOFU, "forget10", 200, 0, 512)


def headline_from(full_items, retain90_items):
    target = result_from_examples(examples_from_items(full_items))
    oracle = from_result(result_from_examples(examples_from_items(retain90_items)), "retain90", "session")
    return tofu_plan().headline(target, oracle)


def check_published(h):
    assert h.values["forget_quality"] == pytest.approx(PUBLISHED_FORGET_QUALITY, rel=1e-3)
    assert h.values["model_utility"] == pytest.approx(PUBLISHED_MODEL_UTILITY, rel=1e-3)
    parts = h.details["model_utility_parts"]
    assert set(parts) == set(PUBLISHED_PARTS)
    for key, published in PUBLISHED_PARTS.items():
        # the README rounds to 4 digits; ROUGE-L is recomputed here from their generations
        assert parts[key] == pytest.approx(published, abs=6e-5), key
    assert "forget_quality" not in h.reasons and "model_utility" not in h.reasons


def test_published_headline_from_the_embedded_logs():
    legacy = json.loads((DATA / "tofu_legacy_examples.json").read_text())
    assert [len(legacy["full"][s]) for s in ("forget", "retain", "real_authors", "world_facts")] == [300, 300, 100, 117]
    check_published(headline_from(legacy["full"], legacy["retain90"]))


def test_the_three_part_utility_is_not_tofus():
    # What the retain split alone gives (the old model utility): not the published number.
    legacy = json.loads((DATA / "tofu_legacy_examples.json").read_text())
    h = headline_from({"forget": legacy["full"]["forget"], "retain": legacy["full"]["retain"]}, legacy["retain90"])
    assert h.values["model_utility"] is None
    assert "real_authors" in h.reasons["model_utility"] and "world_facts" in h.reasons["model_utility"]
    three = list(h.details["model_utility_parts"].values())
    assert 3 / sum(1 / v for v in three) == pytest.approx(0.726, abs=1e-3)


def _items_from_shared(log: dict, with_text: bool) -> list:
    keys = sorted(log["avg_gt_loss"], key=int)
    rows = []
    for k in keys:
        row = [
            log["avg_gt_loss"][k],
            log["num_token_gt"][k],
            log["avg_paraphrased_loss"][k],
            log["average_perturb_loss"][k],
        ]
        if with_text:
            row += log["generated_text"][k][1:3]
        rows.append(row)
    return rows


@pytest.mark.skipif(not LEGACY_FILES.is_dir(), reason="the shared TOFU reference logs are not beside the checkout")
def test_published_headline_from_the_shared_logs():
    full = json.loads((LEGACY_FILES / "ft_epoch5_lr1e-05_llama2-7b_full_wd0.01.json").read_text())
    r90 = json.loads((LEGACY_FILES / "ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01.json").read_text())
    full_items = {
        "forget": _items_from_shared(full["eval_log_forget.json"], False),
        "retain": _items_from_shared(full["eval_log.json"], True),
        "real_authors": _items_from_shared(full["eval_real_author_wo_options.json"], True),
        "world_facts": _items_from_shared(full["eval_real_world_wo_options.json"], True),
    }
    check_published(headline_from(full_items, {"forget": _items_from_shared(r90["eval_log_forget.json"], False)}))


# ---- the recipe on TOFU's files -------------------------------------------------------


@pytest.fixture(scope="module")
def tofu_dir() -> Path:
    """TOFU's files beside the checkout (``TUI_UNLEARN_TOFU_DIR`` overrides); skips when absent."""
    folder = Path(_TOFU_OVERRIDE) if _TOFU_OVERRIDE else SHARED / "datasets" / "tofu"
    if not (folder / "README.md").is_file():
        pytest.skip(f"TOFU data files not found in {folder}")
    return folder


@pytest.mark.parametrize("split, size", [("forget10", 400), ("forget05", 200), ("forget01", 40)])
def test_plan_reads_every_record_of_the_split(tofu_dir, split, size):
    config = resolve(RunConfig(recipe="tofu", forget_split=split, recipe_data=str(tofu_dir)), training=False)
    assert config.max_new_tokens == 200 and config.eval_samples == 0
    plan = build_plan(config, None, model_max_length=512)
    assert {name: len(recs) for name, recs in plan.splits.items()} == {
        "forget": size,
        "retain": 400,
        "real_authors": 100,
        "world_facts": 117,
        "holdout": size,
    }
    number = split[-2:]
    assert Path(plan.sources["forget"]).name == f"{split}_perturbed.json"
    assert Path(plan.sources["holdout"]).name == f"holdout{number}.json"
    assert Path(plan.sources["retain"]).name == "retain_perturbed.json"
    assert all(r["paraphrased_answer"] and len(r["perturbed_answers"]) == 5 for r in plan.splits["forget"])
    assert all(not r["paraphrased_answer"] and r["perturbed_answers"] for r in plan.splits["world_facts"])
    described = plan.describe()["splits"]
    assert described["holdout"]["generate"] is False and described["forget"]["generate"] is True
    assert len(set(plan.identity()["forget_ids"])) == size


def test_training_defaults_are_the_split_and_its_complement(tofu_dir):
    config = resolve(RunConfig(recipe="tofu", forget_split="forget05", recipe_data=str(tofu_dir)))
    assert [Path(p).name for p in (config.forget, config.retain, config.holdout)] == [
        "forget05.json",
        "retain95.json",
        "holdout05.json",
    ]
    assert config.oracle is None  # no bundled oracle for TOFU
    hub = resolve(RunConfig(recipe="tofu"), training=False)
    assert hub.forget == "hf:locuslab/TOFU:forget10@train" and hub.retain == "hf:locuslab/TOFU:retain90@train"


def test_a_missing_file_names_the_recipe_and_the_split(tmp_path):
    config = resolve(RunConfig(recipe="tofu", recipe_data=str(tmp_path)), training=False)
    with pytest.raises(DataError, match=r"tofu recipe, forget split: .*forget10_perturbed\.json"):
        build_plan(config, None)


@pytest.fixture(scope="module")
def tofu_eval(tofu_dir, tmp_path_factory):
    """Eval sessions of the bundled target on a small TOFU sample: without an oracle, and
    against an eval session of the bundled oracle made with the same recipe and sample."""
    root = tmp_path_factory.mktemp("sessions")
    common = [
        "--recipe",
        "tofu",
        "--recipe-data",
        tofu_dir,
        "--eval-samples",
        "6",
        "--max-new-tokens",
        "8",
        "--sessions-dir",
        root,
        "--json",
    ]
    out = {"root": root}
    r = cli("eval", *common)
    assert r.exit_code == 0, r.stderr
    out["alone"] = json.loads(r.stdout)
    r = cli("eval", *common, "--model", "tiny-authors-retain")
    assert r.exit_code == 0, r.stderr
    out["oracle"] = json.loads(r.stdout)
    r = cli("eval", *common, "--oracle", out["oracle"]["session_id"])
    assert r.exit_code == 0, r.stderr
    out["target"] = json.loads(r.stdout)
    return out


@pytest.mark.slow  # the module's tofu_eval fixture: two eval sessions of the bundled models
def test_end_to_end_splits_sizes_and_null_reasons(tofu_eval):
    obj = tofu_eval["alone"]
    recipe = obj["recipe"]
    assert recipe["name"] == "tofu" and recipe["forget_split"] == "forget10" and recipe["max_new_tokens"] == 8
    assert {name: (s["records"], s["of"]) for name, s in recipe["splits"].items()} == {
        "forget": (6, 400),
        "retain": (6, 400),
        "real_authors": (6, 100),
        "world_facts": (6, 117),
        "holdout": (6, 400),
    }
    # Beside the splits: what every evaluation measures outside them (the world-knowledge probe).
    assert set(obj["metrics"]["after"]) - {"knowledge", "general"} == set(recipe["splits"])
    assert "accuracy" not in obj["metrics"]["after"]["holdout"]  # scored for membership inference only
    assert obj["forget_quality"] is None and obj["privleak"] is None
    for key in ("forget_quality", "privleak"):
        assert obj["null_reasons"][key].startswith("no oracle: pass --oracle")
        assert "--recipe tofu --forget-split forget10" in obj["null_reasons"][key]
    assert isinstance(obj["model_utility"], float) and "model_utility" not in obj["null_reasons"]
    assert isinstance(obj["mia_auc"], float)


@pytest.mark.slow  # the module's tofu_eval fixture: two eval sessions of the bundled models
def test_an_oracle_session_of_the_same_records_gives_forget_quality(tofu_eval):
    target = tofu_eval["target"]
    assert isinstance(target["forget_quality"], float) and isinstance(target["privleak"], float)
    assert "forget_quality" not in target["null_reasons"]
    ref = json.loads((Path(tofu_eval["oracle"]["session_path"]) / "summary.json").read_text())["oracle_reference"]
    assert ref["recipe"] == "tofu" and ref["forget_split"] == "forget10" and len(ref["forget_ids"]) == 6


@pytest.mark.slow  # the module's tofu_eval fixture: two eval sessions of the bundled models
def test_an_oracle_session_of_other_records_is_refused(tofu_eval, tofu_dir):
    r = cli(
        "eval",
        "--recipe",
        "tofu",
        "--recipe-data",
        tofu_dir,
        "--eval-samples",
        "7",
        "--max-new-tokens",
        "2",
        "--oracle",
        tofu_eval["oracle"]["session_id"],
        "--sessions-dir",
        tofu_eval["root"],
    )
    assert r.exit_code == 2
    error = r.stderr.strip().splitlines()[-1]  # one line, after the progress lines
    assert error.startswith("error: oracle session") and error.count("error") == 1
    assert "6 forget records (this run: 7" in error and "--eval-samples" in error
    r = cli(
        "eval",
        "--recipe",
        "tofu",
        "--recipe-data",
        tofu_dir,
        "--forget-split",
        "forget05",
        "--eval-samples",
        "6",
        "--oracle",
        tofu_eval["oracle"]["session_id"],
        "--sessions-dir",
        tofu_eval["root"],
    )
    assert r.exit_code == 2 and "forget split forget10 (this run: forget05)" in r.stderr


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_train_on_retain90_and_measure_utility_on_another_retain_set(tofu_dir, tmp_path):
    r = cli(
        "--batch",
        "--json",
        "--recipe",
        "tofu",
        "--recipe-data",
        tofu_dir,
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--eval-every",
        "0",
        "--eval-samples",
        "4",
        "--max-new-tokens",
        "4",
        "--retain-eval",
        tofu_dir / "retain90.json",
        "--sessions-dir",
        tmp_path,
    )
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    summary = json.loads((Path(obj["session_path"]) / "summary.json").read_text())
    assert summary["data"]["forget"] == 400 and summary["data"]["retain"] == 3600  # trained on forget10 / retain90
    assert obj["recipe"]["splits"]["retain"]["source"].endswith("retain90.json")
    # retain90 has no perturbed answers: the retain truth ratio, so the utility, cannot be had
    assert obj["model_utility"] is None
    assert "retain truth_ratio" in obj["null_reasons"]["model_utility"]
    assert math.isfinite(summary["field_metrics"]["before"]["mia_auc"])


@pytest.mark.slow  # the module's tofu_eval fixture: two eval sessions of the bundled models
def test_the_summary_names_the_prompt_the_first_forget_record_was_asked_with(tofu_eval):
    from transformers import AutoTokenizer

    from tui_unlearn.models.bundled import bundled_model_dir

    prompt = tofu_eval["alone"]["recipe"]["prompt"]
    # The bundled models are asked as they were trained, under every recipe.
    assert prompt["format"]["name"] == "model" and prompt["record"] == "forget[0]"
    assert prompt["prompt_text"].startswith("Question: ") and prompt["prompt_text"].endswith("\nAnswer:")
    tok = AutoTokenizer.from_pretrained(bundled_model_dir("tiny-authors"))
    assert prompt["prompt_ids"] == tok(prompt["prompt_text"])["input_ids"]
    assert prompt["answer_ids"][-1] == tok.eos_token_id
