"""Cleaning loaded records and keeping forget records out of the retain and holdout sets.

Every text field is normalised the same way (``normalize_text``): Unicode NFC, line
breaks unified to ``\\n``, runs of spaces/tabs (and other non-newline whitespace)
collapsed to one space, each line stripped, at most one blank line in a row, and the
ends stripped. Line breaks are kept on purpose: plain-text paragraphs, poems, lists
and code-like answers lose meaning when flattened, and the verbatim-memorisation
metric compares against the text as the user gave it. Indentation is not kept.

A record is *empty* when its answer (the text, for plain-text records) is empty after
normalisation; a question without an answer cannot be trained on. Duplicates are
records whose normalised (question, answer) pair was already seen; the first one is
kept, with its paraphrased and perturbed answers.

Matching the retain or holdout set against the forget set is looser (``match_key``):
case-folded, NFKC, with all punctuation and whitespace removed, so "Paris." and
" paris" match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tui_unlearn.data.records import make_record
from tui_unlearn.errors import DataError

_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")  # any whitespace except the newline
_BLANK_RUN = re.compile(r"\n{3,}")
_NOT_WORD = re.compile(r"[\W_]+")  # punctuation, symbols and whitespace (Unicode-aware)
# Invisible characters that survive .strip() and make equal-looking texts differ.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


@dataclass
class CleaningReport:
    """What ``clean_records`` did, in record counts."""

    loaded: int = 0
    empty_dropped: int = 0
    duplicates_dropped: int = 0
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """One line for the UI and the CLI, e.g. ``12 loaded, 1 empty, 2 duplicates, 9 kept``."""
        return (
            f"{self.loaded} loaded, {self.empty_dropped} empty, {self.duplicates_dropped} duplicates, {self.kept} kept"
        )


def normalize_text(value: Any) -> str:
    """The cleaned form of one text field (see the module docstring); ``None`` is ``""``."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value)).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Line and paragraph separators from word processors count as line breaks.
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    lines = [_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def match_key(value: Any) -> str:
    """A loose key for matching texts: case-folded, with punctuation and whitespace removed."""
    text = unicodedata.normalize("NFKC", normalize_text(value)).casefold()
    return _NOT_WORD.sub("", text)


def _rows(records) -> list[dict[str, Any]]:
    """Records as a list of dicts, from a ``datasets.Dataset`` or any iterable of dicts."""
    to_list = getattr(records, "to_list", None)
    return to_list() if callable(to_list) else list(records)


def clean_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record with every text field normalised; ``kind`` follows the cleaned question."""
    perturbed = record.get("perturbed_answers") or []
    if isinstance(perturbed, str):
        perturbed = [perturbed]
    return make_record(
        normalize_text(record.get("question")),
        normalize_text(record.get("answer")),
        paraphrased_answer=normalize_text(record.get("paraphrased_answer")),
        paraphrased_question=normalize_text(record.get("paraphrased_question")),
        perturbed_answers=[p for p in map(normalize_text, perturbed) if p],
        group=normalize_text(record.get("group")).replace("\n", " "),
    )


def clean_records(records: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], CleaningReport]:
    """Normalise, drop empty records and exact duplicates.

    ``records`` is a list of schema dicts (or a ``datasets.Dataset``). Returns the cleaned
    records (schema dicts, original order) and a ``CleaningReport``.
    """
    rows = _rows(records)
    report = CleaningReport(loaded=len(rows))
    seen: set[tuple[str, str]] = set()
    kept: list[dict[str, Any]] = []
    for row in rows:
        record = clean_record(row)
        if not record["answer"]:
            report.empty_dropped += 1
            continue
        key = (record["question"], record["answer"])
        if key in seen:
            report.duplicates_dropped += 1
            continue
        seen.add(key)
        kept.append(record)
    report.kept = len(kept)
    return kept, report


def _pair_key(record: dict[str, Any]) -> tuple[str, ...]:
    question, answer = match_key(record.get("question")), match_key(record.get("answer"))
    if question or answer:
        return (question, answer)
    # All punctuation: the loose key would be empty and match every such record, so
    # such records only match exactly.
    return ("\0exact", normalize_text(record.get("question")), normalize_text(record.get("answer")))


def remove_overlap(records, forget) -> tuple[list[dict[str, Any]], int]:
    """``records`` without those also in ``forget``, and how many went.

    A record goes when its (question, answer) pair, or its text for plain-text records,
    equals a forget record's exactly or after ``match_key`` (case, punctuation and
    whitespace ignored). Both arguments are lists of schema dicts (or
    ``datasets.Dataset``); the result is a list of schema dicts in the original order.
    """
    rows = _rows(records)
    forget_keys = {_pair_key(r) for r in _rows(forget)}
    kept = [_as_record(r) for r in rows if _pair_key(r) not in forget_keys]
    return kept, len(rows) - len(kept)


def remove_forget_from_retain(retain, forget) -> tuple[list[dict[str, Any]], int]:
    """The retain set without records that are also in the forget set (``remove_overlap``),
    and how many went. Raises ``DataError`` when nothing would be left to retain."""
    kept, removed = remove_overlap(retain, forget)
    if removed and not kept:
        raise DataError(
            f"every record of the retain set ({removed}) is also in the forget set, so nothing "
            "would be retained; give a retain set of records the model should keep, or leave "
            "the retain set out with a method that does not need one"
        )
    return kept, removed


def remove_forget_from_holdout(holdout, forget) -> tuple[list[dict[str, Any]], int]:
    """The holdout set without records that are also in the forget set (``remove_overlap``),
    and how many went: a holdout record the model was trained to forget is no "never
    seen" baseline, and membership-inference figures over it mean nothing. Raises
    ``DataError`` when nothing would be left."""
    kept, removed = remove_overlap(holdout, forget)
    if removed and not kept:
        raise DataError(
            f"every record of the holdout set ({removed}) is also in the forget set, so there is no "
            "never-seen baseline; give a holdout set of records the model was never trained on, "
            "or leave the holdout set out"
        )
    return kept, removed


def _as_record(row: dict[str, Any]) -> dict[str, Any]:
    """A schema record from a row that may lack some columns (lists given by callers)."""
    return make_record(
        row.get("question") or "",
        row.get("answer") or "",
        paraphrased_answer=row.get("paraphrased_answer") or "",
        paraphrased_question=row.get("paraphrased_question") or "",
        perturbed_answers=row.get("perturbed_answers") or (),
        group=row.get("group") or "",
    )
