"""Headline numbers on a user's own data: question/answer records without paraphrased or
perturbed answers, and no real-authors / world-facts utility splits (issue 26, items 1-2).

Forget quality falls back from truth ratios to the KS test of per-example answer losses
(basis ``answer_nll``); model utility's retain part, ``retain_utility``, is what the
utility floor and keep-best read when the nine-part model utility cannot be had.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from tui_unlearn.engine.calibration import Calibration, choose_utility, values_from
from tui_unlearn.metrics.evaluate import EvalResult
from tui_unlearn.metrics.ks import ks_2samp_pvalue
from tui_unlearn.metrics.tofu import model_utility as harmonic_mean
from tui_unlearn.oracle import OracleReference, reference_from_session
from tui_unlearn.recipes.headline import BASIS_ANSWER_NLL, BASIS_TRUTH_RATIO, tofu_headline

PLAN = SimpleNamespace(
    recipe=SimpleNamespace(name="bundled"),
    forget_split=None,
    missing={
        "real_authors": "bundled:real_authors belongs to the bundled benchmark",
        "world_facts": "bundled:world_facts belongs to the bundled benchmark",
    },
    privleak_reference_auc=None,
)
MODEL_LOSSES = [0.01, 0.02, 0.05, 0.03, 0.04, 0.02]
ORACLE_LOSSES = [3.1, 2.7, 4.0, 3.5, 2.9, 3.3]


def user_result(losses=MODEL_LOSSES, retain=None, truth_ratios=None) -> EvalResult:
    """An evaluation of records without answer variants: rows with a loss, no truth ratio."""
    rows = [{"split": "forget", "loss": x, "truth_ratio": None} for x in losses]
    rows.append({"split": "forget", "loss": None, "truth_ratio": None})  # an answer truncated away
    aggregates = {"forget": {"loss": sum(losses) / len(losses)}}
    if retain is not None:
        aggregates["retain"] = retain
    return EvalResult(aggregates, rows, {"forget": truth_ratios} if truth_ratios else {})


def test_forget_quality_without_perturbed_answers_is_the_ks_test_of_answer_losses():
    # Before: null, "no truth ratios on the forget split: its records need perturbed answers".
    oracle = OracleReference("oracle", "model", [], {}, None, ORACLE_LOSSES)
    h = tofu_headline(user_result(), oracle, PLAN)
    assert h.values["forget_quality"] == pytest.approx(ks_2samp_pvalue(MODEL_LOSSES, ORACLE_LOSSES))
    assert h.values["forget_quality"] < 0.05 and h.details["forget_quality_basis"] == BASIS_ANSWER_NLL
    # the oracle against itself: indistinguishable
    itself = tofu_headline(user_result(ORACLE_LOSSES), oracle, PLAN)
    assert itself.values["forget_quality"] == 1.0


def test_records_with_perturbed_answers_keep_tofus_truth_ratio_basis():
    ratios, theirs = [0.1, 0.2, 0.3], [0.6, 0.7, 0.9]
    oracle = OracleReference("oracle", "model", theirs, {}, None, ORACLE_LOSSES)
    h = tofu_headline(user_result(truth_ratios=ratios), oracle, PLAN)
    assert h.values["forget_quality"] == pytest.approx(ks_2samp_pvalue(ratios, theirs))
    assert h.details["forget_quality_basis"] == BASIS_TRUTH_RATIO


def test_forget_quality_says_why_when_it_cannot_be_had():
    assert tofu_headline(user_result(), None, PLAN).reasons["forget_quality"].startswith("no oracle: pass --oracle")
    old = OracleReference("old-session", "session", [], {"mia_auc_min_k": 0.5})  # stored before losses were
    h = tofu_headline(user_result(), old, PLAN)
    assert h.values["forget_quality"] is None and "forget_quality_basis" not in h.details
    assert "old-session" in h.reasons["forget_quality"] and "answer losses" in h.reasons["forget_quality"]


def test_retain_utility_is_the_retain_part_of_model_utility():
    # Before: no number at all; the utility floor had nothing to read.
    retain = {"probability": 0.8, "rouge_l": 0.6}
    h = tofu_headline(user_result(retain=retain), None, PLAN)
    assert h.values["retain_utility"] == pytest.approx(harmonic_mean([0.8, 0.6]))
    assert h.details["retain_utility_parts"] == {"retain.probability": 0.8, "retain.rouge_l": 0.6}
    assert h.values["model_utility"] is None
    reason = h.reasons["model_utility"]
    assert "needs nine numbers" in reason and reason.endswith("retain_utility stands in for it")
    # with perturbed answers the truth-ratio score joins: TOFU's retain third exactly
    full = tofu_headline(user_result(retain={**retain, "truth_ratio": 0.4}), None, PLAN)
    assert full.values["retain_utility"] == pytest.approx(harmonic_mean([0.8, 0.6, 0.4]))


@pytest.mark.parametrize(
    ("retain", "missing", "fragment"),
    [
        (None, {"retain": "the run has no retain set: pass --retain"}, "no retain split: the run has no retain set"),
        ({"probability": 0.8}, {}, "no rouge_l (the split was evaluated without generation)"),
    ],
)
def test_retain_utility_says_what_is_missing(retain, missing, fragment):
    plan = SimpleNamespace(**{**vars(PLAN), "missing": {**PLAN.missing, **missing}})
    h = tofu_headline(user_result(retain=retain), None, plan)
    assert h.values["retain_utility"] is None and fragment in h.reasons["retain_utility"]
    assert "stands in" not in h.reasons["model_utility"]


def test_the_utility_floor_reads_retain_utility_when_model_utility_is_missing():
    logs: list[str] = []
    calib = Calibration(keep_best="forget_quality", utility_floor=0.95)
    choose_utility(calib, {"model_utility": None, "retain_utility": 0.8}, {}, logs.append)
    assert (calib.utility_basis, calib.original_utility, calib.utility_floor) == ("retain_utility", 0.8, 0.95)
    assert "reads retain_utility" in logs[0] and "no retain set?" not in logs[0]
    values = values_from({}, {"model_utility": None, "retain_utility": 0.76}, 0.8, calib.utility_basis)
    assert values["utility_ratio"] == pytest.approx(0.95)
    # TOFU's model utility wins where it exists
    full = Calibration(keep_best="forget_quality", utility_floor=0.95)
    choose_utility(full, {"model_utility": 0.7, "retain_utility": 0.8}, {}, logs.append)
    assert (full.utility_basis, full.original_utility, len(logs)) == ("model_utility", 0.7, 1)


def test_without_any_utility_the_floor_is_dropped_with_the_reason():
    logs: list[str] = []
    calib = Calibration(keep_best="forget_quality", utility_floor=0.95)
    reasons = {"retain_utility": "no retain split: the run has no retain set: pass --retain"}
    choose_utility(calib, {"model_utility": None, "retain_utility": None}, reasons, logs.append)
    assert calib.utility_floor == 0.0
    assert logs == [
        "keep-best: no utility floor applies: the original's retain utility could not be measured: "
        "no retain split: the run has no retain set: pass --retain"
    ]
    zero = Calibration(keep_best="forget_quality", utility_floor=0.95)
    choose_utility(zero, {"retain_utility": 0.0}, {}, logs.append)
    assert zero.utility_floor == 0.0 and logs[-1].endswith("the original's retain_utility is 0")


class FakeSession:
    id = "20260101-000000-eval-abcd"

    def __init__(self, payload):
        self.payload = payload

    def summary(self):
        return {"oracle_reference": self.payload}


def test_an_oracle_eval_session_of_user_data_carries_its_answer_losses():
    # Before: refused ("holds no oracle evaluation"): no truth ratios, no holdout AUCs.
    ref = reference_from_session(FakeSession({"forget_truth_ratios": [], "forget_losses": ORACLE_LOSSES}), "s")
    assert ref.forget_losses == ORACLE_LOSSES and ref.describe()["forget_records"] == len(ORACLE_LOSSES)
    assert tofu_headline(user_result(ORACLE_LOSSES), ref, PLAN).values["forget_quality"] == 1.0


def test_an_oracle_cache_entry_without_answer_losses_is_measured_again(tmp_path, monkeypatch):
    from tui_unlearn import oracle as oracle_module

    calls = []

    def fake_evaluate(config, spec, splits, emit, *, max_length=512):
        calls.append(spec)
        return OracleReference(spec, "model", [], {}, None, ORACLE_LOSSES)

    monkeypatch.setattr(oracle_module, "evaluate_oracle", fake_evaluate)
    config = SimpleNamespace(oracle="tiny-authors-retain", models_cache=None, dtype="float32")
    splits = {"forget": [{"question": "q", "answer": "a"}]}

    def resolve():
        return oracle_module.resolve_oracle(config, splits, tmp_path, lambda event: None)

    assert resolve().forget_losses == ORACLE_LOSSES and resolve().origin == "cache" and len(calls) == 1
    (entry,) = (tmp_path / oracle_module.CACHE_DIR).glob("*.json")
    stored = json.loads(entry.read_text())
    del stored["forget_losses"]  # as written before the losses were kept
    entry.write_text(json.dumps(stored))
    assert resolve().forget_losses == ORACLE_LOSSES and len(calls) == 2


# ---- the bundled models on the bundled forget10 exported as plain question/answer records ----


def plain_records(split: str, n: int | None = None) -> list[dict]:
    from tui_unlearn.data.benchmark import benchmark_records

    return [{"question": r["question"], "answer": r["answer"]} for r in benchmark_records(split)[:n]]


@pytest.mark.slow
def test_bundled_target_and_oracle_on_forget10_without_perturbed_answers():
    """The acceptance check of issue 26 item 1: the oracle against itself (evaluated
    separately, in other batches) ~ 1; the original against the oracle << 0.05."""
    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.models.loading import load_model
    from tui_unlearn.oracle import from_result

    forget = {"forget": plain_records("forget10")}
    refs = {}
    for name, batches in (("tiny-authors", (64,)), ("tiny-authors-retain", (64, 7))):
        loaded = load_model(name, device="cpu", dtype="float32")
        for batch in batches:
            result = evaluate_splits(loaded.model, loaded.tokenizer, forget, generate=False, batch_size=batch)
            assert not result.truth_ratios  # nothing to make a truth ratio from
            refs[name, batch] = (result, from_result(result, name, "model"))
    oracle = refs["tiny-authors-retain", 7][1]
    assert len(oracle.forget_losses) == 100
    itself = tofu_headline(refs["tiny-authors-retain", 64][0], oracle, PLAN)
    original = tofu_headline(refs["tiny-authors", 64][0], oracle, PLAN)
    assert itself.values["forget_quality"] > 0.99
    assert original.values["forget_quality"] < 1e-20
    assert original.details["forget_quality_basis"] == BASIS_ANSWER_NLL


def cli(*args):
    from tui_unlearn.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture()
def user_files(tmp_path):
    forget = tmp_path / "my_forget.jsonl"
    forget.write_text(
        "".join(
            json.dumps({"prompt": r["question"], "completion": r["answer"]}) + "\n" for r in plain_records("forget10")
        )
    )
    retain = tmp_path / "my_retain.csv"
    with retain.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["question", "answer"])
        writer.writeheader()
        writer.writerows(plain_records("retain90", 40))
    return forget, retain


@pytest.mark.slow
def test_eval_of_user_data_against_the_oracle_model_and_its_session(user_files, tmp_path):
    forget, _ = user_files
    root = tmp_path / "s"
    from tui_unlearn.models.bundled import bundled_model_dir

    oracle_dir = bundled_model_dir("tiny-authors-retain")
    common = ("--forget", forget, "--eval-samples", "50", "--sessions-dir", root, "--json")
    # the oracle model evaluated as an oracle (its folder: not the "same model" shortcut)
    r = cli("eval", "--model", "tiny-authors-retain", "--oracle", oracle_dir, *common)
    assert r.exit_code == 0, r.stderr
    itself = json.loads(r.stdout)
    assert itself["forget_quality"] > 0.99 and itself["forget_quality_basis"] == "answer_nll"
    # the target against the oracle's eval session: its stored answer losses
    r = cli("eval", "--model", "tiny-authors", "--oracle", itself["session_id"], *common)
    assert r.exit_code == 0, r.stderr
    target = json.loads(r.stdout)
    assert target["forget_quality"] < 1e-10 and target["forget_quality_basis"] == "answer_nll"
    assert target["null_reasons"].get("forget_quality") is None


@pytest.mark.slow
def test_batch_keep_best_on_user_data_keeps_a_step_under_the_retain_utility_floor(user_files, tmp_path):
    forget, retain = user_files
    r = cli(
        "--batch", "--forget", forget, "--retain", retain, "--oracle", "tiny-authors-retain",
        "--keep-best", "forget_quality", "--steps", "10", "--eval-every", "5", "--eval-samples", "40",
        "--sessions-dir", tmp_path / "s", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    # Before: forget_quality and model_utility null, kept_step null, "(no retain set?)".
    assert isinstance(out["forget_quality"], float) and out["forget_quality_basis"] == "answer_nll"
    assert isinstance(out["retain_utility"], float) and out["retain_utility"] > 0.5
    assert out["model_utility"] is None and "retain_utility stands in" in out["null_reasons"]["model_utility"]
    summary = json.loads((Path(out["session_path"]) / "summary.json").read_text())
    calibration = summary["calibration"]
    assert calibration["kept_step"] in (5, 10) and calibration["utility_basis"] == "retain_utility"
    assert all(h["utility_ratio"] is not None for h in calibration["history"])
    assert "no retain set?" not in r.stderr and "the utility floor reads retain_utility" in r.stderr


def test_retain_utility_is_a_stop_rule_and_keep_best_metric_measured_on_generated_retain_answers():
    from tui_unlearn.engine.stop_rules import check_keep_best, metric_goal, needs_generation, splits_needed

    assert check_keep_best("retain-utility") is None and metric_goal("retain_utility") == "max"  # no error
    assert needs_generation("retain_utility") and splits_needed("retain_utility") == {"retain"}


def test_the_batch_table_names_the_answer_nll_basis():
    from tui_unlearn.analysis.tables import before_after_table

    summary = {"kind": "eval", "model": "m", "status": "finished", "metrics": {"after": {}}, "forget_quality": 1e-17}
    assert "forget quality 1.00e-17  model utility" in before_after_table(summary)
    table = before_after_table({**summary, "forget_quality_basis": "answer_nll"})
    assert "forget quality 1.00e-17 (answer NLL)  model utility" in table
