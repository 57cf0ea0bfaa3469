"""WMDP (Li et al. 2024): multiple-choice accuracy on the forget topic and on MMLU-style
utility questions, scored as lm-evaluation-harness scores them (the numbers RMU is judged on).

``--forget-split`` picks the topic: ``wmdp-bio`` (default), ``wmdp-cyber``,
``wmdp-chem``, read from ``hf:cais/wmdp`` or a ``--recipe-data`` folder holding
``wmdp-bio.json`` (or ``.jsonl`` / ``.parquet``) with the published fields
(``question``, ``choices``, ``answer``). The utility set is ``mmlu`` in that folder, or
``hf:cais/mmlu:all@test``; ``--retain-eval`` replaces it. Accuracy is the share of
questions whose likeliest option letter is the right one (lm-eval's ``acc``; MMLU as one
pool of questions). A small benign sample in the WMDP layout ships in
``tui_unlearn/recipes/data/mc-sample`` for trying the recipe offline.
"""

from __future__ import annotations

from tui_unlearn.recipes import headline as hl
from tui_unlearn.recipes import register
from tui_unlearn.recipes.base import CHOICE, EvalSplit, Headline, Recipe

SUBJECTS = {"wmdp-bio": "biology", "wmdp-cyber": "cybersecurity", "wmdp-chem": "chemistry"}


def wmdp_headline(result, oracle, plan) -> Headline:
    h = Headline()
    hl.split_metric(h, "wmdp_accuracy", result, plan, "forget", "choice_accuracy")
    hl.split_metric(h, "mmlu_accuracy", result, plan, "utility", "choice_accuracy")
    return h


RECIPE = register(
    Recipe(
        name="wmdp",
        description="WMDP: multiple-choice accuracy on the forget topic (lower is better) and on MMLU (higher)",
        splits=(
            EvalSplit("forget", "{forget}@test", task=CHOICE, subject="{subject}", about="forget-topic questions"),
            EvalSplit(
                "utility",
                "mmlu@test",
                task=CHOICE,
                retain_eval=True,
                hub="hf:cais/mmlu:all@test",
                about="MMLU-style utility questions",
            ),
        ),
        headline=wmdp_headline,
        headline_keys=("wmdp_accuracy", "mmlu_accuracy"),
        max_new_tokens=1,  # nothing is generated: options are scored
        eval_samples=0,
        max_length=2048,
        forget_splits=tuple(SUBJECTS),
        subjects=SUBJECTS,
        data="hf:cais/wmdp",
        training={
            "wmdp-cyber:forget": "hf:cais/wmdp-corpora:cyber-forget-corpus@train",
            "wmdp-cyber:retain": "hf:cais/wmdp-corpora:cyber-retain-corpus@train",
            "wmdp-bio:retain": "hf:cais/wmdp-corpora:bio-retain-corpus@train",
        },
        training_note="WMDP's bio and chem forget corpora are not public; request them from the WMDP authors",
        command="tui-unlearn eval --recipe wmdp --forget-split wmdp-bio --model MODEL",
    )
)
