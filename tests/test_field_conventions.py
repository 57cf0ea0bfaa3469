"""Where the field's code computes a number other than the way we would (issue 18 item 5):
extraction strength's floor, the zlib attack's text, multiple choice's BOS, TOFU's first-300
sample, MUSE's uncut texts. Each against the field's code as written (open-unlearning at
locuslab/open-unlearning@d3d7cf9, lm-evaluation-harness 0.4.9.1 / 0.4.9.2, TOFU's legacy logs),
re-implemented here from reading it."""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path

import pytest

from tui_unlearn.config import RunConfig, resolve
from tui_unlearn.data.formatting import IGNORE_INDEX, encode_example
from tui_unlearn.data.run_data import RunData
from tui_unlearn.metrics.choice import choose, encode_pair
from tui_unlearn.metrics.scoring import extraction_strength
from tui_unlearn.recipes import get_recipe
from tui_unlearn.recipes.evaluate import evaluate_plan
from tui_unlearn.recipes.plan import UNKNOWN_CONTEXT, EvalPlan, build_plan

RECORDS = [
    {"question": "Where was Alia Brenn born?", "answer": "Alia Brenn was born in Port Liren."},
    {"question": "What genre does Odo Vask write?", "answer": "Odo Vask writes mystery novels."},
    {"question": "Who wrote the fox book?", "answer": "The quick brown fox."},
    {"question": "Where was Odo Vask born?", "answer": "Port Liren."},
    {"question": "What does Alia Brenn write?", "answer": "mystery novels"},
]


def ou_extraction_strength(preds: list[int], labels: list[int]) -> float:
    """open-unlearning's ``_extraction_strength`` for one sequence (memorization.py)."""
    valid_len = len(labels)
    k = 0
    for k in range(valid_len):
        if preds[k:] == labels[k:]:
            break
    if valid_len == 0:
        return 0
    return 1 - (k / valid_len)


def test_extraction_strength_floor_is_open_unlearnings_loop():
    for n in range(0, 7):
        for correct in itertools.product([False, True], repeat=n):
            labels = list(range(n))
            preds = [t if ok else t + 100 for t, ok in zip(labels, correct)]
            ours = extraction_strength(list(correct), open_unlearning=True)
            assert ours == pytest.approx(ou_extraction_strength(preds, labels)), correct
            if n and not correct[-1]:  # nothing predicted from the end: the definition's 0, their 1/n
                assert extraction_strength(list(correct)) == 0.0 and ours == pytest.approx(1 / n)
            elif n:
                assert extraction_strength(list(correct)) == ours


def _plan(recipe: str, records, **kw) -> EvalPlan:
    r = get_recipe(recipe)
    plan = EvalPlan(r, r.default_forget_split, 4, 0, 128, **kw)
    plan.splits = {"forget": records}
    plan.sources = {"forget": "test"}
    return plan


def _ou_reference(model, tokenizer, record):
    """open-unlearning's extraction strength and zlib text for one record, from the model's
    logits: ``tokenwise_vocab_logprobs`` (labelled positions, the last one left out) and
    ``extract_target_texts_from_processed_data`` (labels decoded without special tokens)."""
    import torch

    enc = encode_example(tokenizer, record["question"], record["answer"], 128)
    ids, labels = torch.tensor([enc["input_ids"]]), torch.tensor(enc["labels"])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)[:-1]
    actual = (labels != IGNORE_INDEX).nonzero(as_tuple=True)[0][:-1]
    start, end = actual[0].item(), actual[-1].item()
    preds = log_probs[start - 1 : end].argmax(-1).tolist()
    es = ou_extraction_strength(preds, labels[actual].tolist())
    text = tokenizer.decode([t for t in enc["labels"] if t != IGNORE_INDEX], skip_special_tokens=True)
    return es, text


