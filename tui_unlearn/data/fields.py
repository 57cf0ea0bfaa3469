"""Field mapping: parsed rows (dicts or strings) → records in the schema (``records.py``).

A row's keys are matched case-insensitively against the usual column names; earlier
names win when a row has several. Question/answer pairs come from ``QUESTION_FIELDS``
with ``ANSWER_FIELDS`` (alpaca's instruction + input become the question), plain text
from ``TEXT_FIELDS`` (or an answer column alone). TOFU's extras come along:
``paraphrased_answer``, ``paraphrased_question`` and the perturbed answers, whether
they sit under ``perturbed_answers`` or, as TOFU ships them, a list under the singular
``perturbed_answer``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tui_unlearn.data.records import make_record
from tui_unlearn.errors import DataError, json_kind

QUESTION_FIELDS = ("question", "prompt", "query", "instruction", "input", "q")
ANSWER_FIELDS = ("answer", "completion", "output", "response", "target", "a", "answers")
TEXT_FIELDS = ("text", "content", "document", "body")
PARAPHRASED_FIELDS = ("paraphrased_answer",)
PARAPHRASED_QUESTION_FIELDS = ("paraphrased_question",)
PERTURBED_FIELDS = ("perturbed_answers", "perturbed_answer")
GROUP_FIELDS = ("group", "author", "subject", "topic")

ACCEPTED = (
    f"a question column ({', '.join(QUESTION_FIELDS)}) with an answer column "
    f"({', '.join(ANSWER_FIELDS)}), or a text column ({', '.join(TEXT_FIELDS)})"
)


def data_error(message: str) -> DataError:
    """A DataError whose message is one line, whatever the names quoted in it hold."""
    return DataError(" ".join(message.split()))


# Half of a UTF-16 pair on its own: JSON's "\ud800" escape reads into one, and no UTF-8
# writer (a session file, a tokenizer) can encode it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def surrogate_problem(record: dict[str, Any]) -> str | None:
    """Which field of ``record`` holds a lone surrogate, and which (None when none does)."""
    for key, value in record.items():
        texts = value if isinstance(value, list) else [value]
        for text in texts:
            found = _LONE_SURROGATE.search(text) if isinstance(text, str) else None
            if found:
                return f"its {key.replace('_', ' ')} holds a lone surrogate (\\u{ord(found.group()):04x})"
    return None


def check_characters(record: dict[str, Any], where: str) -> None:
    """DataError when ``record`` (``where`` says which) holds text that is not characters."""
    problem = surrogate_problem(record)
    if problem:
        raise data_error(
            f"{where}: {problem}, half of a UTF-16 pair and not a character (a broken \\u escape?); "
            "fix or remove it there"
        )


@dataclass(frozen=True)
class Fields:
    """Which of a row's keys hold what; None (or empty) when the row has no such key."""

    question: str | None
    extra_input: str | None  # alpaca's "input", appended to the instruction
    answer: str | None
    text: str | None
    paraphrased: str | None
    paraphrased_question: str | None
    perturbed: tuple[str, ...]
    group: str | None

    def label(self) -> str:
        """How the rows were read, e.g. ``question/answer, paraphrased, perturbed``."""
        if self.question and self.answer:
            question = self.question.lower() + (f"+{self.extra_input.lower()}" if self.extra_input else "")
            label = f"{question}/{self.answer.lower()}"
        else:
            label = self.text.lower() if self.text else f"{(self.answer or '').lower()} as text"
        extras = (["paraphrased"] if self.paraphrased or self.paraphrased_question else []) + (
            ["perturbed"] if self.perturbed else []
        )
        return ", ".join([label, *extras])


