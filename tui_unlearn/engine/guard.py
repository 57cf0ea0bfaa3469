"""The guard: a run never ends on a model that stopped speaking or lost what it knew.

At every evaluation during training, and once after the last step, the model is checked on
what no method should take: its general ability (``metrics.general``: the original's answers
to everyday prompts, scored now; ``--guard-general``, nats/token over the original's) and its
world knowledge (``metrics.knowledge``: the share of the probe's facts the original states
that it still states; ``--guard-knowledge``, guarded only when the original states at least
``collateral.MIN_KNOWN`` of them). While both hold, the trainable weights are remembered; the
first time one does not (or a number is not finite: a collapsed model), training stops and
those last good weights are put back, so the "after" evaluation, the saved model and the
relearning check see them. The summary says when and why (``guard``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tui_unlearn.engine import collateral
from tui_unlearn.engine.calibration import restore, snapshot
from tui_unlearn.engine.model_access import any_process
from tui_unlearn.setting_names import in_the_tui

SUMMARY_KEY = "guard"


@dataclass
class Guard:
    limit: float  # general ability: nats/token over the original's NLL (0: not watched)
    knowledge_floor: float = 0.0  # share of the original's probe facts still stated (0: not watched)
    good_step: int = 0
    good_weights: dict[str, Any] | None = None
    tripped_at: int | None = None
    reasons: list[str] = field(default_factory=list)
    # Each time the guard tripped and the run went on from the last good weights at a lower
    # rate: {"step", "kept_step", "reasons", "lr"}.
    backed_off: list[dict[str, Any]] = field(default_factory=list)
    increase: float | None = None  # general ability at the trip
    knowledge_kept: float | None = None  # at the trip
    worst_prompt: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "general_limit": self.limit or None,
            "knowledge_floor": self.knowledge_floor or None,
            "tripped_at": self.tripped_at,
            "reasons": self.reasons,
            "increase_at_trip": self.increase,
            "knowledge_kept_at_trip": self.knowledge_kept,
            "kept_step": self.good_step if self.tripped_at is not None else None,
            "worst_prompt": self.worst_prompt,
            "backed_off": self.backed_off,
        }


def start(ctx: Any, start_weights: dict[str, Any] | None = None) -> Guard | None:
    """The run's guard, with the weights training starts from as the first good ones; None
    when nothing is watched (turned off, or nothing to measure). ``start_weights``: a snapshot
    of those weights already taken (calibration's), shared rather than copied again: neither
    side changes a snapshot, each only replaces its own."""
    config = ctx.config
    limit = config.guard_general if ctx.general is not None else 0.0
    floor = config.guard_knowledge if ctx.knowledge is not None else 0.0
    known = sum(ctx.knowledge[1].stated) if ctx.knowledge is not None else None
    if known is not None and known < collateral.MIN_KNOWN and (limit or floor):
        # A model that knows nothing of the world (the bundled tiny model, trained only on its
        # fictitious authors) has no general ability or knowledge to protect: its numbers on
        # everyday prompts are noise that any training moves, so they are reported, not guarded.
        ctx.log(
            f"guard: off: the original states {known} of the {len(ctx.knowledge[0])} world-knowledge probe facts "
            f"(under {collateral.MIN_KNOWN}); general ability and knowledge are reported, not guarded"
        )
        return None
    if not known:
        floor = 0.0  # nothing the original states: no share of it to keep
    if not limit and not floor:
        return None
    weights = start_weights if start_weights is not None else snapshot(ctx)
    return Guard(limit, floor, good_step=ctx.done, good_weights=weights)


# A tripped guard puts the last good weights back and goes on at this fraction of the rate, up
# to MAX_BACK_OFFS times (a pretrained model's rate that wrecks it in ten steps may forget
# cleanly at a quarter or a sixteenth of it); then it stops.
BACK_OFF = 0.25
MAX_BACK_OFFS = 3


def _gentler(ctx: Any) -> str:
    """What may forget with less damage: a retain set only where the method trains on one and
    the user gave none."""
    rest = "a lower --lr or fewer --steps forget with less damage"
    if getattr(ctx, "algorithm", None) is not None and not collateral.has_retain_term(ctx):
        return f"A method with a retain term (grad_diff, npo, ...), {rest}{in_the_tui('algorithm', 'lr', 'steps')}"
    data = getattr(ctx, "data", None)
    if data is not None and data.retain and data.report.get("retain_source") != "general":
        return f"{rest[0].upper()}{rest[1:]}{in_the_tui('lr', 'steps')}"
    return f"A retain set (--retain), {rest}{in_the_tui('retain', 'lr', 'steps')}"


def check(ctx: Any, guard: Guard, step: int, loop: Any = None) -> bool:
    """Measure what the guard watches at ``step``; True when it trips and training must
    stop. Either way a trip puts the last good weights back in the model; with ``loop`` (the
    training loop) and steps left, the run goes on from them at ``BACK_OFF`` x the rate
    instead, up to ``MAX_BACK_OFFS`` times (False then)."""
    reasons: list[str] = []
    increase = kept = worst = None
    if guard.limit:
        numbers, worst = collateral.general_numbers(ctx, step)
        increase = numbers.get("nll_increase")
        if increase is None or not math.isfinite(increase) or increase > guard.limit:
            shown = f"{increase:+.2f}" if increase is not None and math.isfinite(increase) else "not finite"
            reasons.append(
                f"general ability {shown} nats/token over the original's (limit +{guard.limit:g}; "
                f"worst prompt {worst!r})"
            )
    if guard.knowledge_floor:
        kept = collateral.knowledge_numbers(ctx, step).get("knowledge_kept")
        if kept is None or kept < guard.knowledge_floor:
            shown = "none" if kept is None else f"{kept:.2f}"
            reasons.append(f"knowledge kept {shown} of the original's probe facts (floor {guard.knowledge_floor:g})")
    if not any_process(ctx, bool(reasons)):
        guard.good_step, guard.good_weights = step, snapshot(ctx)
        return False
    if loop is not None and step < ctx.config.steps and len(guard.backed_off) < MAX_BACK_OFFS:
        if guard.good_weights is not None:
            restore(ctx, guard.good_weights)
        before = loop.lr
        after = loop.back_off(BACK_OFF)
        guard.backed_off.append({"step": step, "kept_step": guard.good_step, "reasons": reasons, "lr": after})
        ctx.log(
            f"guard: at step {step} {'; '.join(reasons) or 'another process found the model past its guard'}: "
            f"back to the weights of step {guard.good_step}, going on at {BACK_OFF:g} x the rate "
            f"({before:.3g} -> {after:.3g}; {MAX_BACK_OFFS - len(guard.backed_off)} more tries)"
        )
        return False
    guard.tripped_at, guard.reasons = step, reasons
    guard.increase, guard.knowledge_kept, guard.worst_prompt = increase, kept, worst
    ctx.log(
        f"guard: at step {step} {'; '.join(reasons) or 'another process found the model past its guard'}: "
        f"stopping and keeping the weights of step {guard.good_step}. {_gentler(ctx)}; "
        "--guard-general 0 / --guard-knowledge 0 run on"
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
