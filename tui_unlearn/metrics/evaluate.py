"""``evaluate_splits``: every metric of every split from one scoring pass and one generation pass.

All (prompt, answer) pairs of all splits, the paraphrased and perturbed answers
included, are flattened into one list and scored in shared batches
(``scoring.score_answers``); all questions are answered in shared generation batches.
Per-example numbers are then turned into per-split aggregates by the pure functions of
``text``, ``tofu`` and ``mia``.

Plain-text records (kind "text") are split in half by tokens: the model continues the
first half (greedy, at most ``VERBATIM_MAX_NEW_TOKENS`` tokens) and the continuation is
compared with the true one by ROUGE-L F1 (``verbatim_rouge_l``, MUSE's verbatim
memorisation); their loss covers the whole text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from tui_unlearn.data.formatting import prompt_ids
from tui_unlearn.metrics import mia, text, tofu
from tui_unlearn.metrics.generation import generate_from_ids
from tui_unlearn.metrics.scoring import score_answers

VERBATIM_MAX_NEW_TOKENS = 128  # MUSE compares 128-token continuations
MIN_K = 0.4  # fraction of tokens for Min-K% and Min-K%++ (MUSE's Min-40%)
MIA_ATTACKS = ("loss", "zlib", "min_k", "min_k_pp")
HOLDOUT_SPLIT = "holdout"


@dataclass
class EvalResult:
    """Per-split aggregates, one row per record, and the raw truth ratios per split.

    ``aggregates[split]`` maps metric names to floats; ``examples`` rows hold the split,
    kind, question (the prefix for plain text), answer (the true continuation for plain
    text), generated text and every per-example metric (None where it does not apply);
    ``truth_ratios[split]`` lists the per-record truth ratios, for forget quality.
    """

    aggregates: dict[str, dict[str, float]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    truth_ratios: dict[str, list[float]] = field(default_factory=dict)


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
) -> EvalResult:
    """Evaluate ``model`` on every split (records in the schema of ``data.records``).

    Always: loss, token accuracy, and with ``generate`` the generated answers with exact
    match (``accuracy``), token precision / recall / F1. With ``field_metrics``: ROUGE-L
    recall, probability, truth ratio (records with a paraphrased and perturbed answers;
    the forget form on splits named "forget*"), exact memorisation, extraction strength,
    and on "forget*" splits, when a "holdout" split is given, the membership-inference
    AUCs forget vs holdout. The model is left in the train/eval mode it came in.
    """
    records = {name: list(recs) for name, recs in splits.items()}

    # One flat list of (question, answer) pairs for the scorer; `slots` points back.
    pairs: list[tuple[str, str]] = []
    slots: list[tuple[str, Mapping[str, Any], dict[str, Any]]] = []
    for name, recs in records.items():
        for rec in recs:
            kind = _kind(rec)
            question = (rec.get("question") or "") if kind == "qa" else ""
            slot: dict[str, Any] = {"kind": kind, "main": len(pairs)}
            pairs.append((question, rec.get("answer") or ""))
            paraphrased = rec.get("paraphrased_answer") or ""
            perturbed = list(rec.get("perturbed_answers") or [])
            if field_metrics and kind == "qa" and paraphrased and perturbed:
                slot["paraphrased"] = len(pairs)
                pairs.append((question, paraphrased))
                slot["perturbed"] = list(range(len(pairs), len(pairs) + len(perturbed)))
                pairs.extend((question, p) for p in perturbed)
            slots.append((name, rec, slot))
    scores = score_answers(model, tokenizer, pairs, batch_size=batch_size, max_length=max_length)

    if generate:
        _generate_into(
            model, tokenizer, slots, batch_size=batch_size, max_new_tokens=max_new_tokens, max_length=max_length
        )
    else:
        for _, rec, slot in slots:
            if slot["kind"] == "text":
                _, slot["prefix"], slot["continuation"], _ = _split_text(
                    tokenizer, rec.get("answer") or "", max_length
                )

    result = EvalResult()
    for name, rec, slot in slots:
        row = _example_row(name, rec, slot, scores, generate, field_metrics)
        # NaN (an answer truncated away) becomes None so rows stay valid JSON.
        result.examples.append({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()})
    for name in records:
        rows = [r for r in result.examples if r["split"] == name]
        result.aggregates[name] = _aggregate(name, rows, field_metrics)
        ratios = [r["truth_ratio"] for r in rows if r.get("truth_ratio") is not None]
        if ratios:
            result.truth_ratios[name] = ratios
    if field_metrics and HOLDOUT_SPLIT in records:
        holdout = [r for r in result.examples if r["split"] == HOLDOUT_SPLIT]
        for name in records:
            if name.startswith("forget"):
                forget = [r for r in result.examples if r["split"] == name]
                result.aggregates[name].update(_mia_aucs(forget, holdout))
    return result


def _generate_into(model, tokenizer, slots, *, batch_size: int, max_new_tokens: int, max_length: int) -> None:
    """Fill ``slot["generated"]`` (and the prefix / continuation of plain text)."""
    qa = [(rec, slot) for _, rec, slot in slots if slot["kind"] == "qa"]
    answers = generate_from_ids(
        model,
        tokenizer,
        [prompt_ids(tokenizer, rec.get("question") or "") for rec, _ in qa],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
    )
    for (_, slot), answer in zip(qa, answers):
        slot["generated"] = answer

    plain = [(rec, slot) for _, rec, slot in slots if slot["kind"] == "text"]
    prefix_ids = []
    longest = 0
    for rec, slot in plain:
        ids, slot["prefix"], slot["continuation"], n = _split_text(tokenizer, rec.get("answer") or "", max_length)
        prefix_ids.append(ids)
        longest = max(longest, n)
    continuations = generate_from_ids(
        model,
        tokenizer,
        prefix_ids,
        batch_size=batch_size,
        max_new_tokens=min(VERBATIM_MAX_NEW_TOKENS, longest + 1),
    )
    for (_, slot), generated in zip(plain, continuations):
        slot["generated"] = generated


def _example_row(name, rec, slot, scores, generate: bool, field_metrics: bool) -> dict[str, Any]:
    main = scores[slot["main"]]
    is_text = slot["kind"] == "text"
    gold = slot["continuation"] if is_text else rec.get("answer") or ""
    row: dict[str, Any] = {
        "split": name,
        "kind": slot["kind"],
        "group": rec.get("group") or "",
        "question": slot["prefix"] if is_text else rec.get("question") or "",
        "answer": gold,
        "generated": slot.get("generated") if generate else None,
        "loss": main.loss,
        "num_tokens": main.num_tokens,
        "token_accuracy": main.token_accuracy,
    }
    if generate:
        pred = slot["generated"]
        precision, recall, f1 = text.token_prf(pred, gold)
        row.update(exact_match=text.exact_match(pred, gold), precision=precision, recall=recall, f1=f1)
    if not field_metrics:
        return row

    row["probability"] = float(tofu.probability(main.loss)) if main.num_tokens else None
    row["extraction_strength"] = main.extraction_strength
    if generate:
        rouge_recall, rouge_f1 = text.rouge_l(slot["generated"], gold)
        if is_text:
            row["verbatim_rouge_l"] = rouge_f1
        else:
            row["rouge_l"] = rouge_recall
            row["rouge_l_f1"] = rouge_f1
    row["paraphrased_loss"] = row["perturbed_loss"] = row["truth_ratio"] = None
    if "paraphrased" in slot:
        paraphrased = scores[slot["paraphrased"]].loss
        perturbed = [scores[i].loss for i in slot["perturbed"]]
        if all(math.isfinite(x) for x in [paraphrased, *perturbed]):
            row["paraphrased_loss"] = paraphrased
            row["perturbed_loss"] = float(np.mean(perturbed))
            row["truth_ratio"] = tofu.truth_ratio(paraphrased, perturbed)
    scored_text = rec.get("answer") or ""
    if main.num_tokens:
        row["mia_loss"] = mia.loss_score(main.loss)
        row["mia_zlib"] = mia.zlib_score(main.loss, scored_text)
        row["mia_min_k"] = mia.min_k_score(main.token_log_probs, MIN_K)
        row["mia_min_k_pp"] = mia.min_k_plus_plus_score(main.min_k_pp_scores, MIN_K)
    else:
        row.update({f"mia_{a}": None for a in MIA_ATTACKS})
    return row


def _aggregate(name: str, rows: list[dict[str, Any]], field_metrics: bool) -> dict[str, float]:
    """Means of the per-example metrics (skipping None / NaN) under the split's metric names."""
    keys = {
        "accuracy": "exact_match",
        "token_accuracy": "token_accuracy",
        "precision": "precision",
        "recall": "recall",
        "f1": "f1",
        "loss": "loss",
    }
    if field_metrics:
        keys.update(
            rouge_l="rouge_l",
            verbatim_rouge_l="verbatim_rouge_l",
            probability="probability",
            exact_memorization="token_accuracy",
            extraction_strength="extraction_strength",
        )
    out: dict[str, float] = {}
    for metric, column in keys.items():
        value = _mean(r.get(column) for r in rows)
        if value is not None:
            out[metric] = value
    ratios = [r["truth_ratio"] for r in rows if r.get("truth_ratio") is not None]
    if field_metrics and ratios:
        out["truth_ratio"] = tofu.aggregate_truth_ratio(ratios, forget=name.startswith("forget"))
    return out


def _mia_aucs(members: list[dict[str, Any]], nonmembers: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for attack in MIA_ATTACKS:
        column = f"mia_{attack}"
        m = [r[column] for r in members if r.get(column) is not None]
        n = [r[column] for r in nonmembers if r.get(column) is not None]
        if m and n:
            out[f"mia_auc_{attack}"] = mia.auc(m, n)
    return out


def model_utility_from(retain_aggregates: Mapping[str, float]) -> float:
    """Harmonic mean of the retain split's probability, ROUGE-L recall and truth-ratio score
    (TOFU's model utility restricted to the splits we have); NaN when one is missing."""
    try:
        values = [retain_aggregates[k] for k in ("probability", "rouge_l", "truth_ratio")]
    except KeyError:
        return float("nan")
    return tofu.model_utility(values)


def forget_quality_from(model_result: EvalResult, oracle_result: EvalResult, split: str = "forget") -> float:
    """Forget quality of ``model_result`` against the retain-only oracle's result on ``split``."""
    return tofu.forget_quality(
        model_result.truth_ratios.get(split, []), oracle_result.truth_ratios.get(split, [])
    )
