"""The one record schema every data source is loaded into.

A record is either a question/answer pair (``kind == "qa"``) or plain text
(``kind == "text"``: ``question`` is empty and ``answer`` holds the text, so the loss
covers all of it). ``paraphrased_answer``, ``paraphrased_question`` and
``perturbed_answers`` are optional (empty when a source has none); the truth-ratio
metrics need the answers, and TOFU ships a paraphrase of each question as well.
``group`` names what the record is about (an author in the bundled benchmark), empty
when unknown.

Records travel as plain dicts (lists of them); ``to_dataset`` builds a
``datasets.Dataset`` for callers that want one, importing ``datasets`` only then.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

COLUMNS = (
    "kind",
    "question",
    "answer",
    "paraphrased_answer",
    "paraphrased_question",
    "perturbed_answers",
    "group",
)


def make_record(
    question: str = "",
    answer: str = "",
    *,
    paraphrased_answer: str = "",
    paraphrased_question: str = "",
    perturbed_answers: Iterable[str] = (),
    group: str = "",
) -> dict[str, Any]:
    """A record in the schema; plain text when ``question`` is empty."""
    return {
        "kind": "qa" if question else "text",
        "question": question,
        "answer": answer,
        "paraphrased_answer": paraphrased_answer,
        "paraphrased_question": paraphrased_question,
        "perturbed_answers": list(perturbed_answers),
        "group": group,
    }


def to_dataset(records: list[dict[str, Any]]):
    """A ``datasets.Dataset`` with exactly the schema's columns, in order (a missing
    column of a record counts as empty)."""
    from datasets import Dataset, Features, Sequence, Value

    features = Features(
        {name: Sequence(Value("string")) if name == "perturbed_answers" else Value("string") for name in COLUMNS}
    )
    columns = {name: [r.get(name) or ([] if name == "perturbed_answers" else "") for r in records] for name in COLUMNS}
    return Dataset.from_dict(columns, features=features)
