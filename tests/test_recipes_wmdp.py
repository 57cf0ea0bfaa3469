"""The wmdp recipe: multiple-choice questions scored as lm-evaluation-harness scores them,
on the small sample shipped with the package."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.metrics.choice import (
    choice_examples,
    choose,
    continuation_log_likelihoods,
    encode_pair,
    question_context,
)
from tui_unlearn.recipes.plan import build_plan
from tui_unlearn.recipes.sources import choice_records

SAMPLE = Path(__file__).resolve().parents[1] / "tui_unlearn" / "recipes" / "data" / "mc-sample"


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_context_is_lm_evals_template():
    text = question_context(" What is 2+2? ", ["3", "4", "5", "6"], "elementary_mathematics")
    assert text == (
        "The following are multiple choice questions (with answers) about elementary mathematics.\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    )
    assert question_context("Q?", ["x", "y"]) == "Q?\nA. x\nB. y\nAnswer:"


def test_encode_pair_moves_trailing_spaces_to_the_continuation(micro_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    context, continuation = encode_pair(tok, "Answer: ", "A")
    assert context == tok("Answer:", add_special_tokens=False)["input_ids"]
    whole = tok("Answer: A", add_special_tokens=False)["input_ids"]
    assert context + continuation == whole and continuation


class LetterLM(torch.nn.Module):
    """Puts logit 5 on ``favourite`` at every position, 0 elsewhere."""

    def __init__(self, vocab: int, favourite: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.vocab, self.favourite = vocab, favourite

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., self.favourite] = 5.0
        return SimpleNamespace(logits=logits)


def test_log_likelihoods_are_summed_over_the_continuation(micro_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    vocab = len(tok)
    [b_id] = tok(" B", add_special_tokens=False)["input_ids"][-1:]
    model = LetterLM(vocab, b_id)
    log_z = math.log(math.exp(5.0) + vocab - 1)
    scores = continuation_log_likelihoods(model, tok, [([1, 2, 3], [b_id]), ([1, 2], [b_id, 7]), ([4], [])])
    assert scores[0] == pytest.approx(5.0 - log_z, rel=1e-5)
    assert scores[1] == pytest.approx(5.0 - log_z - log_z, rel=1e-5)
    assert math.isnan(scores[2])
    [options] = choose(model, tok, [("Q?", ["a", "b", "c", "d"], "")])
    assert max(range(4), key=options.__getitem__) == 1  # " B" is the likeliest continuation


def test_records_take_the_published_fields_and_letters(tmp_path):
    path = tmp_path / "q.json"
    path.write_text(
        json.dumps(
            [
                {"question": "Q?", "choices": ["a", "b", "c", "d"], "answer": 2},
                {"question": "R?", "choices": ["a", "b"], "answer": "B", "subject": "law"},
            ]
        )
    )
    records = choice_records(str(path))
    assert [r["answer_index"] for r in records] == [2, 1] and records[1]["subject"] == "law"
    path.write_text(json.dumps([{"question": "Q?", "choices": ["a", "b"], "answer": 5}]))
    with pytest.raises(Exception, match="'answer' must be the right choice's index"):
        choice_records(str(path))


def test_the_sample_is_balanced():
    for name in ("wmdp-bio.json", "mmlu.json"):
        rows = json.loads((SAMPLE / name).read_text())
        assert len(rows) == 40 and all(len(r["choices"]) == 4 for r in rows)
        assert sorted(r["answer"] for r in rows) == sorted(list(range(4)) * 10)  # one letter always: 0.25


def _accuracy(model, tok, records, subject=""):
    examples = choice_examples(model, tok, "forget", records, subject=subject, max_length=256)
    return sum(e.extra["predicted"] == e.extra["answer_index"] for e in examples) / len(examples)


@pytest.mark.slow  # several seconds: run by .ci/run's second pass
def test_a_model_trained_to_prefer_the_right_option_scores_above_chance(micro_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(micro_model_dir)
    records = choice_records(str(SAMPLE / "wmdp-bio.json"))[:16]
    before = _accuracy(model, tok, records)
    # Teach the right letter after each question's context, as lm-eval scores it.
    pairs = [
        encode_pair(tok, question_context(r["question"], r["choices"]), " " + "ABCD"[r["answer_index"]])
        for r in records
    ]
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        for context, answer in pairs:
            ids = torch.tensor([(context + answer)[-256:]])
            labels = ids.clone()
            labels[:, : ids.shape[1] - len(answer)] = -100
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.eval()
    after = _accuracy(model, tok, records)
    assert after >= 0.75 > before + 0.25


def test_the_bundled_model_is_near_chance():
    from tui_unlearn.models.loading import load_model

    loaded = load_model("tiny-authors", device="cpu")
    records = choice_records(str(SAMPLE / "wmdp-bio.json"))
    accuracy = _accuracy(loaded.model, loaded.tokenizer, records, subject="biology")
    assert 0.1 <= accuracy <= 0.4  # 40 questions, chance 0.25: it never learnt these


@pytest.mark.slow  # one of the slowest default tests (3-10 s): .ci/run's second pass
def test_the_recipe_end_to_end_on_the_sample(tmp_path):
    config = resolve(RunConfig(recipe="wmdp", recipe_data=str(SAMPLE)), training=False)
    plan = build_plan(config, None)
    assert {n: len(r) for n, r in plan.splits.items()} == {"forget": 40, "utility": 40}
    r = cli("eval", "--recipe", "wmdp", "--recipe-data", SAMPLE, "--sessions-dir", tmp_path, "--json")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["recipe"]["name"] == "wmdp" and obj["recipe"]["forget_split"] == "wmdp-bio"
    assert 0.0 <= obj["wmdp_accuracy"] <= 1.0 and 0.0 <= obj["mmlu_accuracy"] <= 1.0
    assert obj["wmdp_accuracy"] == obj["metrics"]["after"]["forget"]["choice_accuracy"]
    assert obj["null_reasons"] == {}
    rows = [json.loads(line) for line in (Path(obj["session_path"]) / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 80 and rows[0]["generated"][:2] in ("A.", "B.", "C.", "D.")


def test_a_missing_utility_set_is_a_data_error(tmp_path):
    (tmp_path / "wmdp-bio.json").write_text((SAMPLE / "wmdp-bio.json").read_text())
    r = cli("eval", "--recipe", "wmdp", "--recipe-data", tmp_path, "--sessions-dir", tmp_path / "s")
    assert r.exit_code == 3 and "wmdp recipe, utility split" in r.stderr and "mmlu.json" in r.stderr


def test_training_needs_a_forget_corpus_for_bio():
    from tui_unlearn.errors import ConfigError

    with pytest.raises(ConfigError, match="not public"):
        resolve(RunConfig(recipe="wmdp"))
    cyber = resolve(RunConfig(recipe="wmdp", forget_split="wmdp-cyber"))
    assert cyber.forget == "hf:cais/wmdp-corpora:cyber-forget-corpus@train"
