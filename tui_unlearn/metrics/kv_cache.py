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
from typing import Any, TypeVar, cast

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


def reserve(cache: Any, tokens: int) -> None:
    """Give each growing layer of ``cache`` room for ``tokens`` more tokens, written in place.

    transformers' ``DynamicLayer`` concatenates every new token onto its keys and values:
    a copy of the whole cache per layer per step, in fresh memory the allocator maps and
    faults in each time (SmolLM2-135M, 32 answers of 200 tokens on a CPU: 1.13x the CPU time
    of a reserved cache, ``bench/bench_decode.py``). A reserved layer writes the new token into a buffer sized for
    the whole answer and hands attention a view of the filled part. Layers of other kinds
    (sliding windows, static, quantized) are left as they are.
    """
    from transformers.cache_utils import DynamicLayer

    reserved = _reserved_layer_class()
    for layer in getattr(cache, "layers", ()):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.keys is not None and layer.keys.dim() == 4:
            layer.__class__ = reserved
            cast(Any, layer).hold(tokens)


@functools.lru_cache(maxsize=1)
def _reserved_layer_class():
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        """A ``DynamicLayer`` whose keys and values are views of buffers with room to grow."""

        def hold(self, tokens: int) -> None:
            assert self.keys is not None and self.values is not None  # reserve() takes filled layers only
            self.filled = self.keys.shape[-2]
            self.key_buffer = self._grown(self.keys, self.filled + tokens)
            self.value_buffer = self._grown(self.values, self.filled + tokens)
            self._view()

        @staticmethod
        def _grown(states, capacity: int):
            buffer = states.new_empty((*states.shape[:2], capacity, states.shape[-1]))
            buffer[:, :, : states.shape[-2]] = states
            return buffer

        def _view(self) -> None:
            self.keys = self.key_buffer[:, :, : self.filled]
            self.values = self.value_buffer[:, :, : self.filled]

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.filled + key_states.shape[-2]
            if end > self.key_buffer.shape[-2]:  # more than was reserved: grow by doubling
                capacity = max(end, 2 * self.key_buffer.shape[-2])
                self.key_buffer = self._grown(self.keys, capacity)
                self.value_buffer = self._grown(self.values, capacity)
            self.key_buffer[:, :, self.filled : end] = key_states
            self.value_buffer[:, :, self.filled : end] = value_states
            self.filled = end
            self._view()
            return self.keys, self.values

        def reorder_cache(self, beam_idx) -> None:
            self.key_buffer = self.key_buffer.index_select(0, beam_idx.to(self.key_buffer.device))
            self.value_buffer = self.value_buffer.index_select(0, beam_idx.to(self.value_buffer.device))
            self._view()

        def batch_select_indices(self, indices) -> None:
            self.key_buffer, self.value_buffer = self.key_buffer[indices, ...], self.value_buffer[indices, ...]
            self._view()

        def batch_repeat_interleave(self, repeats: int) -> None:
            self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
            self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
            self._view()

        def crop(self, tokens_to_remove: int) -> None:
            super().crop(tokens_to_remove)
            self.filled = self.keys.shape[-2] if self.keys is not None else 0

        def reset(self) -> None:
            super().reset()
            self.key_buffer = self.value_buffer = None
            object.__setattr__(self, "__class__", DynamicLayer)  # empty again: grows as a plain layer would

    return ReservedLayer
