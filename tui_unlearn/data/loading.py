"""Turning what a user gives as a forget, retain or holdout set into records.

A source is a spec string:

- ``-``: standard input (pasted text). JSON or JSON Lines is recognised by its first
  character; anything else is read as text (below).
- a file path; the extension decides the format: ``.txt``/``.md`` (text), ``.json``
  (a list of records, an object holding that list under ``data``/``records``/``train``…,
  one record, or columns of equal length), ``.jsonl``/``.ndjson``, ``.csv``/``.tsv``,
  ``.parquet``.
- ``bundled:<split>``: the bundled fictitious-authors benchmark.
- ``hf:owner/name[:config][@split]`` (split defaults to ``train``): a dataset loaded with
  ``datasets.load_dataset``, which honours ``HF_HUB_OFFLINE``. The prefix may be left
  out when the spec is not an existing path and reads as ``owner/name``. A local folder
  of data files (``hf:./folder`` or just ``./folder``) loads the same way.

Records are question/answer pairs under the usual column names (``QUESTION_FIELDS``,
``ANSWER_FIELDS``; alpaca's instruction + input become the question), optionally with
TOFU's ``paraphrased_answer`` and ``perturbed_answer(s)``, or plain text
(``TEXT_FIELDS``). Text is read as ``Q:``/``A:`` (or ``Question:``/``Answer:``) line
pairs when it has them, else as paragraphs split on blank lines, else one record a line.

Everything a user can get wrong raises ``DataError`` with one line saying what and what
to do. ``datasets`` and ``pyarrow`` are imported inside functions, so importing this
module stays cheap for the TUI.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tui_unlearn.data.cleaning import CleaningReport, clean_records, remove_forget_from_retain
from tui_unlearn.data.records import make_record, to_dataset
from tui_unlearn.errors import DataError, UnlearnError

__all__ = [
    "LoadedData", "load_split", "load_source", "load_records", "parse_text",
    "clean_records", "remove_forget_from_retain", "CleaningReport", "ROLES", "FILE_FORMATS",
]

ROLES = ("forget", "retain", "holdout")
FILE_FORMATS = {
    ".txt": "txt", ".md": "txt", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
}
# Earlier names win when a record has several; matched case-insensitively.
QUESTION_FIELDS = ("question", "prompt", "query", "instruction", "input", "q")
ANSWER_FIELDS = ("answer", "completion", "output", "response", "target", "a", "answers")
TEXT_FIELDS = ("text", "content", "document", "body")
PARAPHRASED_FIELDS = ("paraphrased_answer",)
PERTURBED_FIELDS = ("perturbed_answers", "perturbed_answer")
GROUP_FIELDS = ("group", "author", "subject", "topic")
JSON_LIST_KEYS = ("data", "records", "train", "examples", "rows", "items", "instances")

_SOURCES_HINT = (
    "a .txt/.json/.jsonl/.csv/.parquet file, '-' for standard input, bundled:<split> or hf:owner/name"
)
_ACCEPTED = (
    f"a question column ({', '.join(QUESTION_FIELDS)}) with an answer column "
    f"({', '.join(ANSWER_FIELDS)}), or a text column ({', '.join(TEXT_FIELDS)})"
)
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(?::[\w.-]+)?(?:@[\w.%:+\[\]-]+)?")
_FILE_SUFFIX = re.compile(r"\.[A-Za-z]{2,8}")
_Q_LINE = re.compile(r"^\s*(?:q|question)\s*[:：]\s?(.*)$", re.IGNORECASE)
_A_LINE = re.compile(r"^\s*(?:a|answer)\s*[:：]\s?(.*)$", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")


@dataclass
class LoadedData:
    """One cleaned split: the dataset (record schema), how it was read, what cleaning did."""

    dataset: Any  # datasets.Dataset
    detected_format: str  # e.g. "jsonl (question/answer)", "txt (paragraphs)"
    report: CleaningReport = field(default_factory=CleaningReport)
    source: str = ""
    role: str = ""


def _fail(message: str) -> DataError:
    """A DataError whose message is guaranteed to be one line."""
    return DataError(" ".join(message.split()))


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0].rstrip(".") if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --- public API ---------------------------------------------------------------------------------
def load_split(spec: str, role: str, *, stdin: str | None = None) -> LoadedData:
    """Load ``spec`` as the ``role`` set (forget, retain or holdout) and clean it.

    Raises ``DataError`` (prefixed with the role) when the source cannot be read, and when
    it holds no records before or after cleaning.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    try:
        records, detected = load_records(spec, stdin=stdin)
    except DataError as error:
        raise _fail(f"{role} set: {error}") from error
    spec = (spec or "").strip()
    where = "standard input" if spec == "-" else spec
    if not records:
        hint = "paste or pipe some text in" if spec.strip() == "-" else "add records to it or pick another source"
        raise _fail(f"the {role} set is empty: {where} holds no records; {hint}")
    dataset, report = clean_records(records)
    if report.kept == 0:
        raise _fail(
            f"the {role} set is empty after cleaning: all {report.loaded} records of {where} have an "
            "empty answer or text; fill them in or pick another source"
        )
    return LoadedData(dataset, detected, report, source=spec, role=role)


