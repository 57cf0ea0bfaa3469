"""``evaluate_splits``: every metric of every split from one scoring pass and one generation pass.

All (prompt, answer) pairs of all splits, the paraphrased and perturbed answers
included, are flattened into one list and scored in shared batches, each question's
prompt computed once for all its answers (``scoring.score_answers``); all questions are answered in shared generation batches.
Per-example numbers are then turned into per-split aggregates by the pure functions of
``text``, ``tofu`` and ``mia``.

Plain-text records (kind "text") are split in half by tokens: the model continues the
first half (greedy, at most ``VERBATIM_MAX_NEW_TOKENS`` tokens) and the continuation is
compared with the true one by ROUGE-L F1 (``verbatim_rouge_l``, MUSE's verbatim
memorisation); their loss covers the whole text.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tui_unlearn.data.formatting import prompt_ids
from tui_unlearn.metrics import tofu
from tui_unlearn.metrics.generation import PROMPT_CUT, fit_prompt, generate_from_ids, prompt_room
from tui_unlearn.metrics.registry import Example, pair_aggregates, row_metrics, split_aggregates
from tui_unlearn.metrics.scoring import score_answers

VERBATIM_MAX_NEW_TOKENS = 128  # MUSE compares 128-token continuations
HOLDOUT_SPLIT = "holdout"


@dataclass
class EvalResult:
    """Per-split aggregates, one row per record, and the raw truth ratios per split.

    ``aggregates[split]`` maps metric names to floats; ``examples`` rows hold the split,
    kind, question (the prefix for plain text), answer (the true continuation for plain
    text), generated text and every per-example metric (None where it does not apply);
    ``truth_ratios[split]`` lists the per-record truth ratios, for forget quality;
    ``notes`` are lines for the run's log (what was cut to fit the maximum length).
    """

    aggregates: dict[str, dict[str, float]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    truth_ratios: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _kind(record: Mapping[str, Any]) -> str:
    return record.get("kind") or ("qa" if record.get("question") else "text")


def _mean(values: Iterable[Any]) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def _split_text(tokenizer, body: str, max_length: int) -> tuple[list[int], str, str, int]:
    """Split plain text for the verbatim-memorisation probe.

    Returns the prompt ids (BOS + the first half of the text's tokens, at most
    ``max_length - VERBATIM_MAX_NEW_TOKENS`` of them so prompt and continuation fit), the
    prefix text, the true continuation (the next ``VERBATIM_MAX_NEW_TOKENS`` tokens,
    decoded) and its token count.
    """
    ids = list(tokenizer(body, add_special_tokens=False)["input_ids"])
    cut = min(len(ids) // 2, max(1, max_length - VERBATIM_MAX_NEW_TOKENS - 1))
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    rest = ids[cut : cut + VERBATIM_MAX_NEW_TOKENS]
    prefix = tokenizer.decode(ids[:cut], skip_special_tokens=True).strip()
    continuation = tokenizer.decode(rest, skip_special_tokens=True).strip()
    return bos + ids[:cut], prefix, continuation, len(rest)


# Characters per token assumed when looking for a text's head or tail that covers enough
# tokens; a guess that is only a starting point (``_bounded`` checks and widens it).
CHARS_PER_TOKEN = 8
# Tokens past the needed count that the head or tail must have, so the ones that matter are
# not the ones next to the cut (where a word is split).
TOKEN_MARGIN = 64


def _bounded(tokenizer, text: str, tokens: int, *, tail: bool = False) -> str:
    """``text``, or its head (``tail``: its end) that tokenizes to more than ``tokens``
    tokens plus a margin: the same first (last) ``tokens`` tokens as the whole text.

    A 10 MB one-line text takes the tokenizer about 25 s per pass (2 cores), and nothing
    past the maximum length is ever looked at; a short text is returned untouched without
    tokenizing it.
    """
    chars = CHARS_PER_TOKEN * (tokens + TOKEN_MARGIN)
    while chars < len(text):
        part = text[-chars:] if tail else text[:chars]
        if len(tokenizer(part, add_special_tokens=False)["input_ids"]) > tokens + TOKEN_MARGIN:
            return part
        chars *= 4
    return text


def evaluate_splits(
    model,
    tokenizer,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    batch_size: int = 32,
    max_new_tokens: int = 48,
    generate: bool = True,
    field_metrics: bool = True,
    max_length: int = 512,
    generate_splits: Collection[str] | None = None,
    truth_ratio_splits: Collection[str] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on every split (records in the schema of ``data.records``).

    Always: loss, token accuracy, and with ``generate`` the generated answers with exact
    match (``accuracy``), token precision / recall / F1. With ``field_metrics``: ROUGE-L
    recall, probability, truth ratio (records with perturbed answers, over the paraphrased
    answer or, without one, the answer itself; the forget form on splits named
    "forget*"), probability against the perturbed answers, exact memorisation,
    extraction strength, and on "forget*" splits, when a "holdout" split is given, the
    membership-inference AUCs forget vs holdout. ``generate_splits`` limits generation
    and ``truth_ratio_splits`` the scoring of paraphrased and perturbed answers to the
    splits named (None: every split). The model is left in the train/eval mode it came in.
    """
    records = {name: list(recs) for name, recs in splits.items()}
    examples = qa_examples(
        model,
        tokenizer,
        records,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        generate=generate,
        field_metrics=field_metrics,
        max_length=max_length,
        generate_splits=generate_splits,
        truth_ratio_splits=truth_ratio_splits,
    )
    return result_from_examples(examples, split_names=list(records), generate=generate, field_metrics=field_metrics)


