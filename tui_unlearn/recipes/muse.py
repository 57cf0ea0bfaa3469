"""MUSE (Shi et al. 2024) as its ``eval.py`` runs it: VerbMem, KnowMem on forget and retain, PrivLeak.

Sources are MUSE's published configs (``hf:muse-bench/MUSE-News`` by default, or
``MUSE-Books``), or a ``--recipe-data`` folder laid out as MUSE's ``load_data.py``
writes them (``verbmem/forget.json``, ``knowmem/forget_qa.json``,
``knowmem/forget_qa_icl.json``, ``privleak/forget.json``, ...). ``--forget-split`` is
MUSE's forget set, ``forget``. PrivLeak compares the forget-vs-holdout Min-40% AUC
with the retrained model's: an oracle model or eval session, or the AUC MUSE reports
(``--privleak-reference-auc``; MUSE's retrained Llama-2 7B: News 0.4772, Books 0.5393).
Training defaults: MUSE's raw forget texts and ``retain1``. Texts are scored whole, as
MUSE's code scores them, up to the model's context (open-unlearning cuts them at 2048
tokens); what the context cuts is said in the run's log.
"""

from __future__ import annotations

from tui_unlearn.recipes import headline as hl
from tui_unlearn.recipes import register
from tui_unlearn.recipes.base import COMPLETION, KNOWMEM, TEXT, EvalSplit, Headline, Recipe


def muse_headline(result, oracle, plan) -> Headline:
    h = Headline()
    hl.split_metric(h, "verbmem_forget", result, plan, "verbmem_forget", "verbatim_rouge_l")
    hl.split_metric(h, "knowmem_forget", result, plan, "knowmem_forget", "knowmem_rouge_l")
    hl.split_metric(h, "knowmem_retain", result, plan, "knowmem_retain", "knowmem_rouge_l")
    hl.privleak(h, result, oracle, plan)
    return h


RECIPE = register(
    Recipe(
        name="muse",
        description="MUSE: VerbMem (forget), KnowMem (forget, retain), PrivLeak",
        splits=(
            EvalSplit(
                "verbmem_forget", "verbmem@{forget}", task=COMPLETION, about="forget texts: prompt and continuation"
            ),
            EvalSplit(
                "knowmem_forget",
                "knowmem@forget_qa",
                task=KNOWMEM,
                shots="knowmem@forget_qa_icl",
                about="questions on the forget texts",
            ),
            EvalSplit(
                "knowmem_retain",
                "knowmem@retain_qa",
                task=KNOWMEM,
                shots="knowmem@retain_qa_icl",
                retain_eval=True,
                about="questions on the retain texts",
            ),
            EvalSplit("forget", "privleak@{forget}", task=TEXT, generate=False, about="privleak members"),
            EvalSplit("holdout", "privleak@holdout", task=TEXT, generate=False, about="privleak non-members"),
        ),
        headline=muse_headline,
        headline_keys=("verbmem_forget", "knowmem_forget", "knowmem_retain", "privleak", "mia_auc"),
        max_new_tokens=128,  # VerbMem's continuation length; KnowMem answers in 32
        eval_samples=0,
        max_length=0,  # MUSE's eval.py cuts nothing: texts are cut only at the model's context (and the log says so)
        prompt_format="open-unlearning",
        extraction_strength="open-unlearning",
        forget_splits=("forget",),
        data="hf:muse-bench/MUSE-News",
        folder_layout=lambda config, split: f"{config}/{split}",
        training={"forget": "raw@forget", "retain": "raw@retain1"},
        command="tui-unlearn eval --recipe muse --model MODEL --privleak-reference-auc 0.4772",
    )
)
