"""The muse recipe: VerbMem and KnowMem as MUSE's eval.py runs them, PrivLeak against a
reference AUC, on a local folder in MUSE's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_unlearn.cli import app
from tui_unlearn.metrics import text
from tui_unlearn.metrics.muse import cut_at_stop_words, knowmem_examples, knowmem_prompt, verbmem_examples, verbmem_gold

NEWS = [
    "The harbour council met on Tuesday to discuss the new ferry timetable for the winter months.",
    "A small bakery on the corner of Mill Street won the regional prize for its rye bread this year.",
    "Volunteers planted two hundred oak trees along the river path over the long weekend.",
    "The town library will open late on Thursdays from next month, the mayor announced.",
]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def muse_dir(tmp_path_factory) -> Path:
    """A folder laid out as MUSE's load_data.py writes one corpus."""
    root = tmp_path_factory.mktemp("muse-news")
    files = {
        "verbmem/forget.json": [{"prompt": t[: len(t) // 2], "gt": t[len(t) // 2 :]} for t in NEWS],
        "knowmem/forget_qa.json": [
            {"question": "What did the bakery win?", "answer": "the regional prize"},
            {"question": "How many trees were planted?", "answer": "two hundred"},
        ],
        "knowmem/forget_qa_icl.json": [{"question": "Which street is the bakery on?", "answer": "Mill Street"}],
        "knowmem/retain_qa.json": [{"question": "When does the library open late?", "answer": "on Thursdays"}],
        "knowmem/retain_qa_icl.json": [{"question": "Who announced it?", "answer": "the mayor"}],
        "privleak/forget.json": NEWS[:2],
        "privleak/holdout.json": NEWS[2:],
    }
    for name, rows in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(rows))
    return root


def test_rouge_without_stemming():
    # "running"/"runs" match once stemmed (TOFU's ROUGE) but not as MUSE scores them
    assert text.rouge_l("the dog runs home", "the dog running home")[1] == pytest.approx(1.0)
    assert text.muse_rouge_l_f1("the dog runs home", "the dog running home") == pytest.approx(0.75)


def test_knowmem_prompt_and_stop_words():
    assert knowmem_prompt("Q2?", [("Q1?", "A1")]) == "Question: Q1?\nAnswer: A1\n\nQuestion: Q2?\nAnswer: "
    assert cut_at_stop_words("Mill Street\n\nQuestion: next") == "Mill Street"
    assert cut_at_stop_words("two hundred\nQuestion: x") == "two hundred"
    assert cut_at_stop_words("\n\nlate") == ""  # an answer that starts with a blank line is empty, as in MUSE


def test_verbmem_gold_counts_special_tokens_as_muse_encodes(lively):
    _, tok = lively
    gt = " ".join(NEWS * 3)
    ids = tok(gt, add_special_tokens=True)["input_ids"]
    assert verbmem_gold(tok, gt, 10) == tok.decode(ids[:10], skip_special_tokens=True)


def test_verbmem_generation_matches_one_prompt_at_a_time(lively):
    model, tok = lively
    records = [{"prompt": t[: len(t) // 2], "gt": t[len(t) // 2 :]} for t in NEWS]
    examples = verbmem_examples(model, tok, "verbmem_forget", records, max_new_tokens=12, batch_size=3, max_length=256)
    for record, example in zip(records, examples):
        ids = torch.tensor([tok(record["prompt"], add_special_tokens=True)["input_ids"]])
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=12,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
        assert example.generated == tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
        assert example.gold == verbmem_gold(tok, record["gt"], 12) and example.kind == "completion"


def test_knowmem_examples_cut_their_answers(lively):
    model, tok = lively
    examples = knowmem_examples(
        model,
        tok,
        "knowmem_forget",
        [{"question": "Q?", "answer": "A"}],
        [("q", "a")],
        max_new_tokens=6,
        max_length=256,
    )
    assert examples[0].generated == cut_at_stop_words(examples[0].generated).strip()
    assert examples[0].prompt == "Q?" and examples[0].gold == "A"


def test_the_recipe_end_to_end(muse_dir, micro_model_dir, tmp_path):
    common = [
        "eval",
        "--recipe",
        "muse",
        "--recipe-data",
        muse_dir,
        "--model",
        micro_model_dir,
        "--max-new-tokens",
        "6",
        "--sessions-dir",
        tmp_path,
        "--json",
    ]
    r = cli(*common)
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    splits = obj["recipe"]["splits"]
    assert {n: s["records"] for n, s in splits.items()} == {
        "verbmem_forget": 4,
        "knowmem_forget": 2,
        "knowmem_retain": 1,
        "forget": 2,
        "holdout": 2,
    }
    assert splits["verbmem_forget"]["source"].endswith("verbmem/forget.json")
    for key in ("verbmem_forget", "knowmem_forget", "knowmem_retain"):
        assert 0.0 <= obj[key] <= 100.0  # MUSE's scale
    assert obj["privleak"] is None and "--privleak-reference-auc" in obj["null_reasons"]["privleak"]
    rows = [json.loads(line) for line in (Path(obj["session_path"]) / "examples.jsonl").read_text().splitlines()]
    verbmem = [row for row in rows if row["split"] == "verbmem_forget"]
    assert obj["verbmem_forget"] == pytest.approx(sum(row["verbatim_rouge_l"] for row in verbmem) / 4)

    r = cli(*common, "--privleak-reference-auc", "0.5")
    assert r.exit_code == 0, r.stderr
    obj = json.loads(r.stdout)
    # MUSE's convention: its AUC is 1 - ours; against 0.5, PrivLeak = ((1 - auc) - 0.5) / 0.5 * 100
    assert obj["privleak"] == pytest.approx(((1 - obj["mia_auc"]) - 0.5) / 0.5 * 100)
    assert "privleak" not in obj["null_reasons"]


def test_an_optional_part_missing_is_a_data_error_naming_it(muse_dir, micro_model_dir, tmp_path):
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(muse_dir, partial)
    (partial / "knowmem" / "retain_qa_icl.json").unlink()
    r = cli(
        "eval",
        "--recipe",
        "muse",
        "--recipe-data",
        partial,
        "--model",
        micro_model_dir,
        "--sessions-dir",
        tmp_path / "s",
    )
    assert r.exit_code == 3 and "muse recipe, knowmem_retain split" in r.stderr and "retain_qa_icl" in r.stderr
