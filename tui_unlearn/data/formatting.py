"""Turning records into token ids: prompt formatting and answer-only loss masks.

Training and generation share ``build_prompt`` so the model is always asked a question
the way it was taught: the chat template when the tokenizer has one, else the plain
``Question: ...\\nAnswer:`` format the bundled models are trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100  # label value that cross-entropy skips (prompt and padding)
PLAIN_PROMPT = "Question: {question}\nAnswer:"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def build_prompt(tokenizer, question: str) -> str:
    """The text the model sees before its answer (no trailing space)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_PROMPT.format(question=question)


def prompt_ids(tokenizer, question: str) -> list[int]:
    """Token ids of the prompt, special tokens included, exactly as generation sees them."""
    prompt = build_prompt(tokenizer, question)
    # A chat template already writes BOS into its text; adding it again would double it.
    add_special = not has_chat_template(tokenizer)
    return list(tokenizer(prompt, add_special_tokens=add_special)["input_ids"])


def answer_ids(tokenizer, question: str, answer: str) -> list[int]:
    """Token ids of the answer as a continuation of the prompt, ending with EOS."""
    if has_chat_template(tokenizer) and question:
        prompt = build_prompt(tokenizer, question)
        full = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            tokenize=False,
        )
        text = full[len(prompt) :] if full.startswith(prompt) else answer
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids[-2:]:
            ids.append(tokenizer.eos_token_id)
        return ids
    ids = list(tokenizer(" " + answer if question else answer, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


def encode_example(
    tokenizer, question: str, answer: str, max_length: int = 256, *, prompt: list[int] | None = None
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for one record; labels are IGNORE_INDEX on the prompt.

    Plain text (empty ``question``) is trained on in full: BOS then the text then EOS.
    Sequences longer than ``max_length`` lose answer tokens from the end. ``prompt``:
    the question's ``prompt_ids`` when the caller already has them (many answers to one
    question are scored).
    """
    if question:
        p = prompt if prompt is not None else prompt_ids(tokenizer, question)
    else:
        bos = tokenizer.bos_token_id
        p = [bos] if bos is not None else []
    a = answer_ids(tokenizer, question, answer)
    ids = (p + a)[:max_length]
    labels = ([IGNORE_INDEX] * len(p) + a)[:max_length]
    return {"input_ids": ids, "labels": labels}


def encode_examples(tokenizer, pairs: Sequence[tuple[str, str]], max_length: int = 256) -> list[dict[str, list[int]]]:
    """``encode_example`` of every (question, answer) pair, the same ids, with each distinct
    prompt and (without a chat template) all answers tokenized in one batched call: what
    thousands of scored answers or training records would otherwise spend one call each on."""
    if has_chat_template(tokenizer):  # the template decides where the answer starts: pair by pair
        prompts = {q: prompt_ids(tokenizer, q) for q in dict.fromkeys(q for q, _ in pairs) if q}
        return [encode_example(tokenizer, q, a, max_length, prompt=prompts.get(q)) for q, a in pairs]
    questions = [q for q in dict.fromkeys(q for q, _ in pairs) if q]
    prompt_rows = tokenizer([build_prompt(tokenizer, q) for q in questions])["input_ids"] if questions else []
    prompts = {q: list(ids) for q, ids in zip(questions, prompt_rows)}
    texts = [" " + a if q else a for q, a in pairs]
    answer_rows = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    out = []
    for (question, _), answer in zip(pairs, answer_rows):
        p = prompts[question] if question else bos
        a = list(answer) + eos
        out.append({"input_ids": (p + a)[:max_length], "labels": ([IGNORE_INDEX] * len(p) + a)[:max_length]})
    return out


def collate(features: list[dict[str, Any]], pad_id: int, padding_side: str = "right"):
    """Pad a list of encoded examples into ``input_ids``, ``attention_mask``, ``labels`` tensors."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    ids, mask, labels = [], [], []
    for f in features:
        n = len(f["input_ids"])
        pad = width - n
        if padding_side == "left":
            ids.append([pad_id] * pad + f["input_ids"])
            mask.append([0] * pad + [1] * n)
            labels.append([IGNORE_INDEX] * pad + f["labels"])
        else:
            ids.append(f["input_ids"] + [pad_id] * pad)
            mask.append([1] * n + [0] * pad)
            labels.append(f["labels"] + [IGNORE_INDEX] * pad)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }


def pad_token_id(tokenizer) -> int:
    """The pad id, falling back to EOS (many causal LMs ship without a pad token)."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    return 0