def qa_examples(
    model,
    tokenizer,
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    batch_size: int = 32,
    max_new_tokens: int = 48,
    generate: bool = True,
    field_metrics: bool = True,
    max_length: int = 512,
    generate_splits: Collection[str] | None = None,
    truth_ratio_splits: Collection[str] | None = None,
) -> list[Example]:
    """The scored (and, for the splits that generate, answered) examples of question/answer
    and plain-text records: one scoring pass and one generation pass over every split."""
    generating = {name for name in records if generate and (generate_splits is None or name in generate_splits)}

    # One flat list of (question, answer) pairs for the scorer, `slots` pointing back: the
    # answers themselves with every statistic, their variants with the loss only. One call,
    # so a question's answer and variants share its prompt's forward pass.
    pairs: list[tuple[str, str]] = []
    statistics: list[bool] = []
    slots: list[tuple[str, Mapping[str, Any], dict[str, Any]]] = []

    def add(question: str, answer: str, stats: bool) -> int:
        pairs.append((question, answer))
        statistics.append(stats)
        return len(pairs) - 1

    for name, recs in records.items():
        for rec in recs:
            kind = _kind(rec)
            # Only the first max_length tokens of a scored sequence count (the verbatim probe
            # reads up to twice that of a text): a huge text is tokenized that far only.
            question = _bounded(tokenizer, rec.get("question") or "", max_length) if kind == "qa" else ""
            answer = _bounded(tokenizer, rec.get("answer") or "", max_length * (1 if kind == "qa" else 2))
            slot: dict[str, Any] = {"kind": kind, "generate": name in generating}
            slot["main"] = add(question, answer, True)
            if kind == "text":
                slot["prefix_ids"], slot["prefix"], slot["continuation"], slot["continuation_tokens"] = _split_text(
                    tokenizer, answer, max_length
                )
            paraphrased = rec.get("paraphrased_answer") or ""
            perturbed = list(rec.get("perturbed_answers") or [])
            wants_variants = truth_ratio_splits is None or name in truth_ratio_splits
            if field_metrics and kind == "qa" and perturbed and wants_variants:
                if paraphrased:
                    slot["paraphrased"] = add(question, _bounded(tokenizer, paraphrased, max_length), False)
                slot["perturbed"] = [add(question, _bounded(tokenizer, p, max_length), False) for p in perturbed]
            slots.append((name, rec, slot))
    scores = score_answers(model, tokenizer, pairs, batch_size=batch_size, max_length=max_length, statistics=statistics)

    if generating:
        _generate_into(
            model,
            tokenizer,
            [s for s in slots if s[2]["generate"]],
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            max_length=max_length,
        )

    examples = []
    for name, rec, slot in slots:
        is_text = slot["kind"] == "text"
        examples.append(
            Example(
                split=name,
                kind=slot["kind"],
                record=rec,
                gold=slot["continuation"] if is_text else rec.get("answer") or "",
                main=scores[slot["main"]],
                generated=slot.get("generated") if slot["generate"] else None,
                paraphrased=scores[slot["paraphrased"]] if "paraphrased" in slot else None,
                perturbed=[scores[i] for i in slot.get("perturbed", ())],
                prompt=slot["prefix"] if is_text else None,
                extra={PROMPT_CUT: True} if slot.get(PROMPT_CUT) else {},
            )
        )
    return examples


def truncation_notes(examples: Sequence[Example]) -> list[str]:
    """What was cut to fit the maximum length, as log lines: scored sequences (prompt and
    answer) cut at the end as in training, and generation prompts cut at the start."""
    notes = []
    scored = [e for e in examples if e.main is not None]
    cut = [e for e in scored if getattr(e.main, "truncated", False)]
    if cut:
        lost = sum(1 for e in cut if not e.main.num_tokens)
        notes.append(
            f"{len(cut)} of {len(scored)} scored records were longer than the maximum length and lost their end"
            + (f" ({lost} their whole answer: not scored)" if lost else "")
        )
    asked = [e for e in examples if e.generated is not None]
    prompts_cut = sum(1 for e in asked if e.extra.get(PROMPT_CUT))
    if prompts_cut:
        notes.append(
            f"{prompts_cut} of {len(asked)} generation prompts were longer than the maximum length less the new "
            "tokens and lost their beginning"
        )
    return notes


