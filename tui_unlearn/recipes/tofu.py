"""TOFU (Maini et al. 2024) on its own files, as its authors' and open-unlearning's code evaluate it.

Splits (file names as ``locuslab/TOFU`` publishes them, from ``hf:locuslab/TOFU`` or a
``--recipe-data`` folder): the whole forget split ``forgetNN_perturbed``, the retain
evaluation set ``retain_perturbed`` (``--retain-eval`` replaces it), ``real_authors_perturbed``
and ``world_facts_perturbed`` (whose truth ratio and probability compare the answer
with the perturbed ones: they have no paraphrase), and ``holdoutNN`` for membership
inference (scored, not generated). Answers are generated greedily up to 200 new
tokens. Headline: forget quality against a retain-only oracle, the nine-part model
utility, privacy leakage. Training defaults: ``forgetNN`` and ``retainMM`` (their
complement), so ``--batch --recipe tofu`` unlearns and evaluates TOFU as published.
Questions are asked as open-unlearning asks them (``data.prompts``: its model config's
system prompt, date string or hand-written format for the model's family), and
extraction strength is open-unlearning's (1/n, not 0, when no answer suffix is predicted).
``--eval-samples 300 --eval-sampling first`` evaluates what TOFU's legacy logs hold.
"""

from __future__ import annotations

from tui_unlearn.metrics.registry import SUMMARY_HEADLINES
from tui_unlearn.recipes import register
from tui_unlearn.recipes.base import EvalSplit, Recipe
from tui_unlearn.recipes.headline import tofu_headline

RECIPE = register(
    Recipe(
        name="tofu",
        description="TOFU: forget quality on the whole forget split against a retain-only oracle, nine-part model "
        "utility, privacy leakage",
        splits=(
            EvalSplit("forget", "{forget}_perturbed@train", about="the forget split, whole"),
            EvalSplit("retain", "retain_perturbed@train", retain_eval=True, about="retain evaluation set"),
            EvalSplit("real_authors", "real_authors_perturbed@train", about="utility: real authors"),
            EvalSplit("world_facts", "world_facts_perturbed@train", about="utility: world facts"),
            EvalSplit(
                "holdout", "holdout{number}@train", generate=False, about="never trained on: membership baseline"
            ),
        ),
        headline=tofu_headline,
        headline_keys=SUMMARY_HEADLINES,
        max_new_tokens=200,  # open-unlearning's generation config (TOFU's legacy code: 200 tokens in all)
        eval_samples=0,
        max_length=512,  # open-unlearning's TOFU datasets
        prompt_format="open-unlearning",
        extraction_strength="open-unlearning",
        forget_splits=("forget10", "forget05", "forget01"),
        data="hf:locuslab/TOFU",
        training={
            "forget": "{forget}@train",
            "holdout": "holdout{number}@train",
            "forget10:retain": "retain90@train",
            "forget05:retain": "retain95@train",
            "forget01:retain": "retain99@train",
        },
        command="tui-unlearn eval --recipe tofu --forget-split forget10 --model MODEL --oracle RETAIN_ONLY_MODEL",
    )
)
