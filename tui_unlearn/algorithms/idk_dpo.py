"""IdK-DPO: DPO with a refusal ("I don't know") preferred over each forget answer.

TOFU's preference baseline (Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for
LLMs"), the DPO objective of Rafailov et al. 2023 with one of the bundled refusal
phrasings as the winning answer, against the frozen original's cached log-probabilities,
plus retain NLL. Open-unlearning's ``DPO`` trainer with the IdK forget data is the same
loss. The loss lives in ``dpo.preference_loss``; only the preferred answer differs.

The default ``beta`` is 0.02, not DPO's 0.1: a refusal is short and easy to make likely, so at
0.1 its log-ratio alone saturated the loss while the forget answers barely moved (bundled
benchmark, 60 steps: forget accuracy 0.79); at 0.02 they are forgotten (0.00, retain 0.84).
"""

from dataclasses import replace

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, Search
from tui_unlearn.algorithms.dpo import PREFERENCE_HYPERPARAMS, PREFERENCE_SEARCH, preference_loss


def refusal_answers(records: list[dict], hp: dict, rng) -> list[dict]:
    from tui_unlearn.algorithms.idk import relabel

    return relabel(records, {"target": "refusal"}, rng)


register(
    Algorithm(
        name="idk_dpo",
        description="IdK-DPO: refusals preferred over the forget answers against the original, plus retain NLL.",
        loss=preference_loss,
        reference_logprobs=("forget", "alternate"),
        alternate_forget=refusal_answers,
        hyperparams=tuple(replace(p, default=0.02) if p.name == "beta" else p for p in PREFERENCE_HYPERPARAMS),
        search_space={**PREFERENCE_SEARCH, "beta": Search(0.005, 0.2, log=True)},
        run_defaults={"lr": 1e-3},
    )
)
