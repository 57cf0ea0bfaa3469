"""Running a causal LM on a left-padded prompt batch and continuing from its KV cache.

What scoring answers that share a prompt and greedy decoding with rows dropped as they
finish both need: the prompt pass with position ids that ignore the padding, the cache
it returns (``cache`` in transformers 5, ``past_key_values`` before), and the keyword a
continuation passes it back under. ``Cache.reorder_cache`` (what beam search uses) then
selects, repeats or drops rows of the cache.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


@functools.lru_cache(maxsize=64)
def _parameters_of(forward: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def forward_parameters(model: Any) -> Collection[str]:
    """The names the model's forward takes (a PEFT wrapper's: its base model's)."""
    get_base = getattr(model, "get_base_model", None)
    inner = get_base() if callable(get_base) else model
    return _parameters_of(type(inner).forward)


def left_padded(rows: Sequence[Sequence[int]], pad_id: int, device: Any):
    """(input_ids, attention_mask) of ``rows`` left-padded to the longest: every row ends
    in the last column, where decoding continues."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def run_prompts(model: Any, input_ids: Any, attention_mask: Any):
    """(last-column logits, cache) of a left-padded prompt batch. Raises TypeError when
    the model returns no cache object (a model these continuations do not fit)."""
    keep = {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters(model) else {}
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(-1) - 1).clamp_min(0),  # padding takes no position
        use_cache=True,
        **keep,
    )
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None or not hasattr(cache, "reorder_cache"):
        raise TypeError("the model returned no KV cache to continue from")
    return out.logits[:, -1], cache


def continue_from(model: Any, cache: Any, input_ids: Any, attention_mask: Any, position_ids: Any):
    """The logits of ``input_ids`` run after the cached tokens; ``attention_mask`` covers
    the cached columns and the new ones."""
    name = "cache" if "cache" in forward_parameters(model) else "past_key_values"
    return model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        **{name: cache},
    ).logits


def unless_unfit(attempt: Callable[[], T]) -> T | None:
    """``attempt()``, or None when it fails the way a model these cache paths do not fit
    fails (no cache, no ``position_ids``, another cache layout). Running out of memory is
    raised: a smaller batch is the answer to it, not another path."""
    try:
        return attempt()
    except (TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        from accelerate.utils.memory import should_reduce_batch_size

        if should_reduce_batch_size(exc):
            raise
        return None
