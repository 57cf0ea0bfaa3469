"""Turning records into token ids: prompt formatting and answer-only loss masks.

Training and generation share ``build_prompt`` so the model is always asked a question
the way it was taught: the chat template when the tokenizer has one, else the plain
``Question: ...\\nAnswer:`` format the bundled models are trained on; or, when a run
chose it (``use_run_format``), the format open-unlearning's model configs declare for
the model's family, encoded as its ``preprocess_chat_instance`` encodes it (``data.prompts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tui_unlearn.data.prompts import MODEL, OPEN_UNLEARNING, OWN, PromptFormat, choose_format

IGNORE_INDEX = -100  # label value that cross-entropy skips (prompt and padding)
PLAIN_PROMPT = "Question: {question}\nAnswer:"


FORMAT_ATTRIBUTE = "tui_unlearn_prompt_format"  # set on a tokenizer by ``use_prompt_format``


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_format_of(tokenizer) -> PromptFormat:
    """The prompt format ``use_prompt_format`` gave the tokenizer (default: the model's own)."""
    fmt = getattr(tokenizer, FORMAT_ATTRIBUTE, None)
    return fmt if isinstance(fmt, PromptFormat) else OWN


def use_prompt_format(tokenizer, fmt: PromptFormat) -> None:
    """Make every encoding of ``tokenizer`` use ``fmt`` (see ``data.prompts``); a sample
    question is rendered at once, so a template that refuses the format (Gemma's, a system
    turn) fails here in one line, not in the middle of a run."""
    from tui_unlearn.errors import ConfigError, first_line

    setattr(tokenizer, FORMAT_ATTRIBUTE, fmt)
    try:
        encode_example(tokenizer, "What is the capital of France?", "Paris.")
    except Exception as exc:  # jinja2's TemplateError family, or whatever the template raises
        setattr(tokenizer, FORMAT_ATTRIBUTE, OWN)
        raise ConfigError(
            f"the {fmt.name} prompt format fails on this model's chat template ({type(exc).__name__}: "
            f"{first_line(exc, 150)}); choose another --prompt-format or drop --system-prompt / --date-string"
        ) from None


def _templated(tokenizer, fmt: PromptFormat) -> bool:
    return fmt.chat_template and has_chat_template(tokenizer)


def build_prompt(tokenizer, question: str) -> str:
    """The text the model sees before its answer (no trailing space in the model format)."""
    fmt = prompt_format_of(tokenizer)
    if _templated(tokenizer, fmt):
        return tokenizer.apply_chat_template(
            fmt.messages(question), tokenize=False, add_generation_prompt=True, **fmt.template_kwargs()
        )
    if not fmt.chat_template:
        return fmt.tagged_prompt(question)
    return PLAIN_PROMPT.format(question=question)


def _adds_special_tokens(tokenizer, fmt: PromptFormat) -> bool:
    # A chat template writes BOS into its text; adding it again would double it. Hand-written
    # tags and the plain format are tokenized with the tokenizer's special tokens.
    return not _templated(tokenizer, fmt)


def prompt_ids(tokenizer, question: str) -> list[int]:
    """Token ids of the prompt, special tokens included, exactly as generation sees them."""
    fmt = prompt_format_of(tokenizer)
    prompt = build_prompt(tokenizer, question)
    return list(tokenizer(prompt, add_special_tokens=_adds_special_tokens(tokenizer, fmt))["input_ids"])


def _whole_ids(tokenizer, fmt: PromptFormat, question: str, answer: str) -> list[int]:
    """The conversation with its answer tokenized at once, EOS added when it does not end
    with EOS (open-unlearning's ``preprocess_chat_instance``)."""
    if _templated(tokenizer, fmt):
        text = tokenizer.apply_chat_template(
            fmt.messages(question, answer), tokenize=False, add_generation_prompt=False, **fmt.template_kwargs()
        )
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    else:
        ids = list(tokenizer(build_prompt(tokenizer, question) + answer, add_special_tokens=True)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids


def answer_ids(tokenizer, question: str, answer: str) -> list[int]:
    """Token ids of the answer as a continuation of the prompt, ending with EOS."""
    fmt = prompt_format_of(tokenizer)
    if fmt.whole and question:
        return _whole_ids(tokenizer, fmt, question, answer)[len(prompt_ids(tokenizer, question)) :]
    if has_chat_template(tokenizer) and fmt.chat_template and question:
        prompt = build_prompt(tokenizer, question)
        full = tokenizer.apply_chat_template(fmt.messages(question, answer), tokenize=False, **fmt.template_kwargs())
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
    question are scored). In open-unlearning's format the ids are the whole conversation
    tokenized at once and the labels start after as many tokens as the prompt has
    (``preprocess_chat_instance``): where the tokenizer merges the prompt's last token with
    the answer's first, the ids are the whole string's, as there.
    """
    fmt = prompt_format_of(tokenizer)
    if question and fmt.whole:
        p = prompt if prompt is not None else prompt_ids(tokenizer, question)
        ids = _whole_ids(tokenizer, fmt, question, answer)
        return {"input_ids": ids[:max_length], "labels": ([IGNORE_INDEX] * len(p) + ids[len(p) :])[:max_length]}
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
    prompt and (in the plain format) all answers tokenized in one batched call: what
    thousands of scored answers or training records would otherwise spend one call each on."""
    fmt = prompt_format_of(tokenizer)
    if has_chat_template(tokenizer) or fmt.whole or not fmt.chat_template:
        # The template (or the whole string) decides where the answer starts: pair by pair.
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


def use_run_format(
    config: Any, tokenizer: Any, model: Any, log: Callable[[str], None] | None = None, *, spec: str | None = None
) -> PromptFormat:
    """Choose the prompt format of a run (``config``: its ``prompt_format``, default the
    recipe's, ``system_prompt`` and ``date_string``) for the model ``spec`` (default
    ``config.model``) and give it to the tokenizer (``use_prompt_format``); the
    model only says its ``model_type``. The bundled models, of no family open-unlearning
    has a config for, are always asked as they were trained. Raises ConfigError (one
    line) for settings the model's format cannot take."""
    from tui_unlearn.models.bundled import is_bundled

    fmt = getattr(config, "prompt_format", None)
    if fmt is None:
        from tui_unlearn.recipes import get_recipe

        fmt = get_recipe(config.recipe).prompt_format
    if fmt == OPEN_UNLEARNING and is_bundled(spec or config.model):
        fmt = MODEL
        (log or (lambda _m: None))("prompt format: the bundled models are asked as they were trained (model)")
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    chosen = choose_format(
        tokenizer,
        model_type,
        fmt,
        system_prompt=getattr(config, "system_prompt", None),
        date_string=getattr(config, "date_string", None),
        log=log,
    )
    use_prompt_format(tokenizer, chosen)
    return chosen


def prompt_key(tokenizer: Any) -> dict[str, Any]:
    """What of the tokenizer's prompt format decides a cached evaluation's numbers."""
    return prompt_format_of(tokenizer).describe()
