"""Negative preference optimisation (Zhang et al. 2024): a bounded form of gradient ascent.

The forget answers are treated as dispreferred responses against the frozen original
model; the loss saturates once the model assigns them less probability than the original
did, so it does not run off the way plain ascent does.
"""

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import (
    Algorithm,
    HyperParam,
    LossInputs,
    answer_logprob_sums,
    plus_retain_nll,
    retain_weight,
)


def npo_term(logp_model, logp_reference, beta: float):
    """-(2/beta) * log sigmoid(-beta * (log pi(y|x) - log pi_ref(y|x))), averaged over the batch."""
    import torch.nn.functional as F

    return -(2.0 / beta) * F.logsigmoid(-beta * (logp_model - logp_reference)).mean()


def _loss(x: LossInputs) -> dict:
    logp = answer_logprob_sums(x.model, x.forget)
    logp_ref = x.reference_logprob_sums("forget", x.forget)
    forget = npo_term(logp, logp_ref, x.hp["beta"])
    terms = {"npo": forget, "forget_logratio": (logp - logp_ref).mean().detach()}
    return plus_retain_nll(x, forget, terms)


register(
    Algorithm(
        name="npo",
        description="Negative preference optimisation against the original model, plus retain NLL.",
        loss=_loss,
        reference_logprobs=("forget",),
        hyperparams=(
            HyperParam("beta", "float", 0.1, "inverse temperature of the preference loss", 1e-4, 100.0),
            retain_weight(),
        ),
    )
)
