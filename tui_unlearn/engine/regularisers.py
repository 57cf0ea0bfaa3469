"""Regularisers usable with any method, declared like methods rather than special-cased in the loop.

Each is switched on by its run setting (a weight or a rate above 0). It may ask for the
reference model (``needs_reference``), set itself up once on the trained model
(``start``), add a weighted loss term each micro-step (``term``), and undo what it did
(``stop``). The engine adds ``weight * term`` to the method's loss and reports the term.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tui_unlearn.algorithms.base import LossInputs, forward, kl_to_reference


@dataclass(frozen=True)
class Regulariser:
    setting: str  # the RunConfig field holding its weight (or rate); 0 is off
    needs_reference: bool = False
    start: Callable[[Any, float], Any] | None = None  # (trained model, weight) -> state
    term: Callable[[Any, LossInputs], Any] | None = None  # (state, inputs) -> scalar tensor or None
    stop: Callable[[Any], None] | None = None
    weighted: bool = True  # False: the setting is a rate, not a loss weight (dropout)


# ---- L2 anchor: ||theta - theta_original||^2 over the trained parameters ----


def _anchor_start(model, weight):
    params = [p for p in model.parameters() if p.requires_grad]
    return params, [p.detach().clone() for p in params]


def _anchor_term(state, x: LossInputs):
    params, anchor = state
    return sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))


# ---- KL(original || model) on retain batches ----


def _kl_term(state, x: LossInputs):
    if x.retain is None:
        return None
    return kl_to_reference(forward(x.model, x.retain), x.reference_logits(x.retain), x.retain["labels"])


# ---- dropout on every decoder block's output while training ----


class _BlockDropout:
    """Forward hooks that drop out block outputs while ``active`` (training micro-steps only:
    evaluations and reference passes between steps see the model unperturbed)."""

    def __init__(self, model, p: float):
        from tui_unlearn.models.architecture import decoder_layers

        self.p = p
        self.active = False
        self.handles = [layer.register_forward_hook(self._hook) for layer in decoder_layers(model)]

    def _hook(self, module, inputs, output):
        import torch.nn.functional as F

        if not self.active:
            return None
        if isinstance(output, tuple):
            return (F.dropout(output[0], self.p, training=True),) + output[1:]
        return F.dropout(output, self.p, training=True)

    def remove(self):
        for handle in self.handles:
            handle.remove()


REGULARISERS: dict[str, Regulariser] = {
    "l2_anchor": Regulariser("l2_anchor", start=_anchor_start, term=_anchor_term),
    "kl_retain": Regulariser("kl_retain", needs_reference=True, term=_kl_term),
    "dropout": Regulariser("dropout", start=_BlockDropout, stop=lambda state: state.remove(), weighted=False),
}


class ActiveRegularisers:
    """The regularisers a run switched on, with their state, for the training loop."""

    def __init__(self, config: Any, model: Any) -> None:
        self.items: list[tuple[Regulariser, float, Any]] = []
        for name, reg in REGULARISERS.items():
            weight = float(getattr(config, name))
            if weight > 0:
                state = reg.start(model, weight) if reg.start else None
                self.items.append((reg, weight, state))

    @staticmethod
    def need_reference(config: Any) -> bool:
        return any(reg.needs_reference and float(getattr(config, name)) > 0 for name, reg in REGULARISERS.items())

    def begin_step(self) -> None:
        for _, _, state in self.items:
            if isinstance(state, _BlockDropout):
                state.active = True

    def end_step(self) -> None:
        for _, _, state in self.items:
            if isinstance(state, _BlockDropout):
                state.active = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No dropout inside (a reference pass through the same layers, adapters off)."""
        was = [(state, state.active) for _, _, state in self.items if isinstance(state, _BlockDropout)]
        for state, _ in was:
            state.active = False
        try:
            yield
        finally:
            for state, active in was:
                state.active = active

    def add_terms(self, x: LossInputs, terms: dict) -> dict:
        """``terms`` with each regulariser's term reported and its weighted value added to ``loss``."""
        loss = terms["loss"]
        for reg, weight, state in self.items:
            if reg.term is None:
                continue
            value = reg.term(state, x)
            if value is None or not reg.weighted:
                continue
            terms[reg.setting] = value
            loss = loss + weight * value
        terms["loss"] = loss
        return terms

    def close(self) -> None:
        for reg, _, state in self.items:
            if reg.stop is not None:
                reg.stop(state)
