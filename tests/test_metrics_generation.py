"""Batched greedy generation: equal to one-at-a-time and to a hand-rolled greedy loop,
left-padded, in input order, quiet, and correct without a pad token."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from conftest import cache_path_drifts, load_lively_model

from tui_unlearn.data.formatting import prompt_ids
from tui_unlearn.metrics.generation import generate_answers, generate_from_ids

QUESTIONS = [
    "Where was Alia Brenn born?",
    "Hi",
    "What genre does Odo Vask write, and why is it so very popular among readers of the north?",
    "Who?",
    "Where was Odo Vask born?",
    "The quick brown fox",
    "Name one book.",
]


def greedy_reference(model, tokenizer, ids, max_new_tokens):
    """Greedy decoding by hand: full forward each step, no cache, no padding."""
    ids = list(ids)
    new = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            token = int(logits.argmax())
            if token == tokenizer.eos_token_id:
                break
            new.append(token)
            ids.append(token)
    return tokenizer.decode(new, skip_special_tokens=True).strip()


def test_batched_equals_one_at_a_time_for_mixed_lengths(lively):
    model, tokenizer = lively
    batched = generate_answers(model, tokenizer, QUESTIONS, batch_size=3, max_new_tokens=16)
    single = [generate_answers(model, tokenizer, [q], batch_size=1, max_new_tokens=16)[0] for q in QUESTIONS]
    assert batched == single
    assert len(set(batched)) > 3  # the outputs differ, so order and padding are really tested


def test_matches_a_hand_rolled_greedy_loop(lively):
    model, tokenizer = lively
    expected = [greedy_reference(model, tokenizer, prompt_ids(tokenizer, q), 12) for q in QUESTIONS]
    assert generate_answers(model, tokenizer, QUESTIONS, batch_size=8, max_new_tokens=12) == expected


def test_tokenizer_padding_side_and_missing_pad_token_do_not_matter(micro_model_dir):
    model, tokenizer = load_lively_model(micro_model_dir)
    expected = generate_answers(model, tokenizer, QUESTIONS, batch_size=1, max_new_tokens=10)
    tokenizer.padding_side = "right"
    tokenizer.pad_token = None  # falls back to EOS as the pad id
    assert tokenizer.pad_token_id is None
    assert generate_answers(model, tokenizer, QUESTIONS, batch_size=4, max_new_tokens=10) == expected


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def transformers_warnings():
    """Warnings and transformers log records (its logger does not propagate to caplog)."""
    from transformers.utils import logging as hf_logging

    handler = _Collect()
    logger = logging.getLogger("transformers")
    # Loading a model elsewhere in this process may have silenced transformers (the engine
    # does), and warning_once remembers what it already said: reset both for this test.
    level = logger.level
    logger.setLevel(logging.WARNING)
    once = getattr(hf_logging, "warning_once", None)
    if hasattr(once, "cache_clear"):
        once.cache_clear()
    logger.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield lambda: handler.messages + [str(w.message) for w in caught]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_sampling_settings_of_the_model_are_ignored_quietly(micro_model_dir, transformers_warnings):
    model, tokenizer = load_lively_model(micro_model_dir)
    expected = generate_answers(model, tokenizer, QUESTIONS[:3], max_new_tokens=10)
    config = model.generation_config
    config.do_sample, config.temperature, config.top_p, config.max_length = True, 0.6, 0.9, 4096
    config.repetition_penalty = 1.5  # would change greedy output if it leaked through
    assert generate_answers(model, tokenizer, QUESTIONS[:3], max_new_tokens=10) == expected
    assert transformers_warnings() == []
    assert model.generation_config is config and config.temperature == 0.6  # restored


def test_the_warning_check_can_fail(micro_model_dir, transformers_warnings):
    model, _ = load_lively_model(micro_model_dir)
    model.generation_config.max_length = 4096
    ids = torch.tensor([[1, 5, 6]])
    model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=2)
    assert any("max_length" in m for m in transformers_warnings())


def test_a_peft_wrapped_model_is_greedy_and_left_as_it_was(micro_model_dir, transformers_warnings):
    peft = pytest.importorskip("peft")
    model, tokenizer = load_lively_model(micro_model_dir)
    expected = generate_answers(model, tokenizer, QUESTIONS[:4], max_new_tokens=10)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    base_config = wrapped.get_base_model().generation_config
    base_config.do_sample, base_config.temperature, base_config.repetition_penalty = True, 0.7, 1.5
    assert generate_answers(wrapped, tokenizer, QUESTIONS[:4], max_new_tokens=10) == expected  # LoRA B starts at 0
    assert not [m for m in transformers_warnings() if "generation" in m.lower()]
    assert "generation_config" not in vars(wrapped)
    assert wrapped.get_base_model().generation_config is base_config


class ScriptedLM(torch.nn.Module):
    """Stands in for a model: records what ``generate`` receives and appends fixed tokens."""

    def __init__(self, continuation):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.generation_config = None
        self.continuation = continuation
        self.calls = []

    def generate(self, input_ids, attention_mask, **kwargs):
        self.calls.append((input_ids.clone(), attention_mask.clone(), kwargs))
        tail = torch.tensor([self.continuation] * input_ids.shape[0])
        return torch.cat([input_ids, tail], dim=1)


def test_left_padding_order_and_cut_at_eos(micro_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(micro_model_dir)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    word = tokenizer(" born", add_special_tokens=False)["input_ids"]
    # new tokens: " born", EOS, then junk that must not be decoded
    model = ScriptedLM(word + [eos] + word + [pad])
    prompts = [[5, 6], [7, 8, 9, 10], [11]]
    out = generate_from_ids(model, tokenizer, prompts, batch_size=8, max_new_tokens=4)
    assert out == ["born", "born", "born"]
    input_ids, mask, kwargs = model.calls[0]
    # sorted longest first, padded on the left, mask zero on the pads
    assert input_ids.tolist() == [[7, 8, 9, 10], [pad, pad, 5, 6], [pad, pad, pad, 11]]
    assert mask.tolist() == [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]]
    assert kwargs["do_sample"] is False and kwargs["pad_token_id"] == pad
    assert kwargs["max_new_tokens"] == 4


def test_empty_inputs():
    assert generate_from_ids(None, None, []) == []


# ---- our greedy loop: rows leave the batch at their EOS ---------------------------------


def _both_ways(model, tokenizer, questions, max_new_tokens, batch_size=4):
    """(our loop's answers, generate()'s answers, whether our loop was used)."""
    from functools import partial

    from tui_unlearn.data.formatting import pad_token_id
    from tui_unlearn.metrics import generation

    ids = [prompt_ids(tokenizer, q) for q in questions]
    ours = generate_from_ids(model, tokenizer, ids, batch_size=batch_size, max_new_tokens=max_new_tokens)
    used = generation._OWN_LOOP_FITS.get(model)
    original = generation.greedy_tokens
    try:
        generation.greedy_tokens = partial(generation._generated_tokens, pad_id=pad_token_id(tokenizer))
        theirs = generate_from_ids(model, tokenizer, ids, batch_size=batch_size, max_new_tokens=max_new_tokens)
    finally:
        generation.greedy_tokens = original
    return ours, theirs, used


def test_rows_that_end_early_leave_the_batch_and_the_answers_are_generates():
    """The bundled model answers its questions and stops: rows end at different steps."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_unlearn.models.bundled import bundled_model_dir
    from tui_unlearn.recipes.sources import read_split

    folder = bundled_model_dir("tiny-authors")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    questions = [
        r["question"] for r in read_split("bundled:forget10", "qa")[:12]
    ] + QUESTIONS  # known answers, and babble
    ours, theirs, used = _both_ways(model, tokenizer, questions, max_new_tokens=24, batch_size=5)
    assert used is True
    assert ours == theirs
    lengths = {len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in ours}
    assert len(lengths) > 3 and max(lengths) < 24 + 1  # rows ended at many different steps


