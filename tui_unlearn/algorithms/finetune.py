"""Retain-only fine-tuning: keep training on what must survive and let the rest fade."""

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, LossInputs, nll


def _loss(x: LossInputs) -> dict:
    retain = nll(x.model, x.retain)
    return {"loss": retain, "retain_nll": retain}


register(
    Algorithm(
        name="finetune",
        description="Fine-tune on the retain set only (the forget set is never seen).",
        loss=_loss,
        needs_forget=False,
        needs_retain=True,
        run_defaults={"lr": 1e-3},
    )
)
