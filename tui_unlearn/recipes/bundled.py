"""The bundled benchmark (or a run's own data) evaluated with TOFU's metrics.

Today's default evaluation, made faithful to TOFU where it differed for no reason: the
forget, retain and holdout sets are the run's own (samples of ``--eval-samples``, 100 by
default: the whole bundled forget10 and holdout, a fixed retain sample); the holdout is
what TOFU's is, a membership baseline (its answers scored for the forget-vs-holdout
attacks, nothing generated, no truth ratio); the nine-part
model utility adds the benchmark's ``real_authors`` and ``world_facts`` splits when this
version of the bundled benchmark has them (and the run is on it), else it is None with
that reason and ``retain_utility`` (the retain set's part of it) is what the utility floor
reads. On forget records without perturbed answers forget quality is the KS test of the
answer losses (``recipes.headline``). Answers are generated up to 48 new tokens: bundled
answers are at most 21 tokens, so the cap only trims text a model runs on with after its
answer.
"""

from __future__ import annotations

from tui_unlearn.metrics.registry import SUMMARY_HEADLINES
from tui_unlearn.recipes import register
from tui_unlearn.recipes.base import EvalSplit, Recipe
from tui_unlearn.recipes.headline import tofu_headline

RECIPE = register(
    Recipe(
        name="bundled",
        description="the run's forget / retain / holdout sets (the bundled benchmark by default) with TOFU's metrics",
        splits=(
            EvalSplit("forget", "run:forget", about="the run's forget set"),
            EvalSplit("retain", "run:retain", retain_eval=True, required=False, about="the run's retain set"),
            EvalSplit(
                "holdout",
                "run:holdout",
                generate=False,
                generate_own=True,
                truth_ratio=False,
                required=False,
                about="never trained on: membership baseline (and, on your own data, knowledge graded)",
            ),
            EvalSplit("real_authors", "bundled:real_authors", required=False, about="utility: famous authors"),
            EvalSplit("world_facts", "bundled:world_facts", required=False, about="utility: world facts"),
        ),
        headline=tofu_headline,
        headline_keys=(*SUMMARY_HEADLINES, "retain_utility"),
        max_new_tokens=48,
        eval_samples=100,
        max_length=512,
        forget_splits=("forget10", "forget05", "forget01"),
        command="tui-unlearn --batch",
    )
)
