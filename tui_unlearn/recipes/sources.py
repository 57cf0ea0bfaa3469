"""Reading a recipe's splits: question/answer files through the data layer, and the raw
rows of MUSE's completions, KnowMem questions and multiple-choice questions.

A source is a data-layer spec: a file (``.json``, ``.jsonl``, ``.parquet``, ``.csv``) or
``hf:owner/name:config@split``. Question/answer and plain-text splits go through
``data.loading.load_records`` (TOFU's layouts included); the other tasks need fields the
record schema does not have (``prompt``/``gt``, ``choices``), so their rows are read as
they are and checked here. Every failure is a ``DataError`` with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tui_unlearn.data.fields import data_error
from tui_unlearn.data.sources import SourceSpec
from tui_unlearn.errors import DataError

LETTERS = "ABCDEFGH"


def read_rows(spec: str) -> list[dict[str, Any]]:
    """The rows of ``spec`` as dicts, unchanged (strings become ``{"text": ...}``)."""
    spec = spec.strip()
    source = SourceSpec.parse(spec)
    if source.is_hub:
        rows = _hub_rows(source.rest)
    else:
        rows = _file_rows(Path(spec).expanduser(), spec)
    return [r if isinstance(r, dict) else {"text": r} for r in rows]


def _file_rows(path: Path, name: str) -> list[Any]:
    from tui_unlearn.data import files, parsers

    # The data layer's reader: a regular file only (a FIFO would block), within the size limit.
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        files.check_file(path, name, data_error)
        return parsers.parse_parquet(path, name)
    text = parsers.decode(files.read_regular(path, name, data_error), name)
    if suffix in (".jsonl", ".ndjson"):
        return parsers.parse_jsonl(text, name)[0]
    if suffix == ".csv":
        return parsers.parse_csv(text, name)[0]
    return parsers.parse_json(text, name)[0]


def _hub_rows(rest: str) -> list[Any]:
    """Rows of ``owner/name:config@split`` (split default ``train``), read as the data
    layer reads hub datasets: a quick reachability check first, one-line errors."""
    # The hub module's helpers keep the offline check and the error wording in one place.
    from tui_unlearn.data import hub

    name, _, split = rest.partition("@")
    name, _, config = name.partition(":")
    split = split or "train"
    if not hub.offline_mode() and not hub._proxy_configured():
        unreachable = hub.hub_unreachable()
        if unreachable is not None:
            raise hub._no_network(name, unreachable)
    import datasets

    try:
        with hub._progress_bars_off():
            dataset = datasets.load_dataset(name, config or None, split=split)
    except Exception as error:  # datasets raises many types; each becomes one line
        raise hub._hub_error(error, name, config or None, split, name) from error
    return dataset.to_list()


def _field(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    return next((lowered[n] for n in names if n in lowered), None)


def completion_records(spec: str) -> list[dict[str, Any]]:
    """MUSE VerbMem rows: ``prompt`` and ``gt`` (the text's continuation)."""
    out = []
    for i, row in enumerate(read_rows(spec)):
        prompt, gt = _field(row, ("prompt",)), _field(row, ("gt", "ground_truth", "continuation"))
        if not isinstance(prompt, str) or not isinstance(gt, str):
            raise data_error(f"record {i + 1} of {spec} needs 'prompt' and 'gt' texts (MUSE's verbmem layout)")
        out.append({"prompt": prompt, "gt": gt, "group": ""})
    return out


def knowmem_records(spec: str) -> list[dict[str, Any]]:
    """KnowMem rows: ``question`` and ``answer``."""
    out = []
    for i, row in enumerate(read_rows(spec)):
        question, answer = _field(row, ("question",)), _field(row, ("answer",))
        if not isinstance(question, str) or not isinstance(answer, str):
            raise data_error(f"record {i + 1} of {spec} needs 'question' and 'answer' texts (MUSE's knowmem layout)")
        out.append({"question": question, "answer": answer, "group": ""})
    return out


def choice_records(spec: str) -> list[dict[str, Any]]:
    """Multiple-choice rows as WMDP and MMLU publish them: ``question``, ``choices`` (a
    list) and ``answer`` (the right choice's index, or its letter); ``subject`` optional."""
    out = []
    for i, row in enumerate(read_rows(spec)):
        question, choices, answer = _field(row, ("question",)), _field(row, ("choices",)), _field(row, ("answer",))
        where = f"record {i + 1} of {spec}"
        if not isinstance(question, str) or not isinstance(choices, (list, tuple)) or len(choices) < 2:
            raise data_error(f"{where} needs 'question' and a list of 'choices' (WMDP's fields)")
        if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in LETTERS:
            answer = LETTERS.index(answer.strip().upper())
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise data_error(f"{where}: 'answer' must be the right choice's index (0..{len(choices) - 1}) or letter")
        subject = _field(row, ("subject",))
        out.append(
            {
                "question": question,
                "choices": [str(c) for c in choices],
                "answer_index": answer,
                "subject": subject if isinstance(subject, str) else "",
                "group": subject if isinstance(subject, str) else "",
            }
        )
    return out


def qa_records(spec: str, kind: str) -> list[dict[str, Any]]:
    """Records in the schema (``data.records``) of a question/answer or plain-text source."""
    from tui_unlearn.data.loading import load_records

    records, _ = load_records(spec)
    wrong = [r for r in records if r["kind"] != kind]
    if wrong:
        what = "question/answer records" if kind == "qa" else "plain texts"
        raise data_error(f"{spec} holds {len(wrong)} records that are not {what}")
    return records


def read_split(spec: str, task: str) -> list[dict[str, Any]]:
    """The records of one split of task ``task`` (see ``recipes.base``)."""
    from tui_unlearn.recipes.base import CHOICE, COMPLETION, KNOWMEM, QA

    if task == COMPLETION:
        return completion_records(spec)
    if task == KNOWMEM:
        return knowmem_records(spec)
    if task == CHOICE:
        return choice_records(spec)
    return qa_records(spec, "qa" if task == QA else "text")


__all__ = [
    "DataError",
    "read_rows",
    "read_split",
    "choice_records",
    "completion_records",
    "knowmem_records",
    "qa_records",
]