def find_fields(keys: Iterable[Any], name: str) -> Fields | None:
    """The fields of a row with these keys; None when none is recognisable.

    Raises DataError for questions without any answer or text column.
    """
    by_name: dict[str, Any] = {}
    for key in keys:
        by_name.setdefault(str(key).strip().lower(), key)

    def first(names: tuple[str, ...]) -> Any:
        return next((by_name[n] for n in names if n in by_name), None)

    question, answer, text = first(QUESTION_FIELDS), first(ANSWER_FIELDS), first(TEXT_FIELDS)
    alpaca = question is not None and str(question).strip().lower() == "instruction"
    extra = by_name.get("input") if alpaca else None
    if question is not None and answer is None and text is None:
        raise data_error(
            f"{name} has questions ({question}) but no answers; add an answer column "
            f"({', '.join(ANSWER_FIELDS)}), or use a text column ({', '.join(TEXT_FIELDS)}) for plain text"
        )
    if answer is None and text is None:
        return None
    if question is None or answer is None:
        question = extra = None  # plain text: from the text column, else the answer alone
    return Fields(
        question,
        extra,
        answer,
        text if question is None else None,
        first(PARAPHRASED_FIELDS),
        first(PARAPHRASED_QUESTION_FIELDS) if question is not None else None,
        tuple(by_name[n] for n in PERTURBED_FIELDS if n in by_name),
        first(GROUP_FIELDS),
    )


def rows_to_records(
    rows: list[Any], name: str, unit: str, numbers: list[int] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Schema records from parsed rows (dicts or strings) and a label of the fields used.

    ``unit`` and ``numbers`` say how to point at a row in an error ("line 7", "record 3").
    Raises DataError for a row that is neither an object nor a string, or has no
    recognisable fields.
    """

    def where(i: int) -> str:
        return f"{unit} {numbers[i] if numbers else i + 1}"

    cache: dict[frozenset, Fields | None] = {}
    labels: Counter[str] = Counter()
    records = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            records.append(make_record("", row))
            check_characters(records[-1], f"{where(i)} of {name}")
            labels["strings as text"] += 1
            continue
        if not isinstance(row, dict):
            raise data_error(
                f"{where(i)} of {name} is {json_kind(row)}; each record must be an object ({ACCEPTED}) "
                "or a string of text"
            )
        keys = frozenset(map(str, row))
        if keys not in cache:
            cache[keys] = find_fields(row.keys(), name)
        fields = cache[keys]
        if fields is None:
            found = ", ".join(map(str, row)) or "none"
            subject = name if i == 0 else f"{where(i)} of {name}"
            raise data_error(f"{subject} has no recognisable fields (found: {found}); expected {ACCEPTED}")
        try:
            records.append(_record(row, fields))
        except RecursionError:
            raise data_error(
                f"{where(i)} of {name} holds values nested too deeply to read as text; flatten that record"
            ) from None
        check_characters(records[-1], f"{where(i)} of {name}")
        labels[fields.label()] += 1
    if not labels:
        return records, "no records"
    if len(labels) == 1:
        return records, next(iter(labels))
    return records, "mixed: " + "; ".join(label for label, _ in labels.most_common())


def _record(row: dict[str, Any], fields: Fields) -> dict[str, Any]:
    question = as_text(row.get(fields.question)) if fields.question is not None else ""
    extra = as_text(row.get(fields.extra_input)) if fields.extra_input is not None else ""
    if extra.strip():
        question = f"{question}\n\n{extra}" if question.strip() else extra
    body = fields.answer if fields.question is not None else (fields.text or fields.answer)
    perturbed: list[str] = []
    for key in fields.perturbed:
        value = row.get(key)
        perturbed += [as_text(v) for v in value] if isinstance(value, (list, tuple)) else [as_text(value)]
    return make_record(
        question,
        as_text(row.get(body)) if body is not None else "",
        paraphrased_answer=as_text(row.get(fields.paraphrased)) if fields.paraphrased else "",
        paraphrased_question=as_text(row.get(fields.paraphrased_question)) if fields.paraphrased_question else "",
        perturbed_answers=[p for p in perturbed if p],
        group=as_text(row.get(fields.group)) if fields.group else "",
    )


def as_text(value: Any) -> str:
    """A field's value as text: lists give their first non-empty item, {"text": ...} its text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return next((t for t in map(as_text, value) if t.strip()), "")
    if isinstance(value, dict):
        for key in ("text", "value", "content"):
            if key in value:
                return as_text(value[key])
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
