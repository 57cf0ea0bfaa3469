"""How many sequences an evaluation batch holds: larger where memory allows, halved on
running out of it.

On a GPU the rows per batch follow from the device's total memory less the weights, and
what one row costs at the evaluation's longest sequence: its logits (an upper bound:
scoring computes them at the answer positions only, all of a plain text's; the float32
statistics work in chunks) and its KV cache (generation). The device's *total* memory, not
what is free at the moment, so the same model on the same machine always gets the same
batches, hence the same numbers. A CPU follows the same rule with the machine's total RAM,
capped at ``CPU_ROWS``: larger batches only spill out of the caches there
(``bench/bench_eval.py --batch-sizes`` measures it), and a 135 M model with a 49 k
vocabulary on a small machine gets fewer (issue 18: 4-5 GB resident for 0.5 GB of weights).
``--eval-batch-size N`` overrides both, and an evaluation that runs out of memory anyway is
retried with half the batch (accelerate's test for an out-of-memory error), which later
evaluations keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

CPU_ROWS = 64  # scoring and generation both near their fastest on 2-16 cores (bench_eval)
GPU_MAX_ROWS = 256  # past this a GPU is saturated; more rows only delay the first result
MEMORY_SHARE = 0.5  # of what the weights leave: the rest for the optimizer, activations, fragmentation


def row_bytes(model: Any, tokens: int) -> int:
    """An upper bound on the memory one evaluated sequence of ``tokens`` tokens takes."""
    config = getattr(model, "config", None)
    get = getattr(config, "get_text_config", None)
    config = get() if callable(get) else config
    vocab = int(getattr(config, "vocab_size", 0) or 32_000)
    hidden = int(getattr(config, "hidden_size", 0) or 4096)
    layers = int(getattr(config, "num_hidden_layers", 0) or 32)
    return row_bytes_of(vocab, hidden, layers, next(model.parameters()).element_size(), tokens)


def row_bytes_of(vocab: int, hidden: int, layers: int, width: int, tokens: int) -> int:
    """:func:`row_bytes` from the model's sizes (``width``: bytes per weight), for a plan made
    before any model is loaded (``memplan``)."""
    logits = tokens * vocab * width
    kv_cache = 2 * layers * hidden * tokens * width  # at most: grouped-query attention keeps less
    activations = 8 * hidden * tokens * width  # the widest live intermediates of one layer, roughly
    return logits + kv_cache + activations


def auto_batch_size(model: Any, tokens: int) -> int:
    """Rows per evaluation batch for ``model`` on its device, sequences of up to ``tokens``."""
    import torch

    device = next(model.parameters()).device
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    if device.type != "cuda":
        import psutil

        return rows_that_fit(psutil.virtual_memory().total, weights, row_bytes(model, tokens), cap=CPU_ROWS)
    total = torch.cuda.get_device_properties(device).total_memory
    return rows_that_fit(total, weights, row_bytes(model, tokens))


def rows_that_fit(total_memory: int, weights: int, per_row: int, cap: int = GPU_MAX_ROWS) -> int:
    """The largest power of two of rows (1 to ``cap``) whose memory fits in
    ``MEMORY_SHARE`` of what the weights leave of ``total_memory`` (bytes)."""
    rows = int(max(0, total_memory - weights) * MEMORY_SHARE // max(1, per_row))
    size = 1
    while size * 2 <= min(rows, cap):  # a power of two: the same batches on like devices
        size *= 2
    return size


class EvalBatch:
    """The rows per evaluation batch of one run, halved (and kept halved) on out-of-memory."""

    def __init__(self, size: int, log: Callable[[str], None] | None = None):
        self.size = max(1, size)
        self.log = log

    @classmethod
    def for_model(cls, model: Any, tokens: int, requested: int = 0, log: Callable[[str], None] | None = None):
        return cls(requested or auto_batch_size(model, tokens), log)

    def run(self, evaluate: Callable[[int], T]) -> T:
        """``evaluate(rows)``, retried with half the rows while it runs out of memory."""
        from accelerate.utils.memory import clear_device_cache, should_reduce_batch_size

        while True:
            try:
                return evaluate(self.size)
            except Exception as exc:
                if self.size <= 1 or not should_reduce_batch_size(exc):
                    raise
            clear_device_cache(garbage_collection=True)
            self.size //= 2
            if self.log is not None:
                self.log(f"evaluation ran out of memory; retrying with {self.size} sequences per batch")
