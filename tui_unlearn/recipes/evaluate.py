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
    from tui_unlearn.metrics.catalog import OU_EXTRACTION
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
            model,
            tokenizer,
            name,
            records,
            subject=subject,
            batch_size=batch_size,
            max_length=plan.max_length,
            bos=plan.mc_bos == "tokenizer",
        )
    if plan.recipe.extraction_strength == "open-unlearning":
        for example in examples:
            example.extra[OU_EXTRACTION] = True
    return result_from_examples(examples, split_names=list(plan.splits), generate=True, field_metrics=True)


def first_forget_prompt(plan: Any, tokenizer: Any) -> dict[str, Any]:
    """How the plan's first forget record is put to the model, for the summary: the prompt
    format's settings, the prompt's exact text and token ids (what generation is asked
    with; a multiple-choice question's context), and the token ids whose loss is scored.
    A plain text is scored whole after BOS (no prompt text)."""
    from tui_unlearn.data.formatting import (
        IGNORE_INDEX,
        build_prompt,
        encode_example,
        prompt_format_of,
        prompt_ids,
    )
    from tui_unlearn.metrics.choice import encode_pair, question_context

    out: dict[str, Any] = {"format": prompt_format_of(tokenizer).describe()}
    records = plan.splits.get("forget") or []
    if not records:
        return out
    record, task = records[0], plan.spec("forget").task
    out["record"] = "forget[0]"
    if task == CHOICE:
        subject = record.get("subject") or plan.recipe.fill(plan.spec("forget").subject, plan.forget_split)
        context = question_context(record["question"], record["choices"], subject)
        ids, first_option = encode_pair(tokenizer, context, " A", bos=plan.mc_bos == "tokenizer")
        out.update(prompt_text=context, prompt_ids=ids, answer_ids=first_option)
        return out
    question = record.get("question") or "" if task == QA else ""
    answer = record.get("answer") or record.get("text") or ""
    encoded = encode_example(tokenizer, question, answer, plan.max_length)
    scored = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != IGNORE_INDEX]
    if question:
        out.update(prompt_text=build_prompt(tokenizer, question), prompt_ids=prompt_ids(tokenizer, question))
    else:
        out.update(prompt_text="", prompt_ids=encoded["input_ids"][: len(encoded["input_ids"]) - len(scored)])
    out["answer_ids"] = scored
    return out
