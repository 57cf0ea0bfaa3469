"""Batched greedy generation: answers to questions and continuations of plain text.

Prompts are built by ``data.formatting`` so the model is asked exactly the way it was
trained. Batches are left-padded (a decoder continues from the last column, so every
prompt must end there), sorted by length so little padding is wasted, and decoded with
the KV cache. Results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from tui_unlearn.data.formatting import pad_token_id, prompt_ids


def generate_answers(
    model, tokenizer, questions: Sequence[str], *, batch_size: int = 64, max_new_tokens: int = 48
) -> list[str]:
    """The model's greedy answer to each question, stripped, in input order.

    Generation stops at EOS (or after ``max_new_tokens`` tokens); only the new tokens are
    decoded, special tokens skipped.
    """
    ids = [prompt_ids(tokenizer, q) for q in questions]
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
    once), left-padded in batches of ``batch_size`` and decoded with the KV cache.
    ``strip`` False keeps leading and trailing whitespace (MUSE cuts KnowMem answers at
    a blank line, which a leading one would otherwise hide).
    """
    import torch

    if not prompts:
        return []
    if max_new_tokens <= 0:
        return [""] * len(prompts)
    pad_id = pad_token_id(tokenizer)
    eos_ids = stop_token_ids(model, tokenizer)
    eos_set = set(eos_ids)
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _plain_generation_config(model, tokenizer, pad_id, eos_ids):
            for start in range(0, len(order), max(1, batch_size)):
                chunk = order[start : start + max(1, batch_size)]
                rows = [list(prompts[i]) or [pad_id] for i in chunk]
                width = max(len(r) for r in rows)
                input_ids = torch.tensor([[pad_id] * (width - len(r)) + r for r in rows], device=device)
                attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    do_sample=False,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=pad_id,
                    eos_token_id=eos_ids or None,
                    use_cache=True,
                )
                for row, index in zip(output[:, width:].tolist(), chunk):
                    # Finished rows are filled with the pad id, which may be a real token
                    # (EOS or 0 when the tokenizer has no pad): cut at the first EOS.
                    for cut, token in enumerate(row):
                        if token in eos_set:
                            row = row[:cut]
                            break
                    text = tokenizer.decode(row, skip_special_tokens=True)
                    results[index] = text.strip() if strip else text
    finally:
        model.train(was_training)
    return results
