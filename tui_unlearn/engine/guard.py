"""The general-ability guard: a run never ends on a model that stopped speaking.

At every evaluation during training, and once after the last step, the model's general
ability (``metrics.general``: the original's answers to everyday prompts, scored now) is
compared with the original's. While it stays within ``--guard-general`` nats/token of it,
the trainable weights are remembered; the first time it does not (or the number is not
finite: a collapsed model), training stops and those last good weights are put back, so
the "after" evaluation, the saved model and the relearning check see a model that still
speaks. The summary says when and why (``guard``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SUMMARY_KEY = "guard"


@dataclass
class Guard:
    limit: float  # nats/token over the original's general-ability NLL
    good_step: int = 0
    good_weights: dict[str, Any] | None = None
    tripped_at: int | None = None
    increase: float | None = None  # at the trip
    worst_prompt: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "metric": "general_nll_increase",
            "limit": self.limit,
            "tripped_at": self.tripped_at,
            "increase_at_trip": self.increase,
            "kept_step": self.good_step if self.tripped_at is not None else None,
            "worst_prompt": self.worst_prompt,
        }


def start(ctx: Any) -> Guard | None:
    """The run's guard, with the weights training starts from as the first good ones; None
    when turned off or when general ability cannot be measured."""
    from tui_unlearn.engine.calibration import snapshot

    limit = ctx.config.guard_general
    if not limit or ctx.general is None:
        return None
    return Guard(limit, good_step=ctx.done, good_weights=snapshot(ctx))


def check(ctx: Any, guard: Guard, step: int) -> bool:
    """Measure general ability at ``step``; True when the guard trips (training must stop:
    the last good weights are back in the model by then)."""
    from tui_unlearn.engine.calibration import restore, snapshot
    from tui_unlearn.engine.phases import any_process, general_numbers

    numbers, worst = general_numbers(ctx, step)
    increase = numbers.get("nll_increase")
    within = increase is not None and math.isfinite(increase) and increase <= guard.limit
    if not any_process(ctx, not within):
        guard.good_step, guard.good_weights = step, snapshot(ctx)
        return False
    guard.tripped_at, guard.increase, guard.worst_prompt = step, increase, worst
    shown = f"{increase:+.2f}" if increase is not None and math.isfinite(increase) else "not finite"
    ctx.log(
        f"guard: general ability at step {step} is {shown} nats/token over the original's (limit +{guard.limit:g}; "
        f"worst prompt {worst!r}): stopping and keeping the weights of step {guard.good_step}. "
        "A retain set (--retain), a lower --lr or fewer --steps forget with less damage; --guard-general 0 runs on"
    )
    if guard.good_weights is not None:
        restore(ctx, guard.good_weights)
    ctx.done = guard.good_step
    guard.good_weights = None
    return True


def finish(ctx: Any, guard: Guard | None) -> None:
    if guard is not None:
        guard.good_weights = None
        ctx.extra[SUMMARY_KEY] = guard.summary()
