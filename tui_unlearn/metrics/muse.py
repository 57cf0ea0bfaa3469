"""MUSE's generation-based memorisation tests: VerbMem and KnowMem, as its ``eval.py`` runs them.

- **VerbMem**: each record is the dataset's own (``prompt``, ``gt``) split of a forget
  text. The prompt is encoded with the tokenizer's special tokens, the model continues
  it greedily for ``VERBMEM_NEW_TOKENS`` tokens, and the continuation is compared with
  the ground truth cut to its first ``VERBMEM_NEW_TOKENS`` token ids (special tokens
  included, as MUSE encodes it, then decoded without them) by ROUGE-L F1 without
  stemming.
- **KnowMem**: few-shot question answering. The prompt is every in-context example as
  ``Question: q\\nAnswer: a\\n\\n`` then ``Question: q\\nAnswer: `` (raw text, no chat
  template); the model answers greedily for ``KNOWMEM_NEW_TOKENS`` tokens, the answer is
  cut at the first ``\\n\\n``, ``\\nQuestion`` or ``Question:``, and compared with the
  gold answer by ROUGE-L F1 without stemming.

Both become :class:`~tui_unlearn.metrics.registry.Example` rows (kinds "completion" and
"knowmem") whose metrics the catalog declares (``verbatim_rouge_l``, ``knowmem_rouge_l``,
x100 as MUSE reports them). Generation is batched (left-padded); MUSE generates one
prompt at a time, which gives the same greedy tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tui_unlearn.metrics.generation import PROMPT_CUT, fit_prompt, generate_from_ids, prompt_room
from tui_unlearn.metrics.registry import Example

VERBMEM_NEW_TOKENS = 128
KNOWMEM_NEW_TOKENS = 32
KNOWMEM_STOP = ("\n\n", "\nQuestion", "Question:")


def verbmem_gold(tokenizer, gt: str, n: int = VERBMEM_NEW_TOKENS) -> str:
    """The ground truth as MUSE compares it: its first ``n`` token ids (special tokens
    included), decoded without special tokens."""
    ids = list(tokenizer(gt, add_special_tokens=True)["input_ids"])[:n]
    return tokenizer.decode(ids, skip_special_tokens=True)


def knowmem_prompt(question: str, shots: Sequence[tuple[str, str]] = ()) -> str:
    """MUSE's few-shot prompt: the in-context examples, then the question."""
    head = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in shots)
    return head + f"Question: {question}\nAnswer: "


def cut_at_stop_words(text: str, words: Sequence[str] = KNOWMEM_STOP) -> str:
    """The text before the first of ``words`` (applied in order, as MUSE does)."""
    for word in words:
        text = text.split(word)[0]
    return text


def verbmem_examples(
    model,
    tokenizer,
    split: str,
    records: Sequence[Mapping[str, Any]],
    *,
    max_new_tokens: int = VERBMEM_NEW_TOKENS,
    batch_size: int = 16,
    max_length: int = 2048,
) -> list[Example]:
    """VerbMem examples of ``records`` (each with ``prompt`` and ``gt``)."""
    room = prompt_room(max_length, max_new_tokens)
    full = [list(tokenizer(r["prompt"], add_special_tokens=True)["input_ids"]) for r in records]
    prompts = [fit_prompt(ids, room) for ids in full]
    outputs = generate_from_ids(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens)
    return [
        Example(
            split=split,
            kind="completion",
            record=r,
            gold=verbmem_gold(tokenizer, r["gt"], max_new_tokens),
            main=None,
            generated=out,
            prompt=r["prompt"],
            extra={PROMPT_CUT: len(ids) > room},
        )
        for r, out, ids in zip(records, outputs, full)
    ]


def knowmem_examples(
    model,
    tokenizer,
    split: str,
    records: Sequence[Mapping[str, Any]],
    shots: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int = KNOWMEM_NEW_TOKENS,
    batch_size: int = 16,
    max_length: int = 2048,
) -> list[Example]:
    """KnowMem examples of ``records`` (each with ``question`` and ``answer``) asked after ``shots``."""
    room = prompt_room(max_length, max_new_tokens)
    full = [
        list(tokenizer(knowmem_prompt(r["question"], shots), add_special_tokens=True)["input_ids"]) for r in records
    ]
    prompts = [fit_prompt(ids, room) for ids in full]
    outputs = generate_from_ids(
        model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens, strip=False
    )
    return [
        Example(
            split=split,
            kind="knowmem",
            record=r,
            gold=r["answer"],
            main=None,
            generated=cut_at_stop_words(out).strip(),
            prompt=r["question"],
            extra={PROMPT_CUT: len(ids) > room},
        )
        for r, out, ids in zip(records, outputs, full)
    ]