def load_source(spec: str, *, stdin: str | None = None):
    """The records of ``spec`` as a ``datasets.Dataset`` in the record schema (not cleaned)."""
    return to_dataset(load_records(spec, stdin=stdin)[0])


def load_records(spec: str, *, stdin: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The records of ``spec`` (schema dicts, not cleaned) and a label of how they were read.

    ``stdin`` is the text that ``-`` stands for; when None, ``sys.stdin`` is read.
    """
    spec = (spec or "").strip()
    if not spec:
        raise _fail(f"no data source given; give {_SOURCES_HINT}")
    if spec == "-":
        text = _read_stdin() if stdin is None else stdin
        return _records_from_text(text, "standard input", "stdin")
    if spec.startswith("bundled:"):
        return _load_bundled(spec.split(":", 1)[1].strip())
    if spec.startswith("hf:"):
        return _load_hub_spec(spec[3:].strip())
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_hub(str(path), None, "train", f"folder {spec}")
    if path.exists():
        return _load_file(path, spec)
    name = re.split(r"[:@]", spec, maxsplit=1)[0]
    if _HUB_NAME.fullmatch(spec) and not _FILE_SUFFIX.fullmatch(Path(name).suffix):
        try:
            return _load_hub_spec(spec)
        except DataError as error:
            raise _fail(f"{error}; no file or folder named {spec} exists either") from error
    looked = "" if path.is_absolute() else f" (looked in {Path.cwd()})"
    raise _fail(f"file not found: {spec}{looked}; check the path, or write hf:owner/name for a hub dataset")


def parse_text(text: str, source: str = "the text") -> tuple[list[dict[str, Any]], str]:
    """Records from plain text and which layout was found ("Q:/A: pairs", "paragraphs", "lines")."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    first_q = next((i for i, line in enumerate(lines) if _Q_LINE.match(line)), None)
    if first_q is not None and any(_A_LINE.match(line) for line in lines[first_q + 1:]):
        return _parse_qa_lines(lines, source), "Q:/A: pairs"
    if _BLANK_LINES.search(text.strip()):
        chunks, layout = _BLANK_LINES.split(text), "paragraphs"
    else:
        chunks, layout = lines, "lines"
    return [make_record("", chunk.strip()) for chunk in chunks if chunk.strip()], layout


# --- text ---------------------------------------------------------------------------------------
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
                raise _fail(
                    f"line {number} of {source}: an answer with no question before it; put a 'Q:' line before it"
                )
            if state == "a":
                raise _fail(
                    f"line {number} of {source}: a second answer to the question on line {q_line}; "
                    "give each question one 'A:' line"
                )
            answer, state = [a_match.group(1)], "a"
        elif state == "q":
            question.append(line)
        elif state == "a":
            answer.append(line)
        elif line.strip():
            raise _fail(
                f"line {number} of {source} is outside a Q:/A: pair; start each record with a 'Q:' line, "
                "or remove the Q:/A: lines to load the text as paragraphs"
            )
    if state == "q":
        raise _no_answer(q_line, source)
    if state == "a":
        records.append(make_record("\n".join(question).strip(), "\n".join(answer).strip()))
    return records


def _no_answer(line: int, source: str) -> DataError:
    return _fail(f"line {line} of {source}: a question without an answer; put its answer on an 'A:' line after it")


def _records_from_text(text: str, source: str, label: str) -> tuple[list[dict[str, Any]], str]:
    """Pasted or .txt text; pasted JSON / JSON Lines is recognised by its first character."""
    stripped = text.strip()
    if label == "stdin" and stripped[:1] in ("[", "{"):
        sniffed = _sniff_json(stripped, source)
        if sniffed is not None:
            fmt, rows = sniffed
            records, fields = _rows_to_records(rows, source, "record")
            return records, f"stdin {fmt} ({fields})"
    records, layout = parse_text(text, source)
    return records, f"{label} ({layout})"


def _sniff_json(text: str, source: str) -> tuple[str, list[Any]] | None:
    try:
        return "json", _json_rows(json.loads(text), source)
    except json.JSONDecodeError:
        pass
    try:
        return "jsonl", [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return None  # not JSON after all: read it as text


def _read_stdin() -> str:
    stream = sys.stdin
    try:
        interactive = stream is None or stream.isatty()
    except ValueError:  # closed
        interactive = True
    if interactive:
        raise _fail(
            "'-' reads standard input, but nothing was piped in; pipe the text in "
            "(cat forget.txt | tui-unlearn ...) or give a file path"
        )
    buffer = getattr(stream, "buffer", None)
    return _decode(buffer.read(), "standard input") if buffer is not None else stream.read()


def _decode(data: bytes, name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _fail(
            f"{name} is not UTF-8 text (byte 0x{data[error.start]:02x} on line {line}); "
            "re-save it as UTF-8 (Save As, encoding UTF-8) and load it again"
        ) from error


# --- files --------------------------------------------------------------------------------------
def _load_file(path: Path, name: str) -> tuple[list[dict[str, Any]], str]:
    suffix = path.suffix.lower()
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        what = f"'{suffix}'" if suffix else "(no extension)"
        raise _fail(f"unknown file format {what} for {name}; supported: {', '.join(FILE_FORMATS)}")
    if fmt == "parquet":
        return _with_label(_rows_to_records(_parquet_rows(path, name), name, "row"), fmt)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _fail(f"can't read {name}: {error.strerror or error}; check its permissions") from error
    text = _decode(data, name)
    if fmt == "txt":
        records, layout = parse_text(text, name)
        return records, f"txt ({layout})"
    if fmt == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as error:
            if error.msg == "Extra data":  # JSON Lines saved as .json: read it as such if it is
                try:
                    rows, numbers = _jsonl_rows(text, name)
                except DataError:
                    rows = None
                if rows is not None:
                    return _with_label(_rows_to_records(rows, name, "line", numbers), "jsonl")
            raise _fail(
                f"{name} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}; "
                "fix it there, or save the records as .jsonl, one object per line"
            ) from error
        return _with_label(_rows_to_records(_json_rows(obj, name), name, "record"), fmt)
    if fmt == "jsonl":
        rows, numbers = _jsonl_rows(text, name)
        return _with_label(_rows_to_records(rows, name, "line", numbers), fmt)
    rows, numbers = _csv_rows(text, name, "\t" if fmt == "tsv" else ",")
    return _with_label(_rows_to_records(rows, name, "line", numbers), fmt)


def _with_label(result: tuple[list[dict[str, Any]], str], fmt: str) -> tuple[list[dict[str, Any]], str]:
    records, fields = result
    return records, f"{fmt} ({fields})"


def _json_rows(obj: Any, name: str) -> list[Any]:
    """The list of records a parsed JSON document holds."""
    if isinstance(obj, list):
        return obj
    if not isinstance(obj, dict):
        raise _fail(
            f"{name} holds a JSON {_kind(obj)}; expected a list of records, or an object holding one under 'data'"
        )
    lowered = {str(k).strip().lower(): k for k in obj}
    for key in JSON_LIST_KEYS:
        if key in lowered and isinstance(obj[lowered[key]], list):
            return obj[lowered[key]]
    fields = _find_fields(obj.keys(), name)
    values = list(obj.values())
    if fields is not None and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        # Columns of equal length, as Dataset.to_dict() writes them.
        return [dict(zip(obj.keys(), row)) for row in zip(*values)]
    if fields is not None:
        return [obj]  # a single record
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, (dict, str)) for x in v)]
    if len(lists) == 1:
        return obj[lists[0]]
    keys = ", ".join(map(str, list(obj)[:10])) or "none"
    raise _fail(
        f"{name} holds a JSON object with keys {keys} and no list of records; put the records in a list, "
        f"or under one of: {', '.join(JSON_LIST_KEYS[:3])}"
    )


