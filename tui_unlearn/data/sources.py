"""Sources: which reader a spec string names, and reading standard input.

A spec is:

- ``-``: standard input or pasted text. Text that is JSON or JSON Lines is read as such;
  text that starts like JSON (``[{``, ``{"``, …) and parses as neither is an error
  naming the line and column; anything else is plain text (``parsers.parse_text``).
- a file path; the extension picks the parser: ``.txt``/``.md``, ``.json``,
  ``.jsonl``/``.ndjson``, ``.csv``/``.tsv``, ``.parquet``.
- ``bundled:<split>``: the bundled fictitious-authors benchmark.
- ``hf:owner/name[:config][@split]``, a local folder (``hf:./folder`` or just
  ``./folder``), or ``owner/name`` when no such path exists (``hub.py``).

Only hub datasets, folders and Parquet files import ``datasets``/``pyarrow``.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from tui_unlearn.data import files, parsers
from tui_unlearn.data.fields import data_error, rows_to_records
from tui_unlearn.errors import UnlearnError, first_line
from tui_unlearn.paths import path_problem

STDIN_SPEC = "-"  # standard input, or the text pasted into the TUI
BUNDLED_PREFIX = "bundled:"  # bundled:<split> of the bundled benchmark
HUB_PREFIX = "hf:"  # hf:owner/name[:config][@split] or hf:./folder

SourceKind = Literal["stdin", "bundled", "hub", "path"]


@dataclass(frozen=True)
class SourceSpec:
    """A data source spec taken apart by its prefix.

    ``rest`` is what follows the prefix as written (not stripped); for ``path`` it is the
    whole spec, which may still turn out to be a bare ``owner/name`` on the hub when no
    such path exists (``load_records`` decides that when it reads).
    """

    kind: SourceKind
    rest: str

    @classmethod
    def parse(cls, spec: str) -> SourceSpec:
        if spec == STDIN_SPEC:
            return cls("stdin", spec)
        if spec.startswith(BUNDLED_PREFIX):
            return cls("bundled", spec[len(BUNDLED_PREFIX) :])
        if spec.startswith(HUB_PREFIX):
            return cls("hub", spec[len(HUB_PREFIX) :])
        return cls("path", spec)

    @property
    def is_bundled(self) -> bool:
        return self.kind == "bundled"

    @property
    def is_hub(self) -> bool:
        return self.kind == "hub"

    @property
    def is_stdin(self) -> bool:
        return self.kind == "stdin"


FILE_FORMATS = {
    ".txt": "txt",
    ".md": "txt",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
STDIN_NAME = "standard input"
PASTED_LABEL = "pasted"
SOURCES_HINT = "a .txt/.json/.jsonl/.csv/.parquet file, '-' for standard input, bundled:<split> or hf:owner/name"
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(?::[\w.-]+)?(?:@[\w.%:+\[\]-]+)?")
_FILE_SUFFIX = re.compile(r"\.[A-Za-z]{2,8}")

Records = tuple[list[dict[str, Any]], str]
_NOT_REGULAR = "save the data to a file and give its path, or pipe it in with '-'"


def load_records(spec: str, *, stdin: str | None = None) -> Records:
    """The records of ``spec`` (schema dicts, not cleaned) and a label of how they were read.

    ``stdin`` is the text that ``-`` stands for; when None, standard input is read
    (``read_stdin_text``). Raises DataError with one line for anything unreadable.
    """
    spec = (spec or "").strip()
    if not spec:
        raise data_error(f"no data source given; give {SOURCES_HINT}")
    source = SourceSpec.parse(spec)
    if source.is_stdin:
        text = read_stdin_text() if stdin is None else stdin
        return records_from_pasted(text, STDIN_NAME)
    problem = path_problem(spec)  # hub names are shorter still; a longer name is a mistyped path
    if problem:
        raise data_error(f"{spec if len(spec) <= 80 else spec[:77] + '...'} {problem}")
    if source.is_bundled:
        return load_bundled(source.rest.strip())
    if source.is_hub:
        from tui_unlearn.data.hub import load_hub_spec

        return load_hub_spec(source.rest.strip())
    path = Path(spec).expanduser()
    try:
        found = files.stat_path(path)
    except OSError as error:
        raise data_error(files.unreachable(spec, error)) from None
    if found is not None and stat.S_ISDIR(found.st_mode):
        if not path.resolve().name:  # datasets takes a folder's name apart and has none to take here
            raise data_error(
                f"{spec} is the root of the file system, not a dataset folder; give a data file or a folder of them"
            )
        from tui_unlearn.data.hub import load_hub

        return load_hub(str(path), None, "train", f"folder {spec}")
    if found is not None:
        return load_file(path, spec)
    if path.is_symlink():
        raise data_error(
            f"{spec} is a link to {os.readlink(path)}, which does not exist; fix the link or give the file"
        )
    name = re.split(r"[:@]", spec, maxsplit=1)[0]
    if _HUB_NAME.fullmatch(spec) and not _FILE_SUFFIX.fullmatch(Path(name).suffix):
        from tui_unlearn.data.hub import load_hub_spec

        try:
            return load_hub_spec(spec)
        except UnlearnError as error:
            raise data_error(f"{error}; no file or folder named {spec} exists either") from error
    looked = "" if path.is_absolute() else f" (looked in {Path.cwd()})"
    raise data_error(f"file not found: {spec}{looked}; check the path, or write hf:owner/name for a hub dataset")


def read_stdin_text(stream: TextIO | None = None) -> str:
    """Standard input (``stream``, default ``sys.stdin``) as text, decoded like a file.

    Reads the bytes underneath (so binary input gets the "not UTF-8" DataError a file
    gets, not a UnicodeDecodeError). Raises DataError at once when standard input is a
    terminal (nothing piped in: reading would wait silently for Ctrl-D) or absent.
    """
    stream = sys.stdin if stream is None else stream
    try:
        interactive = stream is None or stream.isatty()
    except (ValueError, OSError):  # closed
        interactive = True
    if interactive:
        raise data_error(
            "'-' reads standard input, but nothing was piped in; pipe the text in "
            "(cat forget.txt | tui-unlearn ... --forget -) or give a file path"
        )
    buffer = getattr(stream, "buffer", None)
    limit = files.max_data_bytes()
    try:
        data = files.read_at_most(buffer, limit) if buffer is not None else stream.read(limit + 1)
    except UnicodeDecodeError as error:  # a text stream without bytes underneath
        raise data_error(f"{STDIN_NAME} is not UTF-8 text ({first_line(error)}); pipe UTF-8 text in") from error
    except OSError as error:
        raise data_error(f"can't read {STDIN_NAME}: {first_line(error)}") from error
    if data is None or len(data) > limit:
        raise data_error(f"{STDIN_NAME} holds more than the size limit for data: {files.limit_text(limit)}")
    return parsers.decode(data, STDIN_NAME) if isinstance(data, bytes) else data


def records_from_pasted(text: str, source: str = STDIN_NAME) -> Records:
    """Pasted or piped text: JSON / JSON Lines when it is that, else plain text.

    Labels read ``pasted json (…)``, ``pasted jsonl (…)`` or ``pasted (<layout>)``.
    """
    text = text[1:] if text.startswith("\ufeff") else text  # a byte-order mark pasted along
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            rows, fmt, unit, numbers = parsers.parse_json(stripped, source)
        except UnlearnError:
            if parsers.looks_like_json(stripped):
                raise
        else:
            records, fields = rows_to_records(rows, source, unit, numbers)
            return records, f"{PASTED_LABEL} {fmt} ({fields})"
    records, layout = parsers.parse_text(text, source)
    return records, f"{PASTED_LABEL} ({layout})"


def load_file(path: Path, name: str) -> Records:
    """A data file, read by the parser its extension names (a regular file only: see ``files``)."""
    files.check_file(path, name, data_error, alternative=_NOT_REGULAR)
    suffix = path.suffix.lower()
    fmt = FILE_FORMATS.get(suffix)
    if fmt is None:
        what = f"'{suffix}'" if suffix else "(no extension)"
        raise data_error(f"unknown file format {what} for {name}; supported: {', '.join(FILE_FORMATS)}")
    if fmt == "parquet":
        return _labelled(rows_to_records(parsers.parse_parquet(path, name), name, "row"), fmt)
    data = files.read_regular(path, name, data_error, alternative=_NOT_REGULAR)
    text = parsers.decode(data, name)
    if fmt == "txt":
        records, layout = parsers.parse_text(text, name)
        return records, f"txt ({layout})"
    if fmt == "json":
        rows, fmt, unit, numbers = parsers.parse_json(text, name)
        return _labelled(rows_to_records(rows, name, unit, numbers), fmt)
    if fmt == "jsonl":
        rows, numbers = parsers.parse_jsonl(text, name)
        return _labelled(rows_to_records(rows, name, "line", numbers), fmt)
    rows, numbers = parsers.parse_csv(text, name, "\t" if fmt == "tsv" else ",")
    return _labelled(rows_to_records(rows, name, "line", numbers), fmt)


def load_bundled(split: str) -> Records:
    """A split of the bundled benchmark (generated, no file read)."""
    try:
        from tui_unlearn.data.benchmark import benchmark_records
    except ImportError as error:
        raise data_error(
            f"the bundled benchmark is not available in this installation ({first_line(error)}); give a file instead"
        ) from error
    try:
        records = benchmark_records(split)
    except UnlearnError as error:
        raise data_error(str(error)) from error
    return records, f"bundled benchmark ({split})"


def _labelled(result: Records, fmt: str) -> Records:
    records, fields = result
    return records, f"{fmt} ({fields})"
