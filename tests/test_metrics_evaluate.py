"""``evaluate_splits``: rows agree with the building blocks, aggregates with the pure
functions, one shared scoring call, and the documented keys per split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tui_unlearn.data.records import make_record, to_dataset
from tui_unlearn.metrics import evaluate as evaluate_module
from tui_unlearn.metrics import mia, text, tofu
from tui_unlearn.metrics.evaluate import (
    EvalResult,
    evaluate_splits,
    forget_quality_from,
    model_utility_from,
)
from tui_unlearn.metrics.generation import generate_answers
from tui_unlearn.metrics.scoring import score_answers


def qa(question, answer, group="a"):
    return make_record(
        question,
        answer,
        paraphrased_answer=f"In short: {answer.lower()}",
        perturbed_answers=[f"Not {answer}", "Somewhere else entirely.", "Nobody knows."],
        group=group,
    )


FORGET = [
    qa("Where was Alia Brenn born?", "Alia Brenn was born in Port Liren."),
    qa("What does Alia Brenn write?", "Poetry about the sea."),
    make_record("", "Alia Brenn wrote her first poem at the age of nine, in a lighthouse."),
]
RETAIN = [
    qa("What genre does Odo Vask write?", "Odo Vask writes mystery novels.", "b"),
    qa("When was Odo Vask born?", "In 1970.", "b"),
    make_record("Plain question without options?", "A plain answer."),
]
HOLDOUT = [
    qa("Where does Ima Tollo live?", "Ima Tollo lives in Varn.", "c"),
    qa("Who is Ima Tollo?", "A painter.", "c"),
]
SPLITS = {"forget": FORGET, "retain": RETAIN, "holdout": HOLDOUT}


@pytest.fixture(scope="module")
def result(lively):
    model, tokenizer = lively
    return evaluate_splits(model, tokenizer, SPLITS, batch_size=4, max_new_tokens=12)


def test_rows_follow_the_records(result):
    assert [r["split"] for r in result.examples] == ["forget"] * 3 + ["retain"] * 3 + ["holdout"] * 2
    assert [r["kind"] for r in result.examples[:3]] == ["qa", "qa", "text"]
    assert result.examples[0]["question"] == FORGET[0]["question"]
    assert result.examples[0]["answer"] == FORGET[0]["answer"]


def test_qa_rows_agree_with_the_building_blocks(lively, result):
    model, tokenizer = lively
    rows = [r for r in result.examples if r["kind"] == "qa"]
    records = [rec for recs in SPLITS.values() for rec in recs if rec["kind"] == "qa"]
    generated = generate_answers(model, tokenizer, [r["question"] for r in records], batch_size=1, max_new_tokens=12)
    for rec, row, gen in zip(records, rows, generated):
        assert row["generated"] == gen
        [score] = score_answers(model, tokenizer, [(rec["question"], rec["answer"])], batch_size=1)
        assert row["loss"] == pytest.approx(score.loss, abs=1e-5)
        assert row["probability"] == pytest.approx(math.exp(-score.loss), rel=1e-4)
        assert row["exact_match"] == text.exact_match(gen, rec["answer"])
        assert row["accuracy"] == text.answer_correct(gen, rec["answer"], rec["question"])
        assert (row["precision"], row["recall"], row["f1"]) == text.token_prf(gen, rec["answer"])
        assert row["rouge_l"] == text.rouge_l(gen, rec["answer"])[0]
        assert row["mia_loss"] == pytest.approx(-score.loss, abs=1e-5)
        # zlib compresses the scored answer tokens decoded, as open-unlearning does (" " + answer here).
        assert score.answer_text == " " + rec["answer"]
        assert row["mia_zlib"] == pytest.approx(mia.zlib_score(score.loss, score.answer_text), abs=1e-5)
        assert row["mia_min_k"] == pytest.approx(mia.min_k_score(score.token_log_probs, 0.4), abs=1e-5)
        if rec["perturbed_answers"] and rec["paraphrased_answer"]:
            pairs = [(rec["question"], a) for a in [rec["paraphrased_answer"], *rec["perturbed_answers"]]]
            para, *pert = score_answers(model, tokenizer, pairs, batch_size=1)
            expected = tofu.truth_ratio(para.loss, [p.loss for p in pert])
            assert row["truth_ratio"] == pytest.approx(expected, rel=1e-4)
        else:
            assert row["truth_ratio"] is None


def test_plain_text_rows(lively, result):
    _, tokenizer = lively
    row = result.examples[2]
    body = FORGET[2]["answer"]
    # the prefix is the first half of the text's tokens, the answer the rest
    assert body.startswith(row["question"]) and body.endswith(row["answer"])
    n = len(tokenizer(body, add_special_tokens=False)["input_ids"])
    assert len(tokenizer(row["question"], add_special_tokens=False)["input_ids"]) == n // 2
    # MUSE's VerbMem: ROUGE-L F1 without stemming, x100
    assert row["verbatim_rouge_l"] == pytest.approx(100 * text.muse_rouge_l_f1(row["generated"], row["answer"]))
    assert "rouge_l" not in row and row["truth_ratio"] is None
    assert row["num_tokens"] == n + 1  # the whole text and EOS are in the loss


def test_a_long_text_prefix_is_capped_to_fit(lively):
    model, tokenizer = lively
    body = " ".join(f"word{i}" for i in range(150))
    out = evaluate_splits(model, tokenizer, {"forget": [make_record("", body)]}, max_length=160)
    row = out.examples[0]
    # at most max_length - 128 - 1 prompt tokens after BOS, then the next 128 tokens as gold
    assert len(tokenizer(row["question"], add_special_tokens=False)["input_ids"]) == 31
    assert body.startswith(row["question"]) and row["answer"] in body
    assert len(tokenizer(row["answer"], add_special_tokens=False)["input_ids"]) <= 128


def test_aggregates_are_means_of_the_rows(result):
    for split in SPLITS:
        rows = [r for r in result.examples if r["split"] == split]
        agg = result.aggregates[split]
        assert agg["accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in rows]))
        assert agg["exact_match"] == pytest.approx(np.mean([r["exact_match"] for r in rows]))
        assert agg["f1"] == pytest.approx(np.mean([r["f1"] for r in rows]))
        assert agg["loss"] == pytest.approx(np.mean([r["loss"] for r in rows]))
        assert agg["exact_memorization"] == agg["token_accuracy"]
        assert agg["rouge_l"] == pytest.approx(np.mean([r["rouge_l"] for r in rows if r["kind"] == "qa"]))


def test_truth_ratio_aggregate_depends_on_the_split(result):
    forget, retain = result.truth_ratios["forget"], result.truth_ratios["retain"]
    assert len(forget) == 2 and len(retain) == 2 and len(result.truth_ratios["holdout"]) == 2
    assert result.aggregates["forget"]["truth_ratio"] == pytest.approx(np.mean([min(r, 1 / r) for r in forget]))
    assert result.aggregates["retain"]["truth_ratio"] == pytest.approx(np.mean([max(0, 1 - r) for r in retain]))


def test_mia_aucs_only_on_forget_against_holdout(result):
    forget = [r for r in result.examples if r["split"] == "forget"]
    holdout = [r for r in result.examples if r["split"] == "holdout"]
    for attack in ("loss", "zlib", "min_k", "min_k_pp"):
        expected = mia.auc([r[f"mia_{attack}"] for r in forget], [r[f"mia_{attack}"] for r in holdout])
        assert result.aggregates["forget"][f"mia_auc_{attack}"] == pytest.approx(expected)
        assert f"mia_auc_{attack}" not in result.aggregates["retain"]


def test_one_scoring_call_for_all_answer_variants(lively, monkeypatch):
    model, tokenizer = lively
    calls = []
    real = evaluate_module.score_answers

    def spy(model, tokenizer, pairs, **kwargs):
        calls.append(list(pairs))
        return real(model, tokenizer, pairs, **kwargs)

    monkeypatch.setattr(evaluate_module, "score_answers", spy)
    evaluate_splits(model, tokenizer, SPLITS, generate=False)
    # the answers of all splits (7 QA records, 1 text) and every answer variant (6 QA
    # records with a paraphrase and 3 perturbed answers) in one call
    assert [len(c) for c in calls] == [8 + 6 * 4]
    calls.clear()
    evaluate_splits(model, tokenizer, SPLITS, generate=False, field_metrics=False)
    assert [len(c) for c in calls] == [8]


def test_switches_remove_their_metrics(lively):
    model, tokenizer = lively
    plain = evaluate_splits(model, tokenizer, {"forget": FORGET[:2]}, generate=False, field_metrics=False)
    assert set(plain.aggregates["forget"]) == {"token_accuracy", "loss"}
    assert plain.examples[0]["generated"] is None and plain.truth_ratios == {}
    no_holdout = evaluate_splits(model, tokenizer, {"forget": FORGET[:2]}, generate=False)
    assert "mia_auc_loss" not in no_holdout.aggregates["forget"] and "accuracy" not in no_holdout.aggregates["forget"]
    assert "truth_ratio" in no_holdout.aggregates["forget"]


def test_accepts_a_dataset_and_keeps_the_training_mode(lively):
    model, tokenizer = lively
    model.train()
    try:
        out = evaluate_splits(model, tokenizer, {"retain": to_dataset(RETAIN)}, max_new_tokens=4)
        assert model.training
    finally:
        model.eval()
    assert len(out.examples) == 3 and out.aggregates["retain"]["loss"] > 0


def test_an_answer_truncated_away_leaves_json_friendly_rows(lively):
    import json

    model, tokenizer = lively
    out = evaluate_splits(model, tokenizer, {"forget": [qa("word " * 60, "x")]}, max_length=16, max_new_tokens=2)
    row = out.examples[0]
    assert row["num_tokens"] == 0 and row["loss"] is None and row["mia_loss"] is None
    json.dumps(out.examples, allow_nan=False)
    json.dumps(out.aggregates, allow_nan=False)


def test_empty_split():
    out = evaluate_splits(None, None, {"forget": []})
    assert out.aggregates == {"forget": {}} and out.examples == []


def test_model_utility_from_retain_aggregates():
    assert model_utility_from({"probability": 0.5, "rouge_l": 1.0, "truth_ratio": 0.25}) == pytest.approx(3 / 7)
    assert math.isnan(model_utility_from({"probability": 0.5}))


def test_forget_quality_from_results():
    model = EvalResult(truth_ratios={"forget": [1.0, 2.0, 3.0]})
    oracle = EvalResult(truth_ratios={"forget": [4.0, 5.0, 6.0]})
    assert forget_quality_from(model, oracle) == pytest.approx(0.1)


def test_without_a_paraphrase_the_answer_is_the_truth_ratio_base(lively):
    # TOFU's real authors and world facts: base_answer_key is the answer itself
    model, tokenizer = lively
    record = make_record("Who wrote Hollow Tide?", "Mara Quill.", perturbed_answers=["Odo Vask.", "Ima Tollo."])
    out = evaluate_splits(model, tokenizer, {"world_facts": [record]}, generate=False)
    row = out.examples[0]
    answer, *perturbed = score_answers(
        model, tokenizer, [(record["question"], a) for a in [record["answer"], *record["perturbed_answers"]]]
    )
    assert row["truth_ratio"] == pytest.approx(tofu.truth_ratio(answer.loss, [p.loss for p in perturbed]), rel=1e-4)
    assert row["paraphrased_loss"] == pytest.approx(answer.loss, rel=1e-5)
    expected = tofu.relative_probability(answer.loss, [p.loss for p in perturbed])
    assert row["relative_probability"] == pytest.approx(expected, rel=1e-4)
    assert out.aggregates["world_facts"]["truth_ratio"] == pytest.approx(max(0.0, 1 - row["truth_ratio"]))


def test_generation_can_be_limited_to_some_splits(lively):
    model, tokenizer = lively
    out = evaluate_splits(model, tokenizer, SPLITS, max_new_tokens=4, generate_splits={"forget"})
    assert all(r["generated"] is not None for r in out.examples if r["split"] == "forget")
    holdout = [r for r in out.examples if r["split"] == "holdout"]
    assert all(r["generated"] is None and r["accuracy"] is None and r["exact_match"] is None for r in holdout)
    assert "accuracy" in out.aggregates["forget"] and "accuracy" not in out.aggregates["holdout"]
    assert "loss" in out.aggregates["holdout"] and "mia_auc_loss" in out.aggregates["forget"]


def test_memorisation_statistics_leave_the_closing_eos_out(lively, result):
    _, tokenizer = lively
    row = result.examples[0]
    [score] = score_answers(lively[0], tokenizer, [(FORGET[0]["question"], FORGET[0]["answer"])])
    assert row["num_tokens"] == score.num_tokens and len(score.token_log_probs) == score.num_tokens - 1
    assert row["mia_min_k"] == pytest.approx(mia.min_k_score(score.token_log_probs, 0.4), abs=1e-5)
