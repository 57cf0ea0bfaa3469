"""The one record schema every data source is loaded into.

A record is either a question/answer pair (``kind == "qa"``) or plain text
(``kind == "text"``: ``question`` is empty and ``answer`` holds the text, so the loss
covers all of it). ``paraphrased_answer`` and ``perturbed_answers`` are optional
(empty when a source has none); the truth-ratio metrics need them. ``group`` names
what the record is about (an author in the bundled benchmark), empty when unknown.
"""

from __future__ import annotations

from typing import Any, Iterable

COLUMNS = ("kind", "question", "answer", "paraphrased_answer", "perturbed_answers", "group")


def make_record(
    question: str = "",
    answer: str = "",
    *,
    paraphrased_answer: str = "",
    perturbed_answers: Iterable[str] = (),
    group: str = "",
) -> dict[str, Any]:
    """A record in the schema; plain text when ``question`` is empty."""
    return {
        "kind": "qa" if question else "text",
        "question": question,
        "answer": answer,
        "paraphrased_answer": paraphrased_answer,
        "perturbed_answers": list(perturbed_answers),
        "group": group,
    }


def to_dataset(records: list[dict[str, Any]]):
    """A ``datasets.Dataset`` with exactly the schema's columns, in order."""
    from datasets import Dataset, Features, Sequence, Value

    features = Features(
        {
            "kind": Value("string"),
            "question": Value("string"),
            "answer": Value("string"),
            "paraphrased_answer": Value("string"),
            "perturbed_answers": Sequence(Value("string")),
            "group": Value("string"),
        }
    )
    columns = {name: [r[name] for r in records] for name in COLUMNS}
    return Dataset.from_dict(columns, features=features)
