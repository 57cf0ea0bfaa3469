"""World knowledge: does the model still state facts nobody asked it to forget?

A bundled probe (``data/knowledge_probe.jsonl``) holds short questions with a gold answer
and its aliases across several kinds of fact (capitals, authors, chemistry, geography,
units, animals, history, science, ...), none of them about a bundled forget set. Each
evaluation answers every question greedily in one batched pass with few new tokens; an
answer is right when it *states* the gold answer or an alias (``states``).

``knowledge`` is the share of the probe a model states. ``knowledge_kept`` is the share of
the facts the original model states that the model still states: the original's answers
are computed once per model and cached (``ProbeReference``), so the number is 1.0 for the
original itself and falls as unlearning damages knowledge it should have left alone.

The facts were chosen and checked so that SmolLM2-135M-Instruct (Q4_1) states most of them:
136 of the 168 (81 %), every kind at least 60 %; ``bench/knowledge_probe_check.py`` reruns
that check and times a probe pass against an evaluation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from tui_unlearn.metrics.text import answer_correct

KNOWLEDGE = "knowledge"  # its key beside the splits in an evaluation's aggregates
PROBE_FILE = "knowledge_probe.jsonl"
# A short fact fits in a sentence of a dozen tokens; the answer is graded on what came so far.
MAX_NEW_TOKENS = 16
_FIELDS = ("kind", "question", "answer", "aliases")
# SQuAD's normalisation deletes punctuation without a space, so "a 90-degree angle" would
# hold "90degree" and "0°C" "0°c": these characters separate words here instead.
_SEPARATORS = str.maketrans({ch: " " for ch in "-\u2010\u2011\u2012\u2013\u2014/\u00b0"})


def _item(data: Any, where: str) -> dict[str, Any]:
    """One probe item, checked: ``kind``, ``question``, ``answer`` non-empty strings and
    ``aliases`` a list of non-empty strings."""
    if not isinstance(data, dict) or set(data) != set(_FIELDS):
        raise ValueError(f"{where}: a probe item is an object with exactly {', '.join(_FIELDS)}")
    if not all(isinstance(data[k], str) and data[k].strip() for k in ("kind", "question", "answer")):
        raise ValueError(f"{where}: kind, question and answer must be non-empty strings")
    aliases = data["aliases"]
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ValueError(f"{where}: aliases must be a list of non-empty strings")
    return {"kind": data["kind"], "question": data["question"], "answer": data["answer"], "aliases": list(aliases)}


def load_probe(name: str = PROBE_FILE) -> list[dict[str, Any]]:
    """The bundled probe items, in file order: dicts with ``kind``, ``question``,
    ``answer`` and ``aliases`` (fresh on every call: callers may mutate them)."""
    text = resources.files("tui_unlearn.data").joinpath(name).read_text(encoding="utf-8")
    return [_item(json.loads(line), f"{name}:{n}") for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def probe_fingerprint(items: Sequence[dict[str, Any]]) -> str:
    """sha256 (hex) of the items' questions, answers and aliases: a cached reference made
    against another version of the probe does not match."""
    canonical = json.dumps([[it["question"], it["answer"], it["aliases"]] for it in items], sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def states(answer: str, gold: str, aliases: Iterable[str] = ()) -> bool:
    """Whether a generated ``answer`` states ``gold`` or one of its ``aliases``.

    SQuAD-normalised (lower case, no punctuation, no a/an/the, single spaces), the gold
    or an alias must occur in the answer as a run of whole words: "Paris" is stated by
    "The capital of France is Paris.", "Rome" is not by "Romeo". The same rule as
    ``accuracy`` (``text.answer_correct``), except that hyphens, dashes, slashes and the
    degree sign separate words first ("a 90-degree angle" states 90, "0°C" states 0);
    like it, it cannot see negation.
    """
    said = answer.translate(_SEPARATORS)
    return any(answer_correct(said, expected.translate(_SEPARATORS)) == 1.0 for expected in (gold, *aliases))


def answer_probe(
    model, tokenizer, items: Sequence[dict[str, Any]], *, batch_size: int, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[str]:
    """The model's greedy answer to each item's question, in item order (one batched pass,
    the prompt built as for every other generation: ``data.formatting``)."""
    from tui_unlearn.metrics.generation import generate_answers

    questions = [it["question"] for it in items]
    return generate_answers(model, tokenizer, questions, batch_size=batch_size, max_new_tokens=max_new_tokens)


def grade(items: Sequence[dict[str, Any]], answers: Sequence[str]) -> list[bool]:
    """Per item, whether its answer states the gold answer or an alias."""
    if len(items) != len(answers):
        raise ValueError(f"{len(answers)} answers for {len(items)} probe items")
    return [states(a, it["answer"], it["aliases"]) for it, a in zip(items, answers)]


def about_forget(items: Sequence[dict[str, Any]], forget: Sequence[dict[str, Any]]) -> list[bool]:
    """Per item, whether the forget set states its fact's answer (or an alias): forgetting
    "The capital of France is Paris." is asked for, so "What is the capital of France?"
    in the probe would count the requested forgetting as collateral damage. A record's
    answer (its text for plain-text records) is read with ``states``, less what its question
    already names: "France" in "The capital of France is Paris." only repeats the question,
    so the probe's "In which country is the Eiffel Tower?" stays. An item whose answer the
    forget set never states stays in the probe."""
    pairs = [(r.get("question") or "", r.get("answer") or r.get("text") or "") for r in forget]
    pairs = [(q, a) for q, a in pairs if a.strip()]
    return [
        any(states(a, it["answer"], it["aliases"]) and not states(q, it["answer"], it["aliases"]) for q, a in pairs)
        for it in items
    ]


def knowledge(stated: Sequence[bool]) -> float:
    """The share of the probe stated (0-1)."""
    if not stated:
        raise ValueError("knowledge of an empty probe")
    return sum(map(bool, stated)) / len(stated)


def knowledge_kept(original_stated: Sequence[bool], stated: Sequence[bool]) -> float | None:
    """The share of the facts the original states that are still stated (0-1); None when
    the original states none (nothing to keep)."""
    if len(original_stated) != len(stated):
        raise ValueError(f"{len(stated)} grades against the original's {len(original_stated)}")
    known = [bool(s) for o, s in zip(original_stated, stated) if o]
    return sum(known) / len(known) if known else None


def kind_shares(items: Sequence[dict[str, Any]], stated: Sequence[bool]) -> dict[str, float]:
    """The share stated of each kind of fact, kinds in order of first appearance."""
    counts: dict[str, list[int]] = {}
    for it, s in zip(items, stated, strict=True):
        right_total = counts.setdefault(it["kind"], [0, 0])
        right_total[0] += bool(s)
        right_total[1] += 1
    return {kind: right / total for kind, (right, total) in counts.items()}


@dataclass(frozen=True)
class ProbeReference:
    """The original model's answers to the probe and which of them state the fact: cached
    once per model, so every later evaluation needs only its own answers."""

    fingerprint: str  # probe_fingerprint of the items answered
    max_new_tokens: int
    answers: tuple[str, ...]
    stated: tuple[bool, ...]

    def matches(self, items: Sequence[dict[str, Any]], max_new_tokens: int = MAX_NEW_TOKENS) -> bool:
        """Whether this reference was made on ``items`` with ``max_new_tokens``."""
        return (
            self.fingerprint == probe_fingerprint(items)
            and self.max_new_tokens == max_new_tokens
            and len(self.stated) == len(items)
        )

    def without(self, items: Sequence[dict[str, Any]], drop: Sequence[bool]) -> ProbeReference:
        """This reference on ``items`` less the ones ``drop`` marks (it must match ``items``)."""
        keep = [i for i, d in enumerate(drop) if not d]
        return ProbeReference(
            probe_fingerprint([items[i] for i in keep]),
            self.max_new_tokens,
            tuple(self.answers[i] for i in keep),
            tuple(self.stated[i] for i in keep),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "max_new_tokens": self.max_new_tokens,
            "answers": list(self.answers),
            "stated": list(self.stated),
        }

    @classmethod
    def from_json(cls, data: Any) -> ProbeReference | None:
        """The reference stored by ``to_json``; None when ``data`` is not one."""
        if not isinstance(data, dict) or set(data) != {"fingerprint", "max_new_tokens", "answers", "stated"}:
            return None
        fingerprint, tokens, answers, stated = (
            data["fingerprint"],
            data["max_new_tokens"],
            data["answers"],
            data["stated"],
        )
        if not (isinstance(fingerprint, str) and len(fingerprint) == 64):
            return None
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens <= 0:
            return None
        if not (isinstance(answers, list) and isinstance(stated, list) and len(answers) == len(stated)):
            return None
        if not all(isinstance(a, str) for a in answers) or not all(isinstance(s, bool) for s in stated):
            return None
        return cls(fingerprint, tokens, tuple(answers), tuple(stated))


def build_reference(
    model, tokenizer, items: Sequence[dict[str, Any]], *, batch_size: int, max_new_tokens: int = MAX_NEW_TOKENS
) -> ProbeReference:
    """Answer the probe with ``model`` (the original) and grade its answers."""
    answers = answer_probe(model, tokenizer, items, batch_size=batch_size, max_new_tokens=max_new_tokens)
    return ProbeReference(probe_fingerprint(items), max_new_tokens, tuple(answers), tuple(grade(items, answers)))