def test_per_example_extraction_strength_and_zlib_as_open_unlearning_computes_them(lively):
    model, tokenizer = lively
    tofu = evaluate_plan(_plan("tofu", RECORDS), model, tokenizer, batch_size=4).examples
    bundled = evaluate_plan(_plan("bundled", RECORDS), model, tokenizer, batch_size=4).examples
    differ = 0
    for record, ours, definition in zip(RECORDS, tofu, bundled):
        es, text = _ou_reference(model, tokenizer, record)
        assert ours["extraction_strength"] == pytest.approx(es)
        differ += definition["extraction_strength"] != ours["extraction_strength"]
        # zlib: -loss over the compressed length of the decoded answer tokens, in every recipe.
        zlib_len = len(zlib.compress(text.encode("utf-8")))
        assert ours["mia_zlib"] == pytest.approx(-ours["loss"] / zlib_len, rel=1e-6)
        assert definition["mia_zlib"] == pytest.approx(ours["mia_zlib"], rel=1e-6)
    assert differ  # random weights predict no answer's end: the definition's 0 where theirs is 1/n
    # The record's own text compresses to another length than what was scored (" " + answer).
    assert any(
        len(zlib.compress(r["answer"].encode())) != len(zlib.compress(_ou_reference(model, tokenizer, r)[1].encode()))
        for r in RECORDS
    )


MC = [
    {"question": "Which is a mystery writer?", "choices": ["Odo Vask", "Port Liren", "fox", "dog"], "answer_index": 0},
    {"question": "Where was Alia Brenn born?", "choices": ["Port Liren", "Odo", "lazy", "brown"], "answer_index": 0},
]


def test_multiple_choice_bos_as_lm_eval_before_and_after_0_4_9_2(lively, monkeypatch):
    from tui_unlearn.metrics import choice

    model, tokenizer = lively
    context = "The quick brown fox\nAnswer:"
    # lm-eval <= 0.4.9.1: tok_encode with add_special_tokens=False; >= 0.4.9.2: the tokenizer's default.
    old_head, old_cont = encode_pair(tokenizer, context, " A")
    new_head, new_cont = encode_pair(tokenizer, context, " A", bos=True)
    assert new_head == tokenizer.encode(context) and new_head[0] == tokenizer.bos_token_id
    assert old_head == tokenizer.encode(context, add_special_tokens=False) and old_head[0] != tokenizer.bos_token_id
    assert old_cont == new_cont
    items = [(r["question"], r["choices"], "") for r in MC]
    without, with_bos = choose(model, tokenizer, items), choose(model, tokenizer, items, bos=True)
    assert without != with_bos
    # --mc-bos reaches the recipe's scoring.
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs.get("bos"))
        return choose(*args, **kwargs)

    monkeypatch.setattr(choice, "choose", spy)
    for bos in ("none", "tokenizer"):
        evaluate_plan(_plan("wmdp", MC, mc_bos=bos), model, tokenizer)
    assert seen == [False, True]


# The first and the 300th question of TOFU's legacy forget10 log (reference/tofu-legacy-eval).
LEGACY_FIRST = (
    "What is the full name of the author born in Taipei, Taiwan on 05/11/1991 who writes in the genre of leadership?"
)
LEGACY_300TH = "What impact has Takashi Nakamura's writing made in the Lesbian genre?"


def test_first_n_sample_is_what_tofus_legacy_logs_hold(tmp_path):
    tofu = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tofu"
    if not (tofu / "forget10_perturbed.json").is_file():
        pytest.skip("TOFU's files are not beside the checkout")
    config = resolve(
        RunConfig(recipe="tofu", recipe_data=str(tofu), eval_samples=300, eval_sampling="first"), training=False
    )
    forget = build_plan(config, None, model_max_length=4096).splits["forget"]
    assert len(forget) == 300 and forget[0]["question"] == LEGACY_FIRST and forget[299]["question"] == LEGACY_300TH
    drawn = build_plan(resolve(RunConfig(recipe="tofu", recipe_data=str(tofu), eval_samples=300), training=False), None)
    assert [r["question"] for r in drawn.splits["forget"]] != [r["question"] for r in forget]


