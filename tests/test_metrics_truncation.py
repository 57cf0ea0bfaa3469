"""Evaluation cuts what does not fit the maximum length, and says so (issue 19 item 8).

A 50,000-word question used to be generated from in full: past the model's context, and
out of memory. Scored sequences are cut at the end as training cuts them; generation
prompts lose their beginning (``generation.fit_prompt``) so the answer still follows the
prompt's end.
"""

from __future__ import annotations

import json

import pytest
from test_cli import invoke

from tui_unlearn.data.formatting import prompt_ids
from tui_unlearn.data.records import make_record
from tui_unlearn.metrics.evaluate import evaluate_splits
from tui_unlearn.metrics.generation import fit_prompt, generate_answers
from tui_unlearn.metrics.scoring import score_answers

LONG_QUESTION = " ".join(f"word{i % 97}" for i in range(5000)) + " Where was Alia Brenn born?"


@pytest.fixture()
def longest_input(lively):
    """(model, tokenizer, seen): ``seen`` lists the length of every sequence the model runs."""
    model, tokenizer = lively
    seen: list[int] = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length() if cache is not None and hasattr(cache, "get_seq_length") else 0
        seen.append(past + ids.shape[1])

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    yield model, tokenizer, seen
    handle.remove()


def test_fit_prompt_keeps_the_first_token_and_the_end():
    assert fit_prompt([1, 2, 3, 4, 5, 6], 4) == [1, 4, 5, 6]
    assert fit_prompt([1, 2, 3], 4) == [1, 2, 3]
    assert fit_prompt([1, 2, 3], 0) == [1]


def test_a_long_question_is_cut_for_scoring_and_generation(longest_input):
    model, tokenizer, seen = longest_input
    records = [make_record(LONG_QUESTION, "In Port Liren."), make_record("Where was Alia Brenn born?", "Port Liren.")]
    out = evaluate_splits(model, tokenizer, {"forget": records}, max_length=64, max_new_tokens=8)
    # every pass within max_length (prompt cut to 64 - 8, then 8 new tokens at most)
    assert max(seen) <= 64
    long_row, short_row = out.examples
    assert long_row["loss"] is None and short_row["loss"] is not None  # training would not see its answer either
    assert long_row["generated"] is not None
    assert out.notes == [
        "1 of 2 scored records were longer than the maximum length and lost their end (1 their whole answer: "
        "not scored)",
        "1 of 2 generation prompts were longer than the maximum length less the new tokens and lost their beginning",
    ]
    # the cut prompt ends as the full one does: the model is still asked the question
    full = prompt_ids(tokenizer, LONG_QUESTION)
    assert fit_prompt(full, 56)[-20:] == full[-20:]


def test_nothing_cut_nothing_said(lively):
    model, tokenizer = lively
    out = evaluate_splits(model, tokenizer, {"forget": [make_record("Who?", "Alia.")]}, max_length=64, max_new_tokens=4)
    assert out.notes == []


def test_scores_say_which_sequences_were_cut(lively):
    model, tokenizer = lively
    long_answer = " ".join(["Port Liren"] * 40)
    pairs = [("Where?", long_answer), ("Where?", "Port Liren."), ("", long_answer)]
    cut, short, text = score_answers(model, tokenizer, pairs, max_length=48)
    assert cut.truncated and text.truncated and not short.truncated
    assert 0 < cut.num_tokens < len(tokenizer(long_answer)["input_ids"])


def test_probe_answers_are_cut_and_logged(longest_input):
    model, tokenizer, seen = longest_input
    lines: list[str] = []
    answers = generate_answers(
        model, tokenizer, [LONG_QUESTION, "Who?"], max_new_tokens=4, max_length=32, log=lines.append
    )
    assert len(answers) == 2 and max(seen) <= 32
    assert lines == [
        "1 of 2 prompts were longer than 28 tokens (the maximum length less the new tokens) and lost their beginning"
    ]


@pytest.mark.slow
def test_a_run_with_a_huge_probe_and_question_finishes_and_says_what_was_cut(micro_model_dir, tmp_path):
    forget = tmp_path / "forget.jsonl"
    huge = " ".join(f"w{i % 89}" for i in range(20_000))
    forget.write_text(
        json.dumps({"question": huge + " Where?", "answer": "There."})
        + "\n"
        + json.dumps({"question": "Where was Alia Brenn born?", "answer": "Port Liren."})
        + "\n"
    )
    args = ["--model", str(micro_model_dir), "--forget", str(forget), "--steps", "1", "--probe", huge + " Who?"]
    result = invoke([*args, "--json", "--guard-general", "0"], tmp_path / "s")
    assert result.exit_code == 0, result.stderr[-2000:]
    assert "evaluating (before): 1 of 2 generation prompts were longer than" in result.stderr
    assert "probe answers: 2 of 3 prompts were longer than" in result.stderr  # the forget question is a probe too


def test_a_huge_text_is_tokenized_only_as_far_as_it_is_read(lively, monkeypatch):
    """A 10 MB one-line file took the tokenizer ~25 s per pass, three passes; now only a head
    of a few thousand characters is tokenized, with the same numbers as the whole text."""
    from tui_unlearn.metrics.evaluate import _split_text

    model, tokenizer = lively
    body = " ".join(f"w{(i * 7919) % 1013}" for i in range(60_000))  # ~350 kB, one line
    longest: list[int] = [0]
    call = type(tokenizer).__call__

    def spy(self, text, *args, **kwargs):
        texts = [text] if isinstance(text, str) else list(text)
        longest[0] = max([longest[0], *(len(t) for t in texts)])
        return call(self, text, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", spy)
    out = evaluate_splits(model, tokenizer, {"forget": [make_record("", body)]}, max_length=200, max_new_tokens=8)
    read = longest[0]
    monkeypatch.undo()
    assert read < 20_000
    row = out.examples[0]
    _, prefix, continuation, _ = _split_text(tokenizer, body, 200)
    assert (row["question"], row["answer"]) == (prefix, continuation)
    [whole] = score_answers(model, tokenizer, [("", body)], max_length=200)
    assert row["loss"] == pytest.approx(whole.loss, abs=1e-6) and whole.truncated
    assert out.notes == ["1 of 1 scored records were longer than the maximum length and lost their end"]
