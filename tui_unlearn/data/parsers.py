"""Parsers: bytes or text in one format → rows (dicts or strings) or, for plain text, records.

- ``decode``: bytes → text (UTF-8, with or without BOM, or UTF-16 with a BOM).
- ``parse_text``: ``Q:``/``A:`` (or ``Question:``/``Answer:``) line pairs when the text
  has them, else paragraphs split on blank lines, else one record a line.
- ``parse_json``: one JSON document (a list of records, an object holding that list
  under ``data``/``records``/``train``…, one record, or columns of equal length), or
  several concatenated ones: JSON Lines, and TOFU's files that hold one array a line.
- ``parse_jsonl``, ``parse_csv`` (also TSV), ``parse_parquet``.
- ``looks_like_json``: whether pasted text that fails to parse was meant as JSON.

Each raises ``DataError`` with one line naming where (line, column) and what to do.
Only ``parse_parquet`` imports pyarrow.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

from tui_unlearn.data.fields import data_error, find_fields
from tui_unlearn.data.records import make_record
from tui_unlearn.errors import first_line, json_kind

JSON_LIST_KEYS = ("data", "records", "train", "examples", "rows", "items", "instances")

_Q_LINE = re.compile(r"^\s*(?:q|question)\s*[:：]\s?(.*)$", re.IGNORECASE)
_A_LINE = re.compile(r"^\s*(?:a|answer)\s*[:：]\s?(.*)$", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
# Pasted text meant as JSON: an object with a key, or a list of objects, lists or
# strings. "[Chapter 1] ..." or "[1] Smith et al." stay plain text.
_JSON_START = re.compile(r"""\A(?:\{\s*(?:["'}]|\Z)|\[\s*(?:[\[{"'\]]|\Z))""")
_WHITESPACE = re.compile(r"\s*")


# --- bytes --------------------------------------------------------------------------------------
def decode(data: bytes, name: str) -> str:
    """``data`` as text: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8
    (a UTF-8 BOM is dropped). Raises DataError for anything else, and for NUL bytes,
    which no text file holds (binary data, or UTF-16 saved without a BOM)."""
    text = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if text is None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            raise data_error(
                f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
                "re-save it as UTF-8 (Save As, encoding UTF-8) and load it again"
            ) from error
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise data_error(
            f"{name} is not text (a NUL byte on line {line}: binary data, or UTF-16 without a byte-order mark); "
            "re-save it as UTF-8 text and load it again"
        )
    return text


# --- plain text ---------------------------------------------------------------------------------
def parse_text(text: str, source: str = "the text") -> tuple[list[dict[str, Any]], str]:
    """Records from plain text and which layout was found ("Q:/A: pairs", "paragraphs", "lines").

    Raises DataError for a broken Q:/A: layout, including ``Q:`` lines with no ``A:`` line
    after them (the answers are missing, not meant as plain text).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first_q = next((i for i, line in enumerate(lines) if _Q_LINE.match(line)), None)
    if first_q is not None:
        if not any(_A_LINE.match(line) for line in lines[first_q + 1 :]):
            raise data_error(
                f"{source} has 'Q:' lines (the first on line {first_q + 1}) but no 'A:' line; put each "
                "question's answer on an 'A:' line after it, or remove the 'Q:' prefixes to load it as plain text"
            )
        return _parse_qa_lines(lines, source), "Q:/A: pairs"
    below = _json_below_text(lines)
    if below is not None:
        raise data_error(
            f"{source} has JSON from line {below + 1} under plain text; it would load as lines of text "
            "(a record that is just '[' or '{'): paste the JSON alone, or the plain text alone"
        )
    if _BLANK_LINES.search(text.strip()):
        chunks, layout = _BLANK_LINES.split(text), "paragraphs"
    else:
        chunks, layout = lines, "lines"
    return [make_record("", chunk.strip()) for chunk in chunks if chunk.strip()], layout


def _json_below_text(lines: list[str]) -> int | None:
    """The index of the first line from which the rest is JSON (one value, or one value a
    line) when plain text comes before it; None when there is no such line."""
    import json

    seen_text = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if seen_text and stripped[0] in "[{":
            rest = "\n".join(lines[i:])
            try:
                json.loads(rest)
                return i
            except ValueError:
                pass
            values = [part.strip() for part in lines[i:] if part.strip()]
            try:
                if all(isinstance(json.loads(v), (dict, list)) for v in values):
                    return i
            except ValueError:
                pass
        seen_text = True
    return None


def _parse_qa_lines(lines: list[str], source: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    question: list[str] = []
    answer: list[str] = []
    state, q_line = None, 0  # state: None before the first Q:, then "q" or "a"
    for number, line in enumerate(lines, 1):
        q_match, a_match = _Q_LINE.match(line), _A_LINE.match(line)
        if q_match:
            if state == "q":
                raise _no_answer(q_line, source)
            if state == "a":
                records.append(make_record("\n".join(question).strip(), "\n".join(answer).strip()))
            question, state, q_line = [q_match.group(1)], "q", number
        elif a_match:
            if state is None:
                raise data_error(
                    f"line {number} of {source}: an answer with no question before it; put a 'Q:' line before it"
                )
            if state == "a":
                raise data_error(
                    f"line {number} of {source}: a second answer to the question on line {q_line}; "
                    "give each question one 'A:' line"
                )
            answer, state = [a_match.group(1)], "a"
        elif state == "q":
            question.append(line)
        elif state == "a":
            answer.append(line)
        elif line.strip():
            raise data_error(
                f"line {number} of {source} is outside a Q:/A: pair; start each record with a 'Q:' line, "
                "or remove the Q:/A: lines to load the text as paragraphs"
            )
    if state == "q":
        raise _no_answer(q_line, source)
    if state == "a":
        records.append(make_record("\n".join(question).strip(), "\n".join(answer).strip()))
    return records


def _no_answer(line: int, source: str):
    return data_error(f"line {line} of {source}: a question without an answer; put its answer on an 'A:' line after it")


# --- JSON ---------------------------------------------------------------------------------------
def looks_like_json(text: str) -> bool:
    """Whether text starts the way a JSON list of records or a JSON object does."""
    return bool(_JSON_START.match(text.lstrip().lstrip("\ufeff").lstrip()))


def parse_json(text: str, name: str) -> tuple[list[Any], str, str, list[int] | None]:
    """Rows of a JSON text: ``(rows, format, unit, numbers)``.

    ``format`` is "json" for one document, "json, N arrays" for several arrays in a row
    (TOFU's retain and full files), "jsonl" for objects one after another (JSON Lines).
    ``unit``/``numbers`` point at a row in a later error: records are counted from 1
    ("record 3"), JSON Lines rows by the line they start on ("line 7").
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise _json_error(error, name) from None
        return _concatenated(text, name)
    except RecursionError:
        raise _too_deep(name) from None
    except ValueError as error:  # e.g. an integer over Python's digit limit
        raise data_error(f"{name} is not valid JSON: {first_line(error)}") from None
    return json_rows(obj, name), "json", "record", None


def _skip_space(text: str, position: int) -> int:
    """The first position at or after ``position`` that is not whitespace (``len(text)`` if none)."""
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position  # \s* matches everywhere; the else is for mypy


def _concatenated(text: str, name: str) -> tuple[list[Any], str, str, list[int] | None]:
    """Several JSON values one after another, split by whitespace (JSON Lines included)."""
    decoder = json.JSONDecoder()
    values: list[tuple[Any, int]] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise _json_error(error, name) from None
        except RecursionError:
            raise _too_deep(name) from None
        except ValueError as error:
            raise data_error(f"{name} is not valid JSON: {first_line(error)}") from None
        values.append((value, text.count("\n", 0, position) + 1))
        position = _skip_space(text, end)
    arrays = sum(isinstance(value, list) for value, _ in values)
    if arrays == 0:
        return [value for value, _ in values], "jsonl", "line", [line for _, line in values]
    rows: list[Any] = []
    for value, _ in values:
        rows.extend(value if isinstance(value, list) else [value])
    return rows, f"json, {len(values)} arrays" if arrays == len(values) else "json", "record", None


def _json_error(error: json.JSONDecodeError, name: str):
    return data_error(
        f"{name} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}); "
        "fix it there, or give the records as JSON Lines, one object per line"
    )


def _too_deep(name: str):
    return data_error(
        f"{name} is nested too deeply to read (hundreds of levels of [ and {{); give a flat list of records"
    )


def json_rows(obj: Any, name: str) -> list[Any]:
    """The list of records a parsed JSON document holds."""
    if isinstance(obj, list):
        return obj
    if not isinstance(obj, dict):
        raise data_error(
            f"{name} holds {json_kind(obj)}; expected a list of records, or an object holding one under 'data'"
        )
    lowered = {str(k).strip().lower(): k for k in obj}
    for key in JSON_LIST_KEYS:
        if key in lowered and isinstance(obj[lowered[key]], list):
            return obj[lowered[key]]
    fields = find_fields(obj.keys(), name)
    values = list(obj.values())
    if fields is not None and values and all(isinstance(v, list) for v in values):
        lengths = {str(k): len(v) for k, v in obj.items()}
        if len(set(lengths.values())) > 1:  # zip would drop the rows of the longer columns
            shown = ", ".join(f"{k} {n}" for k, n in list(lengths.items())[:6])
            raise data_error(
                f"{name} holds columns of different lengths ({shown}); give every column one value per "
                "record, or write the records as a list of objects"
            )
        # Columns of equal length, as Dataset.to_dict() writes them.
        return [dict(zip(obj.keys(), row)) for row in zip(*values)]
    if fields is not None:
        return [obj]  # a single record
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, (dict, str)) for x in v)]
    if len(lists) == 1:
        return obj[lists[0]]
    keys = ", ".join(map(str, list(obj)[:10])) or "none"
    raise data_error(
        f"{name} holds a JSON object with keys {keys} and no list of records; put the records in a list, "
        f"or under one of: {', '.join(JSON_LIST_KEYS[:3])}"
    )


def parse_jsonl(text: str, name: str) -> tuple[list[Any], list[int]]:
    """One JSON value a line (blank lines skipped) and the line number of each."""
    rows, numbers = [], []
    # JSON Lines ends a line at \n only: str.splitlines() also splits on U+2028, NEL (U+0085)
    # and others, which JSON allows unescaped inside a string.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise data_error(
                f"line {number} of {name} is not valid JSON: {error.msg} (column {error.colno}); "
                "each line must be one complete JSON object"
            ) from None
        except RecursionError:
            raise _too_deep(name) from None
        except ValueError as error:
            raise data_error(f"line {number} of {name} is not valid JSON: {first_line(error)}") from None
        numbers.append(number)
    return rows, numbers


# --- CSV and Parquet ----------------------------------------------------------------------------
def parse_csv(text: str, name: str, delimiter: str = ",") -> tuple[list[dict[str, str]], list[int]]:
    """Rows keyed by the header line, and the line each ends on; blank rows skipped."""
    # Long documents in one cell exceed the default 128 KiB field limit; raising it is harmless.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, numbers = [], []
    try:
        header = [h.strip() for h in next(reader, [])]
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header):
                raise data_error(
                    f"line {reader.line_num} of {name} has {len(values)} fields but the header has "
                    f"{len(header)}; put values that contain '{delimiter}' in double quotes"
                )
            rows.append(dict(zip(header, values + [""] * (len(header) - len(values)))))
            numbers.append(reader.line_num)
    except csv.Error as error:
        raise data_error(
            f"{name} is not valid CSV at line {reader.line_num}: {first_line(error)}; check the quoting there "
            '(a value with quotes inside is written "say ""hi""")'
        ) from None
    return rows, numbers


def parse_parquet(path: Path, name: str) -> list[dict[str, Any]]:
    """The rows of a Parquet file (imports pyarrow)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise data_error(
            f"can't read {name} as Parquet: {first_line(error)}; re-export it, or save it as .jsonl"
        ) from error
