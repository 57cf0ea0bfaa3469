"""Gradient ascent: raise the loss on the forget set. Simple, and known to collapse."""

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, LossInputs, nll


def _loss(x: LossInputs) -> dict:
    forget = nll(x.model, x.forget)
    return {"loss": -forget, "forget_nll": forget}


register(
    Algorithm(
        name="grad_ascent",
        description="Gradient ascent on the forget set (no retain term; tends to collapse).",
        loss=_loss,
    )
)