def test_a_model_with_learned_positions_decodes_in_our_loop(micro_model_dir):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(micro_model_dir)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(config).eval()
    ours, theirs, used = _both_ways(model, tokenizer, QUESTIONS, max_new_tokens=12)
    assert used is True and ours == theirs


def test_a_model_our_loop_does_not_fit_is_decoded_by_generate(micro_model_dir):
    """A continuation from the cache that differs from generate()'s: generate decodes it."""
    from tui_unlearn.metrics import generation

    model, tokenizer = load_lively_model(micro_model_dir)

    drifting = cache_path_drifts(model)
    ids = [prompt_ids(tokenizer, q) for q in QUESTIONS]
    got = generate_from_ids(drifting, tokenizer, ids, batch_size=4, max_new_tokens=8)
    assert generation._OWN_LOOP_FITS[drifting] is False
    assert got == generate_from_ids(model, tokenizer, ids, batch_size=4, max_new_tokens=8)


def test_a_reserved_cache_continues_as_a_growing_one(lively):
    """Decoding writes into a reserved buffer instead of concatenating per step; past the
    reservation it grows, and dropping rows selects from it: the logits match throughout."""
    from transformers.cache_utils import DynamicLayer

    from tui_unlearn.metrics.kv_cache import continue_from, left_padded, reserve, run_prompts

    model, tokenizer = lively
    ids, mask = left_padded([prompt_ids(tokenizer, q) for q in QUESTIONS[:4]], 0, "cpu")
    with torch.inference_mode():
        _, plain = run_prompts(model, ids, mask)
        last, reserved = run_prompts(model, ids, mask)
        reserve(reserved, 2)  # fewer than the steps below: the buffer must grow
        assert all(type(layer) is not DynamicLayer for layer in reserved.layers)
        lengths, token = mask.sum(1), last.argmax(-1)
        for step in range(5):
            if step == 3:  # a row finishes: both caches drop it
                keep = torch.tensor([0, 2, 3])
                plain.reorder_cache(keep)
                reserved.reorder_cache(keep)
                mask, lengths, token = mask[keep], lengths[keep], token[keep]
            mask = torch.cat([mask, mask.new_ones(len(token), 1)], dim=1)
            args = (token[:, None], mask, (lengths + step)[:, None])
            expected = continue_from(model, plain, *args)
            got = continue_from(model, reserved, *args)
            torch.testing.assert_close(got, expected)
            token = got[:, -1].argmax(-1)
        assert reserved.get_seq_length() == plain.get_seq_length()
