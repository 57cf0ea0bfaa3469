"""Batched greedy generation: answers to questions and continuations of plain text.

Prompts are built by ``data.formatting`` so the model is asked exactly the way it was
trained. Batches are left-padded (a decoder continues from the last column, so every
prompt must end there), sorted by length so little padding is wasted, and decoded with
the KV cache by our own greedy loop, which drops each row from the batch at its EOS (the
rest of the batch no longer computes it); ``generate`` decodes a model that loop does not
fit. Results come back in input order.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from tui_unlearn.data.formatting import pad_token_id, prompt_ids

PROMPT_CUT = "prompt_cut"  # Example.extra key: its generation prompt was cut to fit (fit_prompt)


def fit_prompt(ids: list[int], room: int) -> list[int]:
    """The last ``room`` ids with the first kept in front (BOS, or a chat template's first
    token): a prompt longer than fits loses its beginning, not the text right before the
    answer, which a decoder continues from (lm-evaluation-harness cuts contexts from the
    left too)."""
    room = max(1, room)
    if len(ids) <= room:
        return ids
    return ids[:1] + ids[len(ids) - room + 1 :]


def prompt_room(max_length: int, max_new_tokens: int) -> int:
    """Prompt tokens that leave room for ``max_new_tokens`` within ``max_length``."""
    return max(1, max_length - max_new_tokens)


def generate_answers(
    model,
    tokenizer,
    questions: Sequence[str],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 48,
    max_length: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """The model's greedy answer to each question, stripped, in input order.

    Generation stops at EOS (or after ``max_new_tokens`` tokens); only the new tokens are
    decoded, special tokens skipped. With ``max_length``, a prompt longer than
    ``max_length - max_new_tokens`` tokens is cut (``fit_prompt``) and ``log`` is told how
    many were.
    """
    ids = [prompt_ids(tokenizer, q) for q in questions]
    if max_length is not None:
        room = prompt_room(max_length, max_new_tokens)
        cut = sum(len(p) > room for p in ids)
        ids = [fit_prompt(p, room) for p in ids]
        if cut and log is not None:
            log(
                f"{cut} of {len(ids)} prompts were longer than {room} tokens (the maximum length less the new "
                "tokens) and lost their beginning"
            )
    return generate_from_ids(model, tokenizer, ids, batch_size=batch_size, max_new_tokens=max_new_tokens)


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a generation: the tokenizer's EOS and the model's own EOS ids."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    model_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if model_eos is not None:
        ids.extend(model_eos if isinstance(model_eos, (list, tuple)) else [model_eos])
    return sorted(set(int(i) for i in ids))


_ABSENT = object()


@contextmanager
def _plain_generation_config(model, tokenizer, pad_id: int, eos_ids: list[int]):
    """Swap in a generation config with no sampling settings for the duration of a call.

    ``generate`` fills every unset field from ``model.generation_config``; a chat model's
    temperature / top_p / repetition_penalty would otherwise warn on each call (greedy
    ignores them) or, worse, change the greedy output (repetition penalty).
    """
    from transformers import GenerationConfig

    # A PEFT wrapper delegates generate() to its base model, which reads its own config.
    owners = [model]
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base) and get_base() is not model:
        owners.append(get_base())
    # Only an attribute the object holds itself is put back; one it forwards (PEFT) is removed.
    saved = [vars(owner).get("generation_config", _ABSENT) for owner in owners]
    for owner in owners:
        owner.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_ids or None, pad_token_id=pad_id
        )
    try:
        yield
    finally:
        for owner, config in zip(owners, saved):
            if config is _ABSENT:
                del owner.generation_config
            else:
                owner.generation_config = config


def generate_from_ids(
    model,
    tokenizer,
    prompts: Sequence[list[int]],
    *,
    batch_size: int = 64,
    max_new_tokens: int = 48,
    strip: bool = True,
) -> list[str]:
    """Greedy-decode a continuation of each prompt (token ids), in input order.

    The prompts are sorted by length (longest first, so an out-of-memory shows up at
    once), left-padded in batches of ``batch_size`` and decoded with the KV cache; a row
    leaves its batch at its first EOS (``greedy_tokens``), so the rest decode without it.
    A model that loop does not fit is decoded by ``generate`` instead (``_own_loop_fits``).
    ``strip`` False keeps leading and trailing whitespace (MUSE cuts KnowMem answers at
    a blank line, which a leading one would otherwise hide).
    """
    import torch

    from tui_unlearn.metrics.kv_cache import left_padded

    if not prompts:
        return []
    if max_new_tokens <= 0:
        return [""] * len(prompts)
    pad_id = pad_token_id(tokenizer)
    eos_ids = stop_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _plain_generation_config(model, tokenizer, pad_id, eos_ids):
            rows_of = [list(prompts[i]) or [pad_id] for i in order]
            own = _own_loop_fits(model, rows_of[:2], pad_id, eos_ids, min(max_new_tokens, CHECKED_TOKENS))
            for start in range(0, len(order), max(1, batch_size)):
                chunk = order[start : start + max(1, batch_size)]
                input_ids, attention_mask = left_padded(rows_of[start : start + len(chunk)], pad_id, device)
                decode = greedy_tokens if own else functools.partial(_generated_tokens, pad_id=pad_id)
                for index, tokens in zip(chunk, decode(model, input_ids, attention_mask, max_new_tokens, eos_ids)):
                    text = tokenizer.decode(tokens, skip_special_tokens=True)
                    results[index] = text.strip() if strip else text
    finally:
        model.train(was_training)
    return results


CHECKED_TOKENS = 8  # how far the own loop is compared with generate() on a model it has not met
_OWN_LOOP_FITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def greedy_tokens(model, input_ids, attention_mask, max_new_tokens: int, eos_ids: Sequence[int]) -> list[list[int]]:
    """The greedy continuation of each left-padded row, up to its first EOS (left out) or
    ``max_new_tokens`` tokens. A row that has ended is dropped from the batch and its KV
    cache, so each step computes only the rows still answering."""
    import torch

    from tui_unlearn.metrics.kv_cache import continue_from, reserve, run_prompts

    eos = set(eos_ids)
    last, cache = run_prompts(model, input_ids, attention_mask)
    reserve(cache, max_new_tokens)
    next_ids = last.argmax(-1)
    lengths = attention_mask.sum(1)
    mask = attention_mask
    active = list(range(input_ids.shape[0]))  # batch row -> input row
    out: list[list[int]] = [[] for _ in active]
    for step in range(max_new_tokens):
        keep = []
        for k, (row, token) in enumerate(zip(active, next_ids.tolist())):
            if token not in eos:
                out[row].append(token)
                keep.append(k)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):
            kept = torch.tensor(keep, device=next_ids.device)
            cache.reorder_cache(kept)
            mask, lengths, next_ids = mask[kept], lengths[kept], next_ids[kept]
            active = [active[k] for k in keep]
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        logits = continue_from(model, cache, next_ids[:, None], mask, (lengths + step)[:, None])
        next_ids = logits[:, -1].argmax(-1)
    return out


def _generated_tokens(
    model, input_ids, attention_mask, max_new_tokens: int, eos_ids: Sequence[int], pad_id: int = 0
) -> list[list[int]]:
    """``generate``'s greedy continuation of each left-padded row, cut at its first EOS."""
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        do_sample=False,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=list(eos_ids) or None,
        use_cache=True,
    )
    eos = set(eos_ids)
    rows = []
    for row in output[:, input_ids.shape[1] :].tolist():
        # Finished rows are filled with the pad id, which may be a real token (EOS, or 0
        # when the tokenizer has no pad): cut at the first EOS.
        for cut, token in enumerate(row):
            if token in eos:
                row = row[:cut]
                break
        rows.append(row)
    return rows


def _own_loop_fits(model, rows: list[list[int]], pad_id: int, eos_ids: Sequence[int], tokens: int) -> bool:
    """Whether ``greedy_tokens`` decodes this model as ``generate`` does: the first time a
    model is seen, a few tokens of a couple of prompts are decoded both ways. A model
    that takes no cache or position ids, or decodes otherwise, is left to ``generate``."""
    from tui_unlearn.metrics.kv_cache import left_padded, unless_unfit

    if model in _OWN_LOOP_FITS:
        return _OWN_LOOP_FITS[model]
    input_ids, attention_mask = left_padded(rows, pad_id, next(model.parameters()).device)
    ours = unless_unfit(lambda: greedy_tokens(model, input_ids, attention_mask, tokens, eos_ids))
    fits = ours is not None and ours == _generated_tokens(model, input_ids, attention_mask, tokens, eos_ids, pad_id)
    _OWN_LOOP_FITS[model] = fits
    return fits