def result_from_examples(
    examples: Sequence[Example],
    *,
    split_names: Sequence[str] | None = None,
    generate: bool = True,
    field_metrics: bool = True,
) -> EvalResult:
    """Rows, split aggregates, truth ratios and forget-vs-holdout AUCs from scored examples.

    The one place per-example numbers become a result: ``evaluate_splits`` and the
    recipes' own evaluations (multiple choice, MUSE's completions) end here, and so can a
    test that rebuilds examples from someone else's per-example logs. ``split_names``
    orders the splits (default: first appearance); a split without examples gets an empty
    aggregate.
    """
    names = list(split_names) if split_names is not None else list(dict.fromkeys(e.split for e in examples))
    result = EvalResult(notes=truncation_notes(examples))
    computed = row_metrics(generate=generate, field_metrics=field_metrics)
    for example in examples:
        row = example_row(example, computed)
        # NaN (an answer truncated away) becomes None so rows stay valid JSON.
        result.examples.append({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    for name in names:
        rows = [r for r in result.examples if r["split"] == name]
        result.aggregates[name] = split_aggregates(name, rows, generate=generate, field_metrics=field_metrics)
        ratios = [r["truth_ratio"] for r in rows if r.get("truth_ratio") is not None]
        if ratios:
            result.truth_ratios[name] = ratios
    if field_metrics and HOLDOUT_SPLIT in names:
        holdout = [r for r in result.examples if r["split"] == HOLDOUT_SPLIT]
        for name in names:
            if name.startswith("forget"):
                forget = [r for r in result.examples if r["split"] == name]
                result.aggregates[name].update(pair_aggregates(forget, holdout))
    return result


def _generate_into(model, tokenizer, slots, *, batch_size: int, max_new_tokens: int, max_length: int) -> None:
    """Fill ``slot["generated"]`` (plain text continues its prefix, see ``_split_text``)."""
    qa = [(rec, slot) for _, rec, slot in slots if slot["kind"] == "qa"]
    room = prompt_room(max_length, max_new_tokens)
    prompts = []
    for rec, slot in qa:
        # A generation prompt keeps its end (fit_prompt): a huge question is tokenized from its tail only.
        ids = prompt_ids(tokenizer, _bounded(tokenizer, rec.get("question") or "", room, tail=True))
        slot[PROMPT_CUT] = len(ids) > room
        prompts.append(fit_prompt(ids, room))
    answers = generate_from_ids(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens)
    for (_, slot), answer in zip(qa, answers):
        slot["generated"] = answer

    plain = [(rec, slot) for _, rec, slot in slots if slot["kind"] == "text"]
    longest = max((slot["continuation_tokens"] for _, slot in plain), default=0)
    continuations = generate_from_ids(
        model,
        tokenizer,
        [slot["prefix_ids"] for _, slot in plain],
        batch_size=batch_size,
        max_new_tokens=min(VERBATIM_MAX_NEW_TOKENS, longest + 1),
    )
    for (_, slot), generated in zip(plain, continuations):
        slot["generated"] = generated


def example_row(example: Example, metrics: Sequence[Any]) -> dict[str, Any]:
    """One examples.jsonl row: who the record is, what the model said, every computed metric."""
    rec = example.record
    main = example.main
    row: dict[str, Any] = {
        "split": example.split,
        "kind": example.kind,
        "group": rec.get("group") or "",
        "question": example.prompt if example.prompt is not None else rec.get("question") or "",
        "answer": example.gold,
        "generated": example.generated,
        "num_tokens": getattr(main, "num_tokens", 0),
    }
    for metric in metrics:
        if example.kind in metric.kinds:
            row[metric.row_key] = metric.compute(example)
    return row


def model_utility_from(retain_aggregates: Mapping[str, float]) -> float:
    """Harmonic mean of one split's probability, ROUGE-L recall and truth-ratio score: a
    third of TOFU's model utility (the recipes' ``headline`` computes all nine parts);
    NaN when one is missing."""
    try:
        values = [retain_aggregates[k] for k in ("probability", "rouge_l", "truth_ratio")]
    except KeyError:
        return float("nan")
    return tofu.model_utility(values)


def forget_quality_from(model_result: EvalResult, oracle_result: EvalResult, split: str = "forget") -> float:
    """Forget quality of ``model_result`` against the retain-only oracle's result on ``split``."""
    return tofu.forget_quality(model_result.truth_ratios.get(split, []), oracle_result.truth_ratios.get(split, []))
