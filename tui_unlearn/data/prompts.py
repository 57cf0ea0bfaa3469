"""Prompt formats: how a question (and its answer) become the text a model is asked with.

Two formats, chosen by the recipe (``--prompt-format`` overrides it):

- ``model``: the model's own chat template with the user's question as the only turn
  (plus a system prompt or a date string when given), or the plain
  ``Question: ...\\nAnswer:`` format of a model without a template. What a user's own
  data gets, and the bundled models are trained on.
- ``open-unlearning``: the settings open-unlearning's model configs declare for the
  model's family (``configs/model/*.yaml``, ``template_args``: ``apply_chat_template``,
  ``system_prompt``, ``date_string``, or the hand-written ``user_start_tag`` ...
  formats), encoded as its ``src/data/utils.py:preprocess_chat_instance`` encodes them:
  the whole conversation tokenized at once, the labels starting after the prompt's
  tokens, EOS added when the last token is not EOS. What TOFU and MUSE numbers in the
  field are computed with; the tofu and muse recipes use it.

A family is recognised by the chat template's text (its marker tokens) and, where
several families share a template layout, the model's ``model_type``. A model of no
family open-unlearning has a config for keeps its own template (said in the log); a
model without a chat template gets open-unlearning's base-model format
(``Question: q\\nAnswer: a``, its Llama-2-7b-hf and phi-1_5 configs).

The chosen format travels with the tokenizer (``formatting.use_prompt_format``; a run's is
chosen by ``formatting.use_run_format``): every path that turns a record into ids
(training, scoring, generation, the relearning check, the probes) already receives the
tokenizer, so none of them can use another format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from tui_unlearn.errors import ConfigError

MODEL, OPEN_UNLEARNING = "model", "open-unlearning"
FORMATS = (MODEL, OPEN_UNLEARNING)
# The open-unlearning commit whose configs the table below copies.
OPEN_UNLEARNING_COMMIT = "locuslab/open-unlearning@d3d7cf9 (2025-12-23)"
HELPFUL = "You are a helpful assistant."
OU_DATE = "10 Apr 2025"  # open-unlearning's date_string for Llama-3.x and zephyr


@dataclass(frozen=True)
class PromptFormat:
    """One prompt format.

    ``chat_template``: the tokenizer's template renders the conversation (a system turn
    with ``system_prompt`` when set, the user turn, for an answer the assistant turn; the
    template gets ``date_string`` when set); else the hand-written tags:
    ``system_tags + user_start + question + user_end + assistant_start`` then the answer.
    ``whole``: ids as open-unlearning builds them (the whole conversation tokenized at
    once, labels after the prompt's tokens); else the prompt and the answer's text are
    tokenized apart (the ``model`` format, as the bundled models were trained).
    """

    name: str
    chat_template: bool = True
    system_prompt: str | None = None
    system_tags: str = ""
    user_start: str = ""
    user_end: str = ""
    assistant_start: str = ""
    date_string: str | None = None
    whole: bool = False
    source: str = ""  # where the settings come from

    def messages(self, question: str, answer: str | None = None) -> list[dict[str, str]]:
        chat = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        chat.append({"role": "user", "content": question})
        if answer is not None:
            chat.append({"role": "assistant", "content": answer})
        return chat

    def template_kwargs(self) -> dict[str, Any]:
        return {"date_string": self.date_string} if self.date_string is not None else {}

    def tagged_prompt(self, question: str) -> str:
        return self.system_tags + self.user_start + question + self.user_end + self.assistant_start

    def describe(self) -> dict[str, Any]:
        """The settings as the summary records them."""
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}


# The model format: the model's own template, user turn only.
OWN = PromptFormat(MODEL, source="the model's own chat template (or Question/Answer without one)")


def _ou_chat(name: str, configs: str, *, system: bool = True, date: bool = False) -> PromptFormat:
    return PromptFormat(
        name,
        system_prompt=HELPFUL if system else None,
        date_string=OU_DATE if date else None,
        whole=True,
        source=f"open-unlearning configs/model/{configs}",
    )


@dataclass(frozen=True)
class Family:
    """A model family open-unlearning has a config for: how to recognise it, and its format."""

    format: PromptFormat
    markers: tuple[str, ...]  # all in the chat template's text
    model_types: tuple[str, ...] = ()  # one of them, when given

    def matches(self, template: str, model_type: str) -> bool:
        if not all(m in template for m in self.markers):
            return False
        return not self.model_types or model_type in self.model_types


FAMILIES: tuple[Family, ...] = (
    Family(
        PromptFormat(
            "llama-2-chat",
            chat_template=False,
            user_start="[INST] ",
            user_end=" [/INST]",
            assistant_start="",  # open-unlearning: a space here "leads to very bad tokenization at the border"
            whole=True,
            source="open-unlearning configs/model/Llama-2-7b-chat-hf.yaml",
        ),
        ("[INST]", "<<SYS>>"),
    ),
    Family(
        _ou_chat("llama-3-instruct", "Llama-3.1-8B-Instruct.yaml, Llama-3.2-{1B,3B}-Instruct.yaml", date=True),
        ("<|start_header_id|>", "<|eot_id|>"),
    ),
    Family(_ou_chat("qwen2.5-instruct", "Qwen2.5-{1.5B,3B,7B}-Instruct.yaml"), ("<|im_start|>",), ("qwen2",)),
    Family(_ou_chat("phi-3.5-instruct", "Phi-3.5-mini-instruct.yaml"), ("<|user|>", "<|end|>"), ("phi3",)),
    Family(_ou_chat("zephyr", "zephyr-7b-beta.yaml", date=True), ("<|user|>",), ("mistral",)),
    Family(_ou_chat("gemma-it", "gemma-7b-it.yaml", system=False), ("<start_of_turn>",), ("gemma",)),
)
# open-unlearning's base-model configs (Llama-2-7b-hf, Llama-2-13b-hf, phi-1_5): no chat template.
BASE = PromptFormat(
    "question-answer",
    chat_template=False,
    user_start="Question: ",
    user_end="\n",
    assistant_start="Answer: ",
    whole=True,
    source="open-unlearning configs/model/Llama-2-7b-hf.yaml, phi-1_5.yaml",
)


def family_format(tokenizer: Any, model_type: str | None) -> PromptFormat | None:
    """Open-unlearning's format for the model's family: ``BASE`` without a chat template,
    None for a template of no family it has a config for."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return BASE
    text = template if isinstance(template, str) else " ".join(str(t) for t in dict(template).values())
    return next((f.format for f in FAMILIES if f.matches(text, model_type or "")), None)


def choose_format(
    tokenizer: Any,
    model_type: str | None,
    fmt: str,
    *,
    system_prompt: str | None = None,
    date_string: str | None = None,
    log: Callable[[str], None] | None = None,
) -> PromptFormat:
    """The prompt format of a run: ``fmt`` (``model`` or ``open-unlearning``) for this model,
    with the user's ``system_prompt`` and ``date_string`` when given (None: the format's;
    ``""``: none). ``log`` hears what a person should know (a fallback, a date that moves).

    Raises ConfigError for a system prompt or date string the format has no place for.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"prompt format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    say = log or (lambda _message: None)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    chosen = OWN
    if fmt == OPEN_UNLEARNING:
        found = family_format(tokenizer, model_type)
        if found is None:
            say(
                f"prompt format: open-unlearning has no model config for this chat template "
                f"(model_type {model_type or 'unknown'}); using the model's own template"
            )
        else:
            chosen = found
    changes: dict[str, Any] = {}
    if system_prompt is not None:
        changes["system_prompt"] = system_prompt or None
    if date_string is not None:
        changes["date_string"] = date_string or None
    uses_template = chosen.chat_template and has_template
    if not uses_template:
        given = [flag for flag, value in (("--system-prompt", system_prompt), ("--date-string", date_string)) if value]
        if given:
            where = f"the {chosen.name} format" if chosen.name != MODEL else "a model without a chat template"
            raise ConfigError(
                f"{' and '.join(given)}: {where} has no place for it (hand-written tags, no chat template); "
                "leave it out" + (" or use --prompt-format model" if chosen.name != MODEL else "")
            )
    chosen = replace(chosen, **changes)
    template = str(getattr(tokenizer, "chat_template", "") or "")
    if uses_template and chosen.date_string is None and "strftime_now" in template:
        say(
            "prompt format: the chat template writes today's date into every prompt, so numbers change with the "
            "calendar; pass --date-string (open-unlearning uses '10 Apr 2025') to fix it"
        )
    return chosen
