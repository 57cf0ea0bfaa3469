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

import functools
import math
import sys
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from tui_unlearn.data.formatting import IGNORE_INDEX, collate, encode_examples, pad_token_id
from tui_unlearn.metrics.kv_cache import forward_parameters, unless_unfit

# Min-K%++ divides by the standard deviation of log p under the model's distribution;
# a near-one-hot distribution would divide by ~0 (open-unlearning clamps the variance too).
MIN_VARIANCE = 1e-6
# The float32 statistics of a chunk of positions take a few (positions x vocabulary)
# temporaries each this size at most: 1024 positions of a 32 k vocabulary, 170 of a 49 k one
# (at a fixed 1024 positions, a 49 k vocabulary's five temporaries were 1 GB).
CHUNK_BYTES = 32 << 20


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
    from position k on (1 when all match, 0 when even the last one is wrong);
    ``extraction_strength_ou`` is open-unlearning's value of it (1/n where the definition
    gives 0, see ``extraction_strength``), which the tofu and muse recipes report.
    An answer truncated away entirely (``num_tokens == 0``) has NaN metrics;
    ``truncated`` says the sequence was cut at the maximum length (see ``score_answers``);
    ``answer_text`` is the scored answer tokens decoded without special tokens (what
    open-unlearning's zlib attack compresses).
    """

    loss: float
    num_tokens: int
    token_accuracy: float
    extraction_strength: float
    token_log_probs: np.ndarray
    min_k_pp_scores: np.ndarray
    total_nll: float = float("nan")
    truncated: bool = False
    extraction_strength_ou: float = float("nan")
    answer_text: str = ""


def extraction_strength(correct: Sequence[bool], *, open_unlearning: bool = False) -> float:
    """1 - k/n with k the start of the longest all-correct suffix of ``correct``.

    ``correct[t]`` says whether the greedy prediction at answer position t is the answer
    token. The definition gives 0 when no suffix matches (only the empty one does);
    ``open_unlearning``: the value of open-unlearning's loop (``memorization.py``,
    ``for k in range(n): if preds[k:] == labels[k:]: break``), which ends at k = n - 1 when
    no suffix matches, so 1/n, and gives 0 for an answer with no tokens (NaN here).
    """
    n = len(correct)
    if n == 0:
        return 0.0 if open_unlearning else float("nan")
    k = n
    while k > 0 and correct[k - 1]:
        k -= 1
    if open_unlearning:
        k = min(k, n - 1)
    return 1.0 - k / n


def _decoder(tokenizer):
    """Token ids -> text without special tokens, as open-unlearning decodes a scored answer
    (``extract_target_texts_from_processed_data``)."""
    return functools.partial(tokenizer.decode, skip_special_tokens=True)


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
    statistics: bool | Sequence[bool] = True,
) -> list[AnswerScore]:
    """Score each (question, answer) pair; plain text is ("", text) and is scored in full.

    Results come back in input order. ``statistics`` (one flag, or one per pair) False
    computes the loss and token log-probabilities only (token accuracy, extraction
    strength and the Min-K%++ scores are NaN): what a paraphrased or perturbed answer needs.

    When the pairs share questions (an answer with its paraphrased and perturbed
    variants: six or seven answers per question in TOFU), each batch runs its distinct
    prompts once and continues every answer from the prompts' KV cache
    (``_SharedPromptScorer``), so prompt tokens are computed once instead of once per
    answer. Otherwise, or for a model the shared path does not reproduce, pairs are
    sorted by length and right-padded in batches of ``batch_size``, one forward pass each.
    """
    import torch

    if not pairs:
        return []
    flags = [statistics] * len(pairs) if isinstance(statistics, bool) else [bool(f) for f in statistics]
    if len(flags) != len(pairs):
        raise ValueError(f"{len(flags)} statistics flags for {len(pairs)} pairs")
    # A question tokenized once for all its answers; cut here rather than by the encoder, to
    # know which were: prompt + answer past ``max_length`` lose answer tokens from the end, as
    # in training (``formatting.encode_example``).
    features = encode_examples(tokenizer, pairs, sys.maxsize)
    cut = [len(f["input_ids"]) > max_length for f in features]
    features = [{k: v[:max_length] for k, v in f.items()} for f in features]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            scorer = _SharedPromptScorer(model, tokenizer, features, flags, max(1, batch_size))
            results = scorer.run() if scorer.worthwhile() else None
            if results is None:
                results = _score_padded(model, tokenizer, features, flags, max(1, batch_size))
    finally:
        model.train(was_training)
    for score, was_cut in zip(results, cut):
        score.truncated = was_cut
    return results


@contextmanager
def head_only_at(model, keep):
    """While open, the model's output head (``get_output_embeddings``) computes logits only
    at the positions ``keep`` marks, a (batch, positions) bool tensor over the hidden states
    the head receives: the model's logits come back as (1, kept, vocab), row-major (each
    row's kept positions contiguous and in order).

    A 64-row batch of 100-token sequences at a 49 k vocabulary is 1.3 GB of float32 logits,
    of which scoring reads the answer positions only. Whatever the model does to logits
    after its head (a soft cap, a scale) is elementwise and still happens. A head that sees
    hidden states of another shape is left alone (full logits come back).
    """
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    if head is None or not hasattr(head, "register_forward_pre_hook"):
        yield
        return

    def select(module, args):
        hidden = args[0]
        if hidden.dim() != 3 or tuple(hidden.shape[:2]) != tuple(keep.shape):
            return None
        return (hidden[keep.to(hidden.device)][None], *args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def answer_logits_of(model, keep, run):
    """``run()``'s logits (a forward pass) at the positions ``keep`` marks, (kept, vocab):
    computed there only where the model lets ``head_only_at`` do it, else picked from the
    full logits."""
    with head_only_at(model, keep):
        logits = run()
    kept = int(keep.sum())
    if logits.dim() == 3 and logits.shape[0] == 1 and logits.shape[1] == kept:
        return logits[0]
    return logits[keep.to(logits.device)]


def _score_padded(model, tokenizer, features, flags, batch_size: int) -> list[AnswerScore]:
    """Whole sequences, longest first, right-padded: one forward pass per batch, the output
    head run at the answer positions only (``head_only_at``)."""
    import torch

    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    pad_id = pad_token_id(tokenizer)
    device = next(model.parameters()).device
    results: list[AnswerScore | None] = [None] * len(features)
    # Nothing continues from these passes: a KV cache would only copy every layer's keys and values.
    no_cache = {"use_cache": False} if "use_cache" in forward_parameters(model) else {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = collate([features[i] for i in chunk], pad_id, padding_side="right")
        labels = batch["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        # Position t predicts token t + 1: the last position predicts nothing.
        keep = torch.cat([mask, torch.zeros_like(mask[:, :1])], dim=1)
        answer_logits = answer_logits_of(
            model,
            keep,
            lambda batch=batch: (
                model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    **no_cache,
                ).logits
            ),
        )
        targets = labels[mask].to(answer_logits.device)
        mask = mask.to(answer_logits.device)
        scored = _score_positions(
            answer_logits,
            targets,
            mask.sum(1),
            tokenizer.eos_token_id,
            [flags[i] for i in chunk],
            decode=_decoder(tokenizer),
        )
        for index, score in zip(chunk, scored):
            results[index] = score
    return results  # type: ignore[return-value]


class _SharedPromptScorer:
    """Scores answers that share prompts: each batch holds whole groups of answers to the
    same prompt (a group larger than a batch is split); its distinct prompts run once,
    left-padded so they all end in the last column, and the answers run as a
    continuation of the prompts' KV cache with their own position ids.

    The first answer token is predicted by the prompt's last logits, the rest by the
    answer pass: the same predictions as one pass over prompt + answer. Where a model
    cannot take this path (no cache object, no ``position_ids``) or does not reproduce
    the plain pass on the first batch's answers, ``run`` returns None and the caller
    scores whole sequences.
    """

    # How far the two paths may differ on an answer's mean loss before the shared one is
    # not trusted: float rounding of different matrix shapes, not a different computation
    # (which moves the loss by far more, e.g. wrong positions in a model with learned ones).
    TOLERANCE = {"float32": 1e-3, "float64": 1e-6}
    HALF_TOLERANCE = 3e-2
    CHECKED_ANSWERS = 4

    def __init__(self, model, tokenizer, features, flags, batch_size: int):
        self.model, self.tokenizer, self.features, self.flags = model, tokenizer, features, flags
        self.batch_size = batch_size
        self.pad_id = pad_token_id(tokenizer)
        self.device = next(model.parameters()).device
        # (prompt, answer) token ids of every pair; plain text without a BOS token has no
        # prompt, so its first token (never predicted) stands in for one.
        self.parts: list[tuple[tuple[int, ...], list[int]]] = []
        for f in features:
            n = sum(1 for label in f["labels"] if label == IGNORE_INDEX)
            prompt, answer = f["input_ids"][:n], f["input_ids"][n:]
            if not prompt:
                prompt, answer = answer[:1], answer[1:]
            self.parts.append((tuple(prompt), answer))
        self.groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prompt, answer) in enumerate(self.parts):
            if prompt and answer:
                self.groups.setdefault(prompt, []).append(i)

    def worthwhile(self) -> bool:
        """Two answers or more per prompt on average: below that the prompt pass costs
        more than it saves."""
        answers = sum(len(g) for g in self.groups.values())
        return bool(self.groups) and answers >= 2 * len(self.groups)

    def batches(self) -> list[list[int]]:
        """Pair indices per batch, at most ``batch_size`` answers: groups in order of their
        longest answer, so the answer pass (the bulk of the work) pads little."""
        batches: list[list[int]] = [[]]
        longest = {prompt: max(len(self.parts[i][1]) for i in group) for prompt, group in self.groups.items()}
        for prompt in sorted(self.groups, key=lambda p: (-longest[p], -len(p))):
            for i in self.groups[prompt]:
                if len(batches[-1]) == self.batch_size:
                    batches.append([])
                batches[-1].append(i)
        return [b for b in batches if b]

    def run(self) -> list[AnswerScore] | None:
        results: list[AnswerScore] = [_empty_score() for _ in self.features]  # pairs with no answer left
        for n, chunk in enumerate(self.batches()):
            if n == 0:
                # A model this path does not fit is scored whole (which says what is wrong, if anything).
                first = unless_unfit(functools.partial(self.score_batch, chunk))
                if first is None or not self.reproduces_plain_pass(chunk, first):
                    return None
                scored = first
            else:
                scored = self.score_batch(chunk)
            for index, score in zip(chunk, scored):
                results[index] = score
        return results

    def score_batch(self, chunk: list[int]) -> list[AnswerScore]:
        import torch

        from tui_unlearn.metrics.kv_cache import continue_from, left_padded, run_prompts

        prompts = list(dict.fromkeys(self.parts[i][0] for i in chunk))
        row_of = {p: r for r, p in enumerate(prompts)}
        prompt_ids, prompt_mask = left_padded(prompts, self.pad_id, self.device)
        last, cache = run_prompts(self.model, prompt_ids, prompt_mask)
        rows = torch.tensor([row_of[self.parts[i][0]] for i in chunk], device=self.device)
        cache.reorder_cache(rows)  # one cache row per answer, copied from its prompt's
        answers = [self.parts[i][1] for i in chunk]
        length = max(len(a) for a in answers)
        answer_ids = torch.tensor([a + [self.pad_id] * (length - len(a)) for a in answers], device=self.device)
        answer_mask = torch.tensor([[1] * len(a) + [0] * (length - len(a)) for a in answers], device=self.device)
        starts = prompt_mask.sum(1)[rows]
        keep = answer_mask.bool()
        # Token t of an answer is predicted at answer position t - 1, token 0 by the prompt:
        # the head runs at every answer position but each row's last.
        inner = torch.cat([keep[:, 1:], torch.zeros_like(keep[:, :1])], dim=1)
        within = answer_logits_of(
            self.model,
            inner,
            lambda: continue_from(
                self.model,
                cache,
                answer_ids,
                torch.cat([prompt_mask[rows], answer_mask], dim=1),
                starts[:, None] + torch.arange(length, device=self.device)[None, :],
            ),
        )
        counts = keep.sum(1)
        # Example order (each answer's first token, predicted by its prompt, then the rest)
        # as rows of [last; within]; the logits stay where they are.
        order, offset = [], len(chunk)
        for r, n in enumerate(counts.tolist()):
            order.append(r)
            order.extend(range(offset, offset + n - 1))
            offset += n - 1
        return _score_positions(
            [last[rows], within],
            answer_ids[keep],
            counts,
            self.tokenizer.eos_token_id,
            [self.flags[i] for i in chunk],
            order=torch.tensor(order, dtype=torch.long),
            decode=_decoder(self.tokenizer),
        )

    def reproduces_plain_pass(self, chunk: list[int], scored: list[AnswerScore]) -> bool:
        """The first answers of the first batch scored both ways agree to float rounding."""
        picked = list(range(min(self.CHECKED_ANSWERS, len(chunk))))
        plain = _score_padded(
            self.model,
            self.tokenizer,
            [self.features[chunk[k]] for k in picked],
            [False] * len(picked),
            len(picked),
        )
        dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        tolerance = self.TOLERANCE.get(dtype, self.HALF_TOLERANCE)
        for k, reference in zip(picked, plain):
            shared = scored[k]
            if shared.num_tokens != reference.num_tokens:
                return False
            if not abs(shared.loss - reference.loss) <= tolerance * max(1.0, abs(reference.loss)):
                return False
        return True


def _score_positions(
    answer_logits, targets, counts, eos_id: int | None, statistics: Sequence[bool], order=None, decode=None
) -> list[AnswerScore]:
    """Split per-position statistics of the flattened answer positions back into examples
    (``statistics[e]``: example e gets its memorisation statistics); an example's last
    position is left out of those statistics when its target is ``eos_id``. ``decode``
    (token ids -> text) gives an example with statistics its ``answer_text``.

    ``targets`` are in example order (each example's positions contiguous). Without
    ``order``, ``answer_logits`` (positions, vocabulary) are too; with it, ``answer_logits``
    is a list of such tensors taken as one, and position p of the example order is row
    ``order[p]`` of them: the logits are never copied into example order, only the
    per-position numbers are.
    """
    import torch

    blocks = [answer_logits] if order is None else list(answer_logits)
    device = blocks[0].device
    # Which positions belong to an example that wants its statistics: only those pay for them.
    wanted = torch.repeat_interleave(
        torch.tensor(list(statistics), dtype=torch.bool), counts.cpu(), output_size=targets.shape[0]
    ).to(device)
    targets = targets.to(device)
    if order is not None:
        order = order.to(device)
        wanted = torch.empty_like(wanted).index_put_((order,), wanted)
        block_targets = torch.empty_like(targets).index_put_((order,), targets)
    else:
        block_targets = targets
    token_lp_parts, pp_parts, correct_parts = [], [], []
    offset = 0
    for block in blocks:
        step = max(16, CHUNK_BYTES // (4 * max(1, block.shape[-1])))
        for start in range(0, block.shape[0], step):
            logits = block[start : start + step].float()
            at = slice(offset + start, offset + start + logits.shape[0])
            target = block_targets[at]
            log_probs = torch.log_softmax(logits, dim=-1)
            token_lp = log_probs.gather(1, target[:, None]).squeeze(1)
            token_lp_parts.append(token_lp)
            pp = torch.full_like(token_lp, float("nan"))
            correct = torch.zeros_like(target, dtype=torch.bool)
            sub = wanted[at]
            if bool(sub.any()):
                sub_lp = log_probs[sub]
                probs = sub_lp.exp()
                mu = (probs * sub_lp).sum(-1)
                # Centred form: E[lp^2] - mu^2 cancels catastrophically when p is near uniform.
                variance = (probs * (sub_lp - mu[:, None]).square()).sum(-1)
                pp[sub] = (token_lp[sub] - mu) / variance.clamp_min(MIN_VARIANCE).sqrt()
                correct[sub] = logits[sub].argmax(-1) == target[sub]
            pp_parts.append(pp)
            correct_parts.append(correct)
        offset += block.shape[0]
    token_lp = torch.cat(token_lp_parts) if token_lp_parts else torch.zeros(0)
    pp = torch.cat(pp_parts) if pp_parts else torch.zeros(0)
    correct = torch.cat(correct_parts) if correct_parts else torch.zeros(0, dtype=torch.bool)
    if order is not None and token_lp.numel():
        token_lp, pp, correct = token_lp[order], pp[order], correct[order]

    token_lp_np = token_lp.cpu().numpy().astype(np.float32)
    pp_np = pp.cpu().numpy().astype(np.float32)
    correct_np = correct.cpu().numpy()
    targets_np = targets.cpu().numpy()
    scores: list[AnswerScore] = []
    offset = 0
    for n, stats in zip(counts.tolist(), statistics):
        if n == 0:
            scores.append(_empty_score())
            continue
        lp = token_lp_np[offset : offset + n]
        total = float(-lp.astype(np.float64).sum())
        # NaN logits predict nothing: no token is "the argmax", so no memorisation statistics.
        stats = stats and not math.isnan(total)
        # Memorisation statistics without the closing EOS (see the module docstring).
        kept = n - 1 if eos_id is not None and int(targets_np[offset + n - 1]) == eos_id else n
        ok = correct_np[offset : offset + kept]
        scores.append(
            AnswerScore(
                loss=total / n,
                num_tokens=n,
                token_accuracy=float(ok.mean()) if kept and stats else float("nan"),
                extraction_strength=extraction_strength(ok.tolist()) if stats else float("nan"),
                token_log_probs=lp[:kept],
                min_k_pp_scores=pp_np[offset : offset + kept],
                total_nll=total,
                extraction_strength_ou=extraction_strength(ok.tolist(), open_unlearning=True)
                if stats
                else float("nan"),
                answer_text=decode(targets_np[offset : offset + n].tolist()) if stats and decode else "",
            )
        )
        offset += n
    return scores
