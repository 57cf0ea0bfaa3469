"""Weighted gradient ascent (WGA): ascent on each forget token weighted by its probability.

Wang et al. 2025, "Rethinking LLM Unlearning Objectives: A Gradient Perspective and Go
Beyond" (ICLR 2025). Plain ascent keeps pushing tokens the model has already forgotten,
which is what makes it collapse; WGA weights each answer token's ascent by the model's
current probability of it raised to ``beta`` (detached), so forgotten tokens stop
contributing. Forget term: -mean over answer tokens of p(y_t)^beta * NLL(y_t), plus retain
NLL, as open-unlearning's ``WGA`` trainer computes it.
"""

from collections.abc import Callable
from typing import Any

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import (
    Algorithm,
    HyperParam,
    LossInputs,
    Search,
    forward,
    plus_retain_nll,
    retain_weight,
    token_nll,
)


def weighted_ascent(token_losses, mask, weights):
    """-mean over counted tokens of ``weights * token_losses`` (all [B, T-1]; weights detached)."""
    counted = mask.float()
    return -(weights.detach() * token_losses * counted).sum() / counted.sum().clamp(min=1.0)


def probability_weighted_ascent(x: LossInputs, name: str, weigh: Callable[[Any], Any]) -> dict:
    """Ascent on the forget answer's tokens, each weighted by ``weigh(p)`` of its current
    probability p [B, T-1] (detached), times ``forget_weight``, plus retain NLL: the shape
    WGA and SatImp share. Terms: ``name`` and the mean answer-token probability."""
    losses, mask = token_nll(forward(x.model, x.forget), x.forget["labels"])
    prob = (-losses).exp()
    forget = weighted_ascent(losses, mask, weigh(prob))
    terms = {name: forget, "forget_token_prob": (prob * mask).sum().detach() / mask.sum().clamp(min=1)}
    return plus_retain_nll(x, x.hp["forget_weight"] * forget, terms)


def _loss(x: LossInputs) -> dict:
    return probability_weighted_ascent(x, "wga", lambda p: p ** x.hp["beta"])


register(
    Algorithm(
        name="wga",
        description="Weighted gradient ascent: each forget token's ascent weighted by its probability^beta, plus retain NLL.",
        loss=_loss,
        hyperparams=(
            HyperParam("beta", "float", 1.0, "power of the token probability weighting the ascent", 0.0, 100.0),
            HyperParam("forget_weight", "float", 1.0, "weight of the weighted ascent term", 0.0, 100.0),
            retain_weight(),
        ),
        search_space={
            "beta": Search(0.2, 5.0, log=True),
            "retain_weight": Search(0.5, 5.0, log=True),
            "lr": Search(1e-4, 2e-3, log=True),
        },
    )
)
