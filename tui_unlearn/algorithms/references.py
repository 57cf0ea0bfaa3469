"""What the frozen original model gives a method during training, without holding more than needed.

Two things a method may ask of the original ("reference") model:

- per-example summed answer log-probabilities of fixed streams (NPO's and DPO's reference
  term). These never change during training, so they are computed **once, before the first
  update**, in one no-grad pass of the model itself, and looked up by each example's
  ``index``: no second model exists.
- logits or one layer's activations on arbitrary batches (KL to the original on retain
  data, a distillation teacher, RMU's retain term). Only then is a reference model kept:
  the same weights with LoRA adapters disabled (no copy), else a frozen copy in the
  training dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

from tui_unlearn.algorithms.base import forward, layer_activations, sequence_logprob_sum


class References:
    """Cached reference log-probabilities by stream, and (optionally) the reference model.

    ``call(fn)`` runs ``fn(reference_model)`` with no gradient (and adapters off under
    LoRA); ``logits_fn`` is the older, logits-only way to give a reference.
    """

    def __init__(
        self,
        logits_fn: Callable[[dict], Any] | None = None,
        cached: Mapping[str, Any] | None = None,
        *,
        call: Callable[[Callable[[Any], Any]], Any] | None = None,
    ) -> None:
        self._logits_fn = logits_fn
        self._call = call
        self.cached = dict(cached or {})

    @classmethod
    def of_model(
        cls, model: Any, *, disable_adapter: bool = False, pause: Callable[[], Any] | None = None
    ) -> References:
        """References read from ``model`` on demand (frozen: no gradient flows into it).

        ``disable_adapter``: ``model`` is a peft model whose adapters are switched off for
        the reference pass, so the base weights act as the original without a copy.
        ``pause``: a context manager factory entered around each pass (the regularisers'
        ``paused``, so training-time dropout hooks on shared layers stay off).
        """

        def call(fn: Callable[[Any], Any]):
            import torch

            context = model.disable_adapter() if disable_adapter else nullcontext()
            with torch.no_grad(), context, pause() if pause else nullcontext():
                return fn(model)

        return cls(call=call)

    def logits(self, batch: dict):
        if self._call is not None:
            return self._call(lambda model: forward(model, batch))
        if self._logits_fn is None:
            raise RuntimeError("no reference model was kept; the method must declare needs_reference")
        return self._logits_fn(batch)

    def activations(self, batch: dict, layer: int):
        """The original's output of decoder layer ``layer`` on ``batch`` [B, T, D]."""
        if self._call is None:
            raise RuntimeError("no reference model was kept; the method must declare needs_reference")
        return self._call(lambda model: layer_activations(model, batch, layer))

    def logprob_sums(self, stream: str, batch: dict):
        """Summed answer log-probabilities [B] of the batch's examples under the original."""
        if stream in self.cached:
            table = self.cached[stream]
            return table[batch["index"].to(table.device)].to(batch["input_ids"].device)
        return sequence_logprob_sum(self.logits(batch), batch["labels"])

    def cache(self, stream: str, values: Any) -> None:
        self.cached[stream] = values


def reference_logprob_table(
    model,
    examples: Sequence[dict],
    pad_id: int,
    *,
    batch_size: int = 16,
    device=None,
    autocast: Callable[[], Any] | None = None,
):
    """[N] float32 tensor: the summed answer log-probability of each encoded example under
    ``model`` as it is now (one no-grad pass in batches sorted by length; CPU-resident)."""
    import torch

    from tui_unlearn.data.formatting import collate

    device = device or next(model.parameters()).device
    out = torch.zeros(len(examples), dtype=torch.float32)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), autocast() if autocast else nullcontext():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = collate([examples[i] for i in chunk], pad_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                values = sequence_logprob_sum(forward(model, batch), batch["labels"]).float().cpu()
                out[torch.tensor(chunk)] = values
    finally:
        model.train(was_training)
    return out