def _jsonl_rows(text: str, name: str) -> tuple[list[Any], list[int]]:
    rows, numbers = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise _fail(
                f"line {number} of {name} is not valid JSON: {error.msg} (column {error.colno}); "
                "each line must be one complete JSON object"
            ) from error
        numbers.append(number)
    return rows, numbers


def _csv_rows(text: str, name: str, delimiter: str) -> tuple[list[dict[str, str]], list[int]]:
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
                raise _fail(
                    f"line {reader.line_num} of {name} has {len(values)} fields but the header has "
                    f"{len(header)}; put values that contain '{delimiter}' in double quotes"
                )
            rows.append(dict(zip(header, values + [""] * (len(header) - len(values)))))
            numbers.append(reader.line_num)
    except csv.Error as error:
        raise _fail(
            f"{name} is not valid CSV at line {reader.line_num}: {error}; check the quoting there "
            '(a value with quotes inside is written "say ""hi""")'
        ) from error
    return rows, numbers


def _parquet_rows(path: Path, name: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ... for a bad file
        raise _fail(
            f"can't read {name} as Parquet: {_first_line(error)}; re-export it, or save it as .jsonl"
        ) from error


# --- bundled and hub ----------------------------------------------------------------------------
def _load_bundled(split: str) -> tuple[list[dict[str, Any]], str]:
    try:
        from tui_unlearn.data.benchmark import benchmark_records
    except ImportError as error:
        raise _fail(
            f"the bundled benchmark is not available in this installation ({_first_line(error)}); give a file instead"
        ) from error
    try:
        records = benchmark_records(split)
    except UnlearnError as error:
        raise _fail(str(error)) from error
    return records, f"bundled benchmark ({split})"


def _load_hub_spec(rest: str) -> tuple[list[dict[str, Any]], str]:
    """``owner/name[:config][@split]`` or a local folder, with or without config and split."""
    name, config, split = rest, None, "train"
    if not Path(rest).expanduser().exists():
        if "@" in name:
            name, split = name.rsplit("@", 1)
        if ":" in name and not Path(name).expanduser().exists():
            name, config = name.split(":", 1)
    if not name.strip() or not split.strip() or (config is not None and not config.strip()):
        raise _fail(
            f"can't read hub dataset spec 'hf:{rest}'; write hf:owner/name, hf:owner/name:config "
            "or hf:owner/name:config@split"
        )
    local = Path(name).expanduser()
    display = f"folder {name}" if local.exists() else name
    return _load_hub(str(local) if local.exists() else name, config or None, split, display)


def _load_hub(name: str, config: str | None, split: str, display: str) -> tuple[list[dict[str, Any]], str]:
    import datasets

    try:
        with _progress_bars_off():
            dataset = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # datasets raises many types; each becomes one line
        raise _hub_error(error, name, config, split, display) from error
    label = f"hub dataset {name}" if display == name else f"dataset {display}"
    return _with_label(_rows_to_records(dataset.to_list(), display, "row"), label)


def _hub_error(error: Exception, name: str, config: str | None, split: str, display: str) -> DataError:
    first = _first_line(error)
    shown = ("hub dataset " if display == name else "dataset ") + display + (f":{config}" if config else "")
    shown += f"@{split}" if split != "train" else ""
    offline = any(_env_true(v) for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if offline and (isinstance(error, ConnectionError) or "offline" in first.lower()):
        return _fail(
            f"hub dataset {name} is not in the local cache and offline mode is on (HF_HUB_OFFLINE); "
            "download it once on a machine with internet access, or give a local file"
        )
    if display != name:  # a local folder
        return _fail(
            f"can't load {shown}: {first}; the folder should hold .jsonl, .json, .csv or .parquet files "
            "(choose a split with @split)"
        )
    if isinstance(error, ConnectionError):
        return _fail(
            f"couldn't reach the Hugging Face Hub for {name}: {first}; check the connection, or give a local file"
        )
    if type(error).__name__ in ("DatasetNotFoundError", "FileNotFoundError", "RepositoryNotFoundError"):
        return _fail(
            f"hub dataset {name} not found: {first}; check the name (owner/name), and log in for a private "
            "or gated dataset"
        )
    return _fail(f"can't load {shown}: {first}; choose the config with :config and the split with @split")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@contextmanager
def _progress_bars_off() -> Iterator[None]:
    """datasets draws progress bars on stderr, which would scribble over the TUI."""
    try:
        from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    except ImportError:  # older datasets: leave the bars alone
        yield
        return
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


# --- rows to records ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Fields:
    """Which of a row's keys hold what; None when the row has no such key."""

    question: str | None
    extra_input: str | None  # alpaca's "input", appended to the instruction
    answer: str | None
    text: str | None
    paraphrased: str | None
    perturbed: tuple[str, ...]
    group: str | None

    def label(self) -> str:
        if self.question and self.answer:
            question = self.question.lower() + (f"+{self.extra_input.lower()}" if self.extra_input else "")
            label = f"{question}/{self.answer.lower()}"
        else:
            label = self.text.lower() if self.text else f"{(self.answer or '').lower()} as text"
        extras = (["paraphrased"] if self.paraphrased else []) + (["perturbed"] if self.perturbed else [])
        return ", ".join([label, *extras])


def _find_fields(keys, name: str) -> _Fields | None:
    """The fields of a row with these keys; None when none is recognisable."""
    by_name: dict[str, str] = {}
    for key in keys:
        by_name.setdefault(str(key).strip().lower(), key)

    def first(names: tuple[str, ...]) -> str | None:
        return next((by_name[n] for n in names if n in by_name), None)

    question, answer, text = first(QUESTION_FIELDS), first(ANSWER_FIELDS), first(TEXT_FIELDS)
    alpaca = question is not None and str(question).strip().lower() == "instruction"
    extra = by_name.get("input") if alpaca else None
    if question is not None and answer is None and text is None:
        raise _fail(
            f"{name} has questions ({question}) but no answers; add an answer column "
            f"({', '.join(ANSWER_FIELDS)}), or use a text column ({', '.join(TEXT_FIELDS)}) for plain text"
        )
    if answer is None and text is None:
        return None
    if question is None or answer is None:
        question = extra = None  # plain text: from the text column, else the answer alone
    return _Fields(
        question, extra, answer, text if question is None else None,
        first(PARAPHRASED_FIELDS),
        tuple(by_name[n] for n in PERTURBED_FIELDS if n in by_name),
        first(GROUP_FIELDS),
    )


def _rows_to_records(
    rows: list[Any], name: str, unit: str, numbers: list[int] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Schema records from parsed rows (dicts or strings) and a label of the fields used.

    ``unit`` and ``numbers`` say how to point at a row in an error ("line 7", "record 3").
    """
    def where(i: int) -> str:
        return f"{unit} {numbers[i] if numbers else i + 1}"

    cache: dict[frozenset, _Fields | None] = {}
    labels: Counter[str] = Counter()
    records = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            records.append(make_record("", row))
            labels["strings as text"] += 1
            continue
        if not isinstance(row, dict):
            raise _fail(
                f"{where(i)} of {name} is a {_kind(row)}; each record must be an object ({_ACCEPTED}) "
                "or a string of text"
            )
        keys = frozenset(row)
        if keys not in cache:
            cache[keys] = _find_fields(row.keys(), name)
        fields = cache[keys]
        if fields is None:
            found = ", ".join(map(str, row)) or "none"
            subject = name if i == 0 else f"{where(i)} of {name}"
            raise _fail(f"{subject} has no recognisable fields (found: {found}); expected {_ACCEPTED}")
        records.append(_record(row, fields))
        labels[fields.label()] += 1
    if not labels:
        return records, "no records"
    if len(labels) == 1:
        return records, next(iter(labels))
    return records, "mixed: " + "; ".join(label for label, _ in labels.most_common())


def _record(row: dict[str, Any], fields: _Fields) -> dict[str, Any]:
    question = _as_text(row.get(fields.question)) if fields.question is not None else ""
    extra = _as_text(row.get(fields.extra_input)) if fields.extra_input is not None else ""
    if extra.strip():
        question = f"{question}\n\n{extra}" if question.strip() else extra
    body = fields.answer if fields.question is not None else (fields.text or fields.answer)
    perturbed: list[str] = []
    for key in fields.perturbed:
        value = row.get(key)
        perturbed += [_as_text(v) for v in value] if isinstance(value, (list, tuple)) else [_as_text(value)]
    return make_record(
        question,
        _as_text(row.get(body)),
        paraphrased_answer=_as_text(row.get(fields.paraphrased)) if fields.paraphrased else "",
        perturbed_answers=[p for p in perturbed if p],
        group=_as_text(row.get(fields.group)) if fields.group else "",
    )


def _as_text(value: Any) -> str:
    """A field's value as text: lists give their first non-empty item, {"text": ...} its text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return next((t for t in map(_as_text, value) if t.strip()), "")
    if isinstance(value, dict):
        for key in ("text", "value", "content"):
            if key in value:
                return _as_text(value[key])
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "list"
    if value is None:
        return "null"
    return type(value).__name__
