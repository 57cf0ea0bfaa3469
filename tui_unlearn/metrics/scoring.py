"""One forward pass per batch that yields every logit-based, per-example number.

A batch of (question, answer) pairs is encoded exactly as in training
(``formatting.encode_example``: labels are -100 on the prompt), right-padded and run
once; from the logits at the answer positions we read the answer's loss, token
accuracy, extraction strength, per-token log-probabilities and Min-K%++ scores. All
the arithmetic is float32 whatever the model's dtype.

The loss covers every answer token including the closing EOS (as TOFU's and
open-unlearning's probability, truth ratio and LOSS attack do); the memorisation and
membership statistics (token accuracy / exact memorisation, extraction strength,
Min-K%, Min-K%++) leave the closing EOS out, as open-unlearning's
``tokenwise_logprobs`` does ("-1 to ignore eos prediction"): predicting where an answer
ends says little about whether its content was memorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tui_unlearn.data.formatting import IGNORE_INDEX, collate, encode_example, pad_token_id

# Min-K%++ divides by the standard deviation of log p under the model's distribution;
# a near-one-hot distribution would divide by ~0 (open-unlearning clamps the variance too).
MIN_VARIANCE = 1e-6
POSITIONS_PER_CHUNK = 1024


@dataclass
class AnswerScore:
    """What the model thinks of one answer given its prompt.

    ``loss`` is the mean negative log-likelihood per answer token, the closing EOS
    included (nats), over ``num_tokens`` tokens; ``total_nll`` their sum. The other
    fields cover the answer tokens without a closing EOS (``num_tokens - 1`` of them
    when the scored answer ends with EOS): ``token_log_probs[t]`` is
    log p(answer token t | everything before it);
    ``min_k_pp_scores[t]`` is (log p(x_t) - mu_t) / sigma_t where mu_t and sigma_t^2 are the
    mean and variance of log p over the vocabulary under the model's own distribution at
    that position; ``token_accuracy`` is the share of answer tokens that are the argmax
    prediction (TOFU / open-unlearning "exact memorization"); ``extraction_strength`` is
    1 - k/n for the smallest k such that the argmax predictions match every answer token
    from position k on (1 when all match, 0 when even the last one is wrong).
    An answer truncated away entirely (``num_tokens == 0``) has NaN metrics.
    """

    loss: float
    num_tokens: int
    token_accuracy: float
    extraction_strength: float
    token_log_probs: np.ndarray
    min_k_pp_scores: np.ndarray
    total_nll: float = float("nan")


def extraction_strength(correct: Sequence[bool]) -> float:
    """1 - k/n with k the start of the longest all-correct suffix of ``correct``.

    ``correct[t]`` says whether the greedy prediction at answer position t is the answer
    token. Open-unlearning's loop stops at k = n - 1 when no suffix matches, giving 1/n
    where this gives 0 (the definition: an empty suffix is the only one that matches).
    """
    n = len(correct)
    if n == 0:
        return float("nan")
    k = n
    while k > 0 and correct[k - 1]:
        k -= 1
    return 1.0 - k / n


def _empty_score() -> AnswerScore:
    nan = float("nan")
    empty = np.zeros(0, dtype=np.float32)
    return AnswerScore(nan, 0, nan, nan, empty, empty, nan)


def score_answers(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 32,
    max_length: int = 512,
    statistics: bool = True,
) -> list[AnswerScore]:
    """Score each (question, answer) pair; plain text is ("", text) and is scored in full.

    Pairs are sorted by length and right-padded in batches of ``batch_size``, one forward
    pass per batch; results come back in input order. ``statistics`` False computes the
    loss and token log-probabilities only (token accuracy, extraction strength and the
    Min-K%++ scores are NaN / empty): what a paraphrased or perturbed answer needs.
    """
    import torch

    if not pairs:
        return []
    features = [encode_example(tokenizer, q, a, max_length) for q, a in pairs]
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    pad_id = pad_token_id(tokenizer)
    device = next(model.parameters()).device
    results: list[AnswerScore | None] = [None] * len(features)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), max(1, batch_size)):
                chunk = order[start : start + max(1, batch_size)]
                batch = collate([features[i] for i in chunk], pad_id, padding_side="right")
                logits = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                ).logits
                labels = batch["labels"][:, 1:].to(logits.device)
                mask = labels != IGNORE_INDEX
                # Row-major selection keeps each example's answer tokens contiguous and in order.
                answer_logits = logits[:, :-1][mask]
                targets = labels[mask]
                scored = _score_positions(answer_logits, targets, mask.sum(1), tokenizer.eos_token_id, statistics)
                for index, score in zip(chunk, scored):
                    results[index] = score
    finally:
        model.train(was_training)
    return results  # type: ignore[return-value]


def _score_positions(
    answer_logits, targets, counts, eos_id: int | None = None, statistics: bool = True
) -> list[AnswerScore]:
    """Split per-position statistics of the flattened answer positions back into examples;
    an example's last position is left out of the memorisation statistics when its
    target is ``eos_id``."""
    import torch

    token_lp_parts, pp_parts, correct_parts = [], [], []
    # Chunks of positions bound the (positions x vocabulary) float32 temporaries.
    for start in range(0, answer_logits.shape[0], POSITIONS_PER_CHUNK):
        logits = answer_logits[start : start + POSITIONS_PER_CHUNK].float()
        target = targets[start : start + POSITIONS_PER_CHUNK]
        log_probs = torch.log_softmax(logits, dim=-1)
        token_lp = log_probs.gather(1, target[:, None]).squeeze(1)
        token_lp_parts.append(token_lp)
        if not statistics:
            pp_parts.append(torch.full_like(token_lp, float("nan")))
            correct_parts.append(torch.zeros_like(target, dtype=torch.bool))
            continue
        probs = log_probs.exp()
        mu = (probs * log_probs).sum(-1)
        # Centred form: E[lp^2] - mu^2 cancels catastrophically when p is near uniform.
        variance = (probs * (log_probs - mu[:, None]).square()).sum(-1)
        pp_parts.append((token_lp - mu) / variance.clamp_min(MIN_VARIANCE).sqrt())
        correct_parts.append(logits.argmax(-1) == target)
    token_lp = torch.cat(token_lp_parts) if token_lp_parts else torch.zeros(0)
    pp = torch.cat(pp_parts) if pp_parts else torch.zeros(0)
    correct = torch.cat(correct_parts) if correct_parts else torch.zeros(0, dtype=torch.bool)

    token_lp_np = token_lp.cpu().numpy().astype(np.float32)
    pp_np = pp.cpu().numpy().astype(np.float32)
    correct_np = correct.cpu().numpy()
    targets_np = targets.cpu().numpy()
    scores: list[AnswerScore] = []
    offset = 0
    for n in counts.tolist():
        if n == 0:
            scores.append(_empty_score())
            continue
        lp = token_lp_np[offset : offset + n]
        total = float(-lp.astype(np.float64).sum())
        # Memorisation statistics without the closing EOS (see the module docstring).
        kept = n - 1 if eos_id is not None and int(targets_np[offset + n - 1]) == eos_id else n
        ok = correct_np[offset : offset + kept]
        scores.append(
            AnswerScore(
                loss=total / n,
                num_tokens=n,
                token_accuracy=float(ok.mean()) if kept and statistics else float("nan"),
                extraction_strength=extraction_strength(ok.tolist()) if statistics else float("nan"),
                token_log_probs=lp[:kept],
                min_k_pp_scores=pp_np[offset : offset + kept],
                total_nll=total,
            )
        )
        offset += n
    return scores
