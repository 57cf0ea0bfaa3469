"""General ability: does the model still speak, outside anything it was asked to forget?

A bundled set of everyday instructions (``data/general_prompts.txt``: no fact of any forget
set) is answered once by the original model, greedily. Every evaluation then scores those
same answers under the current model, teacher-forced: the mean negative log-likelihood per
answer token (nats, the closing EOS included, as every answer loss here), beside the
original's own on the same answers. A model that still speaks as it did stays near the
original's number; one that has collapsed into noise finds its former answers unlikely.

It is this way round on purpose: scoring the *unlearned* model's own answers under the
original does not work, because repetitive gibberish is likely under any language model
("Parva vilĉi, ja vilĉi vilĉi..." scored 1.25 nats/token against the original's 0.63 on the
same prompt). No generation happens after the first evaluation: one scoring pass over a few
dozen short answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

GENERAL = "general"  # its key beside the splits in an evaluation's aggregates
MAX_NEW_TOKENS = 48  # long enough for a few sentences, short enough to cost little
PROMPTS_FILE = "general_prompts.txt"  # what the guard measures on
# A second set, for training: with no retain set, the original's own answers to these keep
# the model speaking (never the guard's prompts: it would then measure on training data).
RETAIN_FILE = "general_retain.txt"


def load_prompts(name: str = PROMPTS_FILE) -> list[str]:
    """A bundled set of general instructions, one a line."""
    text = resources.files("tui_unlearn.data").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


@dataclass
class GeneralReference:
    """The original model's greedy answers to the general prompts and its NLL of each."""

    prompts: list[str]
    answers: list[str]
    original_nll: list[float]

    def summarize(self, nll: list[float]) -> tuple[dict[str, float], str | None]:
        """(numbers, the worst prompt) of a model whose per-prompt NLLs are ``nll``:
        ``nll`` its mean, ``nll_original`` the original's mean over the same prompts,
        ``nll_increase`` the difference (0 for the original itself), ``nll_worst`` the
        largest per-prompt NLL and ``nll_worst_increase`` the largest per-prompt rise.
        Prompts either model gives no finite number for are left out (a collapsed model
        gives NaN: then nothing is left, and the numbers are NaN)."""
        rows = [(p, n, o) for p, n, o in zip(self.prompts, nll, self.original_nll) if _finite(n) and _finite(o)]
        if not rows:
            nan = float("nan")
            return {"nll": nan, "nll_original": nan, "nll_increase": nan, "nll_worst": nan}, None
        mean = sum(n for _, n, _ in rows) / len(rows)
        original = sum(o for _, _, o in rows) / len(rows)
        worst_prompt, _, _ = max(rows, key=lambda r: r[1] - r[2])
        numbers = {
            "nll": mean,
            "nll_original": original,
            "nll_increase": mean - original,
            "nll_worst": max(n for _, n, _ in rows),
            "nll_worst_increase": max(n - o for _, n, o in rows),
        }
        return numbers, worst_prompt

    def to_json(self) -> dict[str, Any]:
        return {"prompts": self.prompts, "answers": self.answers, "original_nll": self.original_nll}

    @classmethod
    def from_json(cls, data: Any) -> GeneralReference | None:
        """The reference stored by ``to_json``; None when ``data`` is not one."""
        if not isinstance(data, dict):
            return None
        prompts, answers, nll = data.get("prompts"), data.get("answers"), data.get("original_nll")
        if not (isinstance(prompts, list) and isinstance(answers, list) and isinstance(nll, list)):
            return None
        if not (len(prompts) == len(answers) == len(nll)) or not all(isinstance(x, str) for x in prompts + answers):
            return None
        if not all(isinstance(x, (int, float)) or x is None for x in nll):
            return None
        return cls(prompts, answers, [float("nan") if x is None else float(x) for x in nll])


def score_nll(
    model, tokenizer, prompts: list[str], answers: list[str], *, batch_size: int, max_length: int
) -> list[float]:
    """Per prompt, the mean NLL per token (nats) of ``answers[i]`` after ``prompts[i]``."""
    from tui_unlearn.metrics.scoring import score_answers

    scores = score_answers(
        model, tokenizer, list(zip(prompts, answers)), batch_size=batch_size, max_length=max_length, statistics=False
    )
    return [float(s.loss) for s in scores]


def build_reference(
    model, tokenizer, *, batch_size: int, max_length: int, prompts_file: str = PROMPTS_FILE
) -> GeneralReference:
    """Answer the bundled prompts greedily with ``model`` (the original) and score them."""
    from tui_unlearn.metrics.generation import generate_answers

    prompts = load_prompts(prompts_file)
    answers = generate_answers(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=MAX_NEW_TOKENS)
    nll = score_nll(model, tokenizer, prompts, answers, batch_size=batch_size, max_length=max_length)
    return GeneralReference(prompts, answers, nll)