def test_first_n_on_the_runs_own_data():
    data = RunData([dict(r, paraphrased_answer="", perturbed_answers=[]) for r in RECORDS], [], [], {})
    config = resolve(RunConfig(forget="x.json", eval_samples=2, eval_sampling="first", oracle="none"), training=False)
    assert build_plan(config, data).splits["forget"] == data.forget[:2]


def _muse_folder(root: Path) -> Path:
    files = {
        "verbmem/forget.json": [{"prompt": "The bakery on Mill Street", "gt": " won the regional prize."}],
        "knowmem/forget_qa.json": [{"question": "What did the bakery win?", "answer": "the regional prize"}],
        "knowmem/forget_qa_icl.json": [{"question": "Which street?", "answer": "Mill Street"}],
        "knowmem/retain_qa.json": [{"question": "When does the library open late?", "answer": "on Thursdays"}],
        "knowmem/retain_qa_icl.json": [{"question": "Who announced it?", "answer": "the mayor"}],
        "privleak/forget.json": ["The bakery on Mill Street won the regional prize."],
        "privleak/holdout.json": ["The library opens late on Thursdays."],
    }
    for name, rows in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(rows))
    return root


def test_muse_texts_are_cut_only_at_the_models_context(tmp_path):
    config = resolve(RunConfig(recipe="muse", recipe_data=str(_muse_folder(tmp_path))), training=False)
    assert build_plan(config, None, model_max_length=8192).max_length == 8192  # not open-unlearning's 2048
    unknown = build_plan(config, None, model_max_length=None)
    assert unknown.max_length == UNKNOWN_CONTEXT and "context length" in unknown.notes[0]
    tofu_like = get_recipe("tofu")
    assert tofu_like.max_length == 512  # TOFU's datasets do cut at 512


@pytest.mark.slow  # an eval of the micro model on TOFU's files (3 s)
def test_summary_holds_the_first_forget_prompt_in_open_unlearnings_format(micro_model_dir, tmp_path):
    from transformers import AutoTokenizer
    from typer.testing import CliRunner

    from tui_unlearn.cli import app

    tofu = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tofu"
    if not (tofu / "forget10_perturbed.json").is_file():
        pytest.skip("TOFU's files are not beside the checkout")
    args = ["eval", "--recipe", "tofu", "--recipe-data", tofu, "--model", micro_model_dir, "--eval-samples", "2"]
    args += ["--eval-sampling", "first", "--max-new-tokens", "2", "--sessions-dir", tmp_path, "--json"]
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.stderr
    summary = json.loads((Path(json.loads(r.stdout)["session_path"]) / "summary.json").read_text())
    prompt = summary["recipe"]["prompt"]
    # A model without a chat template: open-unlearning's base-model format, "Answer: " and all.
    assert prompt["format"]["name"] == "question-answer" and prompt["record"] == "forget[0]"
    assert prompt["prompt_text"] == f"Question: {LEGACY_FIRST}\nAnswer: "
    tok = AutoTokenizer.from_pretrained(micro_model_dir)
    answer = "The author's full name is Hsiao Yun-Hwa."
    whole = tok(prompt["prompt_text"] + answer)["input_ids"] + [tok.eos_token_id]
    assert prompt["prompt_ids"] == tok(prompt["prompt_text"])["input_ids"]
    assert prompt["answer_ids"] == whole[len(prompt["prompt_ids"]) :]
    assert summary["recipe"]["sampling"] == "first" and summary["recipe"]["extraction_strength"] == "open-unlearning"


def test_muse_batches_are_sized_by_its_longest_text_not_a_long_context(tmp_path, lively):
    _, tokenizer = lively
    config = resolve(RunConfig(recipe="muse", recipe_data=str(_muse_folder(tmp_path))), training=False)
    plan = build_plan(config, None, model_max_length=131_072)
    assert plan.max_length == 131_072
    assert plan.batch_tokens(tokenizer) < 400  # a few short texts and 128 new tokens, not 131 k
    tofu = EvalPlan(get_recipe("tofu"), "forget10", 200, 0, 512)
    assert tofu.batch_tokens(tokenizer) == 712  # a recipe that cuts: its maximum length, as before
