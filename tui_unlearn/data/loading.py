"""Turning what a user gives as a forget, retain or holdout set into clean records.

The public entry to the data layer: ``load_split`` loads one role's source and cleans
it; the pieces live in single-purpose modules and are re-exported here:

- ``sources``: which reader a spec names (``-``, a file, ``bundled:``, ``hf:``/folder),
  ``load_records``, ``read_stdin_text``;
- ``parsers``: text, JSON (also several arrays in one file), JSON Lines, CSV/TSV,
  Parquet → rows; ``parse_text``;
- ``fields``: rows → records in the schema of ``records.py``;
- ``hub``: hub datasets and local dataset folders;
- ``cleaning``: normalising, dropping empty records and duplicates.

Everything a user can get wrong raises ``DataError`` with one line saying what and what
to do. Records are plain lists of dicts: ``datasets`` (and ``pyarrow``) are imported
only for hub datasets, folders and Parquet files, or by ``LoadedData.to_dataset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui_unlearn.data.cleaning import (
    CleaningReport,
    clean_records,
    remove_forget_from_holdout,
    remove_forget_from_retain,
)
from tui_unlearn.data.fields import check_characters, data_error
from tui_unlearn.data.parsers import parse_text
from tui_unlearn.data.records import to_dataset
from tui_unlearn.data.sources import FILE_FORMATS, STDIN_NAME, STDIN_SPEC, load_records, read_stdin_text
from tui_unlearn.errors import DataError

__all__ = [
    "LoadedData",
    "load_split",
    "load_source",
    "load_records",
    "parse_text",
    "read_stdin_text",
    "clean_records",
    "remove_forget_from_retain",
    "remove_forget_from_holdout",
    "CleaningReport",
    "ROLES",
    "FILE_FORMATS",
]

ROLES = ("forget", "retain", "holdout")


@dataclass
class LoadedData:
    """One cleaned split: its records (schema dicts), how it was read, what cleaning did."""

    records: list[dict[str, Any]]
    detected_format: str  # e.g. "jsonl (question/answer)", "txt (paragraphs)", "pasted json (...)"
    report: CleaningReport = field(default_factory=CleaningReport)
    source: str = ""
    role: str = ""

    def __len__(self) -> int:
        return len(self.records)

    def to_dataset(self):
        """The records as a ``datasets.Dataset`` in the schema (imports ``datasets``)."""
        return to_dataset(self.records)


def load_split(spec: str, role: str, *, stdin: str | None = None) -> LoadedData:
    """Load ``spec`` as the ``role`` set (forget, retain or holdout) and clean it.

    Raises ``DataError`` (prefixed with the role) when the source cannot be read, and when
    it holds no records before or after cleaning.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    try:
        records, detected = load_records(spec, stdin=stdin)
    except RecursionError:  # a nesting the parsers did not see coming; never a traceback
        raise data_error(f"{role} set: {spec} is nested too deeply to read; give a flat list of records") from None
    except DataError as error:
        raise data_error(f"{role} set: {error}") from error
    spec = (spec or "").strip()
    where = STDIN_NAME if spec == STDIN_SPEC else spec
    if not records:
        hint = "paste or pipe some text in" if spec == STDIN_SPEC else "add records to it or pick another source"
        raise data_error(f"the {role} set is empty: {where} holds no records; {hint}")
    for number, record in enumerate(records, 1):  # pasted text and other sources rows_to_records did not see
        check_characters(record, f"{role} set, record {number} of {where}")
    cleaned, report = clean_records(records)
    if report.kept == 0:
        raise data_error(
            f"the {role} set is empty after cleaning: all {report.loaded} records of {where} have an "
            "empty answer or text; fill them in or pick another source"
        )
    return LoadedData(cleaned, detected, report, source=spec, role=role)


def load_source(spec: str, *, stdin: str | None = None):
    """The records of ``spec`` as a ``datasets.Dataset`` in the record schema (not cleaned)."""
    return to_dataset(load_records(spec, stdin=stdin)[0])
