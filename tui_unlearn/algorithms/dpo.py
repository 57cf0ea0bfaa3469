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
    answer_logprob_sums,
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


def two_pass_logprob_sums(model, lose: dict, win: dict):
    """Summed answer log-probabilities [B] of ``lose`` and of ``win``, one forward pass each."""
    return (
        sequence_logprob_sum(forward(model, lose), lose["labels"]),
        sequence_logprob_sum(forward(model, win), win["labels"]),
    )


def stacked(first: dict, second: dict) -> dict:
    """One batch of ``first``'s rows then ``second``'s, right-padded to the longer (pads are
    masked and never scored, so each row computes what it does alone)."""
    import torch
    import torch.nn.functional as F

    length = max(first["input_ids"].shape[1], second["input_ids"].shape[1])

    def both(key: str, pad: int):
        return torch.cat([F.pad(b[key], (0, length - b[key].shape[1]), value=pad) for b in (first, second)])

    return {
        "input_ids": both("input_ids", 0),
        "attention_mask": both("attention_mask", 0),
        "labels": both("labels", -100),
    }


def one_pass_logprob_sums(model, lose: dict, win: dict):
    """What :func:`two_pass_logprob_sums` gives, from one forward pass over both batches
    stacked (as TRL's DPO trainer concatenates chosen and rejected)."""
    batch = stacked(lose, win)
    sums = sequence_logprob_sum(forward(model, batch), batch["labels"])
    rows = lose["input_ids"].shape[0]
    return sums[:rows], sums[rows:]


def two_pass_answers_logprob_sums(model, lose: dict, win: dict):
    """As :func:`two_pass_logprob_sums`, with the output head on answer positions only."""
    return answer_logprob_sums(model, lose), answer_logprob_sums(model, win)


def one_pass_answers_logprob_sums(model, lose: dict, win: dict):
    """As :func:`one_pass_logprob_sums`, with the output head on answer positions only."""
    sums = answer_logprob_sums(model, stacked(lose, win))
    rows = lose["input_ids"].shape[0]
    return sums[:rows], sums[rows:]


# How preference_loss computes both answers' log-probabilities. bench/bench_dpo_forward.py measures
# the four ways side by side (CPU, 2 cores; tiny-authors and a 30 M random Llama, batch 8 pairs):
# one stacked forward as TRL does costs 7% more CPU time and 8-13% more peak memory than two
# passes (on a GPU, where it halves the kernel launches, it may pay; not measured here); the head
# on answer positions only takes 3-10% less CPU time and 5-7% less peak memory, and stacked on
# top of it is within 3% in CPU time either way while holding 4-7% more. Hence two passes,
# answer positions only.
PAIRED_LOGPROB_SUMS = two_pass_answers_logprob_sums


def preference_loss(x: LossInputs) -> dict:
    """DPO with ``x.alternate`` preferred over ``x.forget`` (row i of each pairs up), plus retain NLL."""
    import torch

    alternate = x.alternate
    # Both are bugs, never user input: the method declares alternate_forget.
    if alternate is None:
        raise RuntimeError("a preference method ran without its alternate batch")
    if not torch.equal(x.forget["index"].cpu(), alternate["index"].cpu()):
        raise RuntimeError("forget and alternate batches are out of step")
    lose, win = PAIRED_LOGPROB_SUMS(x.model, x.forget, alternate)
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
