"""Data augmentation: relabel forget questions with refusals or wrong answers and train on them."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from tui_unlearn.algorithms import register
from tui_unlearn.algorithms.base import Algorithm, HyperParam, LossInputs, nll, plus_retain_nll, retain_weight


@lru_cache(maxsize=1)
def refusals() -> tuple[str, ...]:
    """The bundled refusal phrasings (one a line in data/refusals.txt)."""
    text = resources.files("tui_unlearn.data").joinpath("refusals.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def relabel(records: list[dict], hp: dict, rng) -> list[dict]:
    """Copies of ``records`` whose answers are refusals or counterfactual answers.

    Counterfactuals use a record's own perturbed answers when it has them, else the answer
    of another forget record, so the model learns something false rather than nothing.
    """
    out = []
    answers = [r["answer"] for r in records]
    for i, record in enumerate(records):
        new = dict(record)
        if hp["target"] == "refusal":
            new["answer"] = rng.choice(refusals())
        elif record.get("perturbed_answers"):
            new["answer"] = rng.choice(list(record["perturbed_answers"]))
        else:
            others = [a for j, a in enumerate(answers) if j != i and a != record["answer"]]
            new["answer"] = rng.choice(others) if others else rng.choice(refusals())
        out.append(new)
    return out


def _loss(x: LossInputs) -> dict:
    forget = nll(x.model, x.forget)  # NLL of the relabelled answers: descent, not ascent
    terms = {"relabel_nll": forget}
    return plus_retain_nll(x, forget, terms)


register(
    Algorithm(
        name="idk",
        description="Relabel forget questions with refusals (or counterfactual answers) and train on them with retain data.",
        loss=_loss,
        relabel_forget=relabel,
        hyperparams=(
            HyperParam("target", "str", "refusal", "what forget answers become", choices=("refusal", "counterfactual")),
            retain_weight(),
        ),
        run_defaults={"lr": 1e-3},
    )
)
