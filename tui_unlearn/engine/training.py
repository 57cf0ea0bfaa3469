"""The one training loop: unlearning runs, the relearning check and the tiny-model builder use it.

Built on ``accelerate.Accelerator``: ``prepare`` wraps model and optimizer (DDP, FSDP or
DeepSpeed under ``accelerate launch``, nothing in a single process), ``accumulate`` +
``backward`` handle gradient accumulation and mixed precision. One optimisation step is
``accumulation`` micro-steps, each asking the caller for its loss terms.

The divergence guard: a NaN/inf loss in any micro-step of any process, or a non-finite
gradient norm, stops **before** the optimizer step, so the weights (and the optimizer's
moments) stay those of the last good step. Every process takes the same decision: the
loss flag is summed across processes and the gradient norm is of all-reduced gradients.
Gradients are released right after the optimizer step (``zero_grad(set_to_none=True)``),
so the next forward pass does not carry the previous step's gradients in memory.

In a single process a micro-step may backpropagate a finished part of its loss early
(``algorithms.base.backward_early``: NPO's forget term before the retain forward pass),
so the activations of the forget and the retain passes are never held at once. Under a
launcher the loss is backpropagated whole: a second backward would all-reduce twice (DDP)
or step the optimizer inside ``backward`` (DeepSpeed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

OK, DIVERGED = "ok", "diverged"


def warmup_schedule(total_steps: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    """Linear warm-up over the first ``warmup_fraction`` of the steps, then constant."""
    warmup = max(1, int(total_steps * warmup_fraction))
    return lambda step: min(1.0, (step + 1) / warmup)


@dataclass
class StepOutcome:
    status: str  # "ok" | "diverged"
    terms: dict[str, float] = field(default_factory=dict)  # mean over micro-steps and processes
    lr: float = 0.0
    grad_norm: float | None = None
    skipped: bool = False  # fp16: the loss scaler skipped this update (overflow), not a divergence


class TrainingLoop:
    """AdamW over ``params`` of ``model``, stepped by :meth:`step` (one optimisation step each).

    ``schedule(step) -> lr factor`` (LambdaLR); ``grad_clip`` 0 disables clipping (the norm
    is still measured for the divergence guard). The prepared model is ``self.model``.
    """

    def __init__(
        self,
        accelerator: Any,
        model: Any,
        params: Iterable[Any],
        *,
        lr: float,
        schedule: Callable[[int], float],
        grad_clip: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        import torch

        self.accelerator = accelerator
        self.params = [p for p in params if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=lr, betas=betas, weight_decay=weight_decay)
        # The scheduler stays ours (not prepared): accelerate would step it once per process.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.grad_clip = grad_clip
        self.steps_done = 0

    @property
    def accumulation(self) -> int:
        return self.accelerator.gradient_accumulation_steps

    def step(self, micro_step: Callable[[int], dict[str, Any]]) -> StepOutcome:
        """One optimisation step: ``micro_step(j)`` returns the loss terms of micro-batch ``j``
        (``"loss"`` is optimised; the other terms are reported)."""
        import torch
        from accelerate.utils import DistributedType

        from tui_unlearn.algorithms.base import backward_in_parts

        acc = self.accelerator
        sums: dict[str, float] = {}
        bad_loss = False
        in_parts = acc.backward if acc.distributed_type == DistributedType.NO else None
        for j in range(self.accumulation):
            with acc.accumulate(self.model):
                with backward_in_parts(in_parts):
                    terms = micro_step(j)
                loss = terms["loss"]
                if not bool(torch.isfinite(loss.detach()).all()):
                    bad_loss = True
                # Backward even a bad loss: under DDP every process must join the gradient
                # all-reduce, and the NaN it spreads is caught below on every process alike.
                acc.backward(loss)
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach() if hasattr(value, "detach") else value)
        if acc.num_processes > 1:
            flag = acc.reduce(torch.tensor([1.0 if bad_loss else 0.0], device=acc.device), reduction="sum")
            bad_loss = bool(flag.item() > 0)
        max_norm = self.grad_clip if self.grad_clip > 0 else float("inf")
        norm = acc.clip_grad_norm_(self.params, max_norm)
        norm_value = float(norm) if norm is not None else None
        fp16 = acc.mixed_precision == "fp16"
        # Under fp16 an overflowing gradient is the loss scaler's business (it skips the step).
        if bad_loss or (norm_value is not None and not math.isfinite(norm_value) and not fp16):
            self.optimizer.zero_grad(set_to_none=True)
            return StepOutcome(DIVERGED, self._mean(sums), self.lr, norm_value)
        self.optimizer.step()
        skipped = bool(getattr(acc, "optimizer_step_was_skipped", False))
        if not skipped:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1
        return StepOutcome(OK, self._mean(sums), self.lr, norm_value, skipped)

    def back_off(self, factor: float) -> float:
        """Scale the learning rate (the schedule's base) by ``factor`` from now on and forget
        AdamW's moments, which point the way the damage came from; the new rate."""
        optimizer = self.scheduler.optimizer  # the bare torch optimizer the schedule drives
        self.scheduler.base_lrs = [base * factor for base in self.scheduler.base_lrs]
        for group in optimizer.param_groups:
            group["lr"] *= factor
        optimizer.state.clear()
        return self.lr

    @property
    def lr(self) -> float:
        # The rate the next step takes (the schedule writes it into the group after each step).
        return float(self.scheduler.optimizer.param_groups[0]["lr"])

    def _mean(self, sums: dict[str, float]) -> dict[str, float]:
        """Terms averaged over micro-steps, then over processes (one all-reduce for all)."""
        import torch

        names = sorted(sums)
        values = torch.tensor([sums[n] / self.accumulation for n in names], dtype=torch.float64)
        if self.accelerator.num_processes > 1 and names:
            values = self.accelerator.reduce(values.to(self.accelerator.device), reduction="mean").cpu()
        return {n: float(v) for n, v in zip(names, values.tolist())}
