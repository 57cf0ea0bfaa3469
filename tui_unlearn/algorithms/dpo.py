"""DPO on the forget set: the true answer dispreferred, a counterfactual answer preferred.

Direct preference optimisation (Rafailov et al. 2023, "Direct Preference Optimization:
Your Language Model is Secretly a Reward Model") used for unlearning as in TOFU (Maini et
al. 2024) and the NPO paper (Zhang et al. 2024): for each forget question the original
answer is the losing response and an alternative the winning one, both measured against
the frozen original's log-probabilities (cached once before training), plus retain NLL.
Here the alternative is a counterfactual (one of the record's perturbed answers, else
another forget record's answer); ``idk_dpo`` prefers a refusal instead.
"""

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import (
    Algorithm,
    HyperParam,
    LossInputs,
    Search,
    forward,
    plus_retain_nll,
    retain_weight,
    sequence_logprob_sum,
)


def dpo_term(win_logp, win_ref, lose_logp, lose_ref, beta: float):
    """-(2/beta) log sigmoid(beta * ((log pi - log pi_ref)(win) - (log pi - log pi_ref)(lose))),
    averaged over the batch; arguments are per-example summed answer log-probabilities [B]."""
    import torch.nn.functional as F

    margin = (win_logp - win_ref) - (lose_logp - lose_ref)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def preference_loss(x: LossInputs) -> dict:
    """DPO with ``x.alternate`` preferred over ``x.forget`` (row i of each pairs up), plus retain NLL."""
    import torch

    alternate = x.alternate
    # Both are bugs, never user input: the method declares alternate_forget.
    if alternate is None:
        raise RuntimeError("a preference method ran without its alternate batch")
    if not torch.equal(x.forget["index"].cpu(), alternate["index"].cpu()):
        raise RuntimeError("forget and alternate batches are out of step")
    lose = sequence_logprob_sum(forward(x.model, x.forget), x.forget["labels"])
    win = sequence_logprob_sum(forward(x.model, alternate), alternate["labels"])
    lose_ref = x.reference_logprob_sums("forget", x.forget)
    win_ref = x.reference_logprob_sums("alternate", alternate)
    forget = dpo_term(win, win_ref, lose, lose_ref, x.hp["beta"])
    terms = {
        "dpo": forget,
        "forget_logratio": (lose - lose_ref).mean().detach(),
        "alternate_logratio": (win - win_ref).mean().detach(),
    }
    return plus_retain_nll(x, x.hp["forget_weight"] * forget, terms)


def counterfactuals(records: list[dict], hp: dict, rng) -> list[dict]:
    from tui_unlearn.algorithms.idk import relabel

    return relabel(records, {"target": "counterfactual"}, rng)


PREFERENCE_HYPERPARAMS = (
    HyperParam("beta", "float", 0.1, "inverse temperature of the preference loss", 1e-4, 100.0),
    HyperParam("forget_weight", "float", 1.0, "weight of the preference term on the forget set", 0.0, 100.0),
    retain_weight(),
)
PREFERENCE_SEARCH = {
    "beta": Search(0.02, 1.0, log=True),
    "retain_weight": Search(0.5, 5.0, log=True),
    "lr": Search(1e-4, 2e-3, log=True),
}

register(
    Algorithm(
        name="dpo",
        description="DPO: counterfactual answers preferred over the forget answers against the original, plus retain NLL.",
        loss=preference_loss,
        reference_logprobs=("forget", "alternate"),
        alternate_forget=counterfactuals,
        hyperparams=PREFERENCE_HYPERPARAMS,
        search_space=PREFERENCE_SEARCH,
        run_defaults={"lr": 1e-3},
    )
)
