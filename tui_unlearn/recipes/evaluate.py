"""Running a model over an evaluation plan: every split by its task, into one result.

Question/answer and plain-text splits share one scoring pass and one generation pass
(``metrics.evaluate.qa_examples``); MUSE's completions and KnowMem questions are
generated (``metrics.muse``); multiple-choice questions are scored option by option
(``metrics.choice``). Every example then goes through the one row-and-aggregate path
(``metrics.evaluate.result_from_examples``), so a metric means the same in every recipe.
"""

from __future__ import annotations

from typing import Any

from tui_unlearn.recipes.base import CHOICE, COMPLETION, KNOWMEM, QA, TEXT


def evaluate_plan(plan: Any, model: Any, tokenizer: Any, *, batch_size: int = 32):
    """An :class:`~tui_unlearn.metrics.evaluate.EvalResult` of ``model`` on every split of ``plan``."""
    from tui_unlearn.metrics.choice import choice_examples
    from tui_unlearn.metrics.evaluate import qa_examples, result_from_examples
    from tui_unlearn.metrics.muse import knowmem_examples, verbmem_examples

    examples = []
    scored = plan.of_tasks(QA, TEXT)
    if scored:
        examples += qa_examples(
            model,
            tokenizer,
            scored,
            batch_size=batch_size,
            max_new_tokens=plan.max_new_tokens,
            max_length=plan.max_length,
            generate_splits={n for n in scored if plan.generates(n)},
            truth_ratio_splits={n for n in scored if plan.spec(n).truth_ratio},
        )
    for name, records in plan.of_tasks(COMPLETION).items():
        examples += verbmem_examples(
            model,
            tokenizer,
            name,
            records,
            max_new_tokens=plan.max_new_tokens,
            batch_size=batch_size,
            max_length=plan.max_length,
        )
    for name, records in plan.of_tasks(KNOWMEM).items():
        examples += knowmem_examples(
            model, tokenizer, name, records, plan.shots.get(name, []), batch_size=batch_size, max_length=plan.max_length
        )
    for name, records in plan.of_tasks(CHOICE).items():
        subject = plan.recipe.fill(plan.spec(name).subject, plan.forget_split)
        examples += choice_examples(
            model, tokenizer, name, records, subject=subject, batch_size=batch_size, max_length=plan.max_length
        )
    return result_from_examples(examples, split_names=list(plan.splits), generate=True, field_metrics=True)
