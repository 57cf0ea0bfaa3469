"""Reading a session's files back: parse them and check their shape.

A reader never trusts a file: a JSON document that is not an object, a field of the wrong
type, a line that is not UTF-8 all become a one-line reason (for a whole file) or a skipped,
counted line (for JSON-lines files), never an exception.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.errors import first_line, json_kind

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
EXAMPLES_FILE = "examples.jsonl"

# Most a reader takes in: a summary or config is kilobytes, a history megabytes. Anything
# larger is damage (or an endless file such as /dev/zero) and must not fill the memory.
JSON_LIMIT = 16 << 20
LINES_LIMIT = 1 << 30


class NotRegularFileError(OSError):
    """A session file that is a named pipe, a device or a socket: reading it could block forever."""


class TooLargeError(OSError):
    """A session file longer than a reader takes in."""


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path):
    """``path`` opened for binary reading, when it is a regular file.

    Opened non-blocking and checked before anything is read: opening a named pipe blocks until
    a writer comes and reading a device may never end. Raises FileNotFoundError,
    IsADirectoryError, NotRegularFileError (its ``strerror`` says what the file is) or OSError.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(21, "is a folder", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(0, f"is {_kind(mode)}, not a file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular(path: Path) -> str | None:
    """Why ``path`` cannot be read or replaced as a session file, or None (a missing file is fine)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path.name} cannot be read: {exc.strerror or first_line(exc)}"
    if stat.S_ISDIR(mode):
        return f"{path.name} is a folder"
    if not stat.S_ISREG(mode):
        return f"{path.name} is {_kind(mode)}, not a file"
    return None


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``; TooLargeError past ``limit`` bytes."""
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
    too_large = TooLargeError(0, f"is larger than {size}", str(path))
    with open_regular(path) as fh:
        if os.fstat(fh.fileno()).st_size > limit:  # refused unread (a file that says 0 may still be endless)
            raise too_large
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    return raw


def _unreadable(name: str, exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return f"{name} is a folder"
    if isinstance(exc, (NotRegularFileError, TooLargeError)):
        return f"{name} {exc.strerror}"
    return f"{name} cannot be read: {exc.strerror or first_line(exc)}"


# Numbers are JSON's: true/false is not one; NaN and Infinity parse as floats and pass.
_NUMBER = "number"
_INT = "integer"
_WANTED = {str: "text", dict: "an object", list: "a list", _NUMBER: "a number", _INT: "a whole number"}
_INT_LIMIT = 2**63  # beyond this a count or a step is damage, and float() of it may overflow


def _fits(value: Any, wanted: Any) -> bool:
    if isinstance(value, bool):
        return wanted not in (_NUMBER, _INT) and isinstance(value, wanted)
    if wanted == _NUMBER:
        return isinstance(value, float) or (isinstance(value, int) and abs(value) < _INT_LIMIT)
    if wanted == _INT:
        return isinstance(value, int) and abs(value) < _INT_LIMIT
    return isinstance(value, wanted)


# summary.json keys the tool reads, and what each must be when present (null is allowed).
SUMMARY_FIELDS: dict[str, Any] = {
    **dict.fromkeys(
        ("session_id", "kind", "status", "algorithm", "model", "started", "ended", "error", "host", "model_saved"), str
    ),
    **dict.fromkeys(("pid", "steps", "total_steps"), _INT),
    **dict.fromkeys(
        ("seconds", "train_seconds", "pid_started", "forget_quality", "model_utility", "privleak"), _NUMBER
    ),
    **dict.fromkeys(
        (
            "hparams",
            "data",
            "final_losses",
            "oracle",
            "relearn",
            "field_metrics",
            "metrics",
            "oracle_reference",
            "recipe",
            "null_reasons",
            "headline_details",
            "scale",
            "calibration",
        ),
        dict,
    ),
}

# events.jsonl: what each field of a kind of event must be when present (the names of
# ``events.py``; null counts as absent), and the fields readers cannot do without.
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "log": {"message": str},
    "started": {"session_id": str, "total_steps": _INT, "config": dict, "data": dict},
    "step": {"step": _INT, "total_steps": _INT, "losses": dict, "lr": _NUMBER, "elapsed": _NUMBER},
    "evaluation": {"step": _INT, "phase": str, "metrics": dict, "elapsed": _NUMBER},
    "probes": {"step": _INT, "probes": list},
    "finished": {"status": str, "summary": dict},
    "failed": {"error": str},
}
EVENT_REQUIRED: dict[str, tuple[str, ...]] = {"step": ("step",), "evaluation": ("step",)}


def summary_problem(summary: dict[str, Any]) -> str | None:
    """Why ``summary`` (a parsed summary.json object) cannot be used, or None."""
    for key, wanted in SUMMARY_FIELDS.items():
        value = summary.get(key)
        if value is not None and not _fits(value, wanted):
            return f"{SUMMARY_FILE}: {key!r} is {json_kind(value)}, not {_WANTED[wanted]}"
    for phase, splits in (summary.get("metrics") or {}).items():
        if not isinstance(splits, dict):
            return f"{SUMMARY_FILE}: metrics.{phase} is {json_kind(splits)}, not an object"
        for split, metrics in splits.items():
            if not isinstance(metrics, dict):
                return f"{SUMMARY_FILE}: metrics.{phase}.{split} is {json_kind(metrics)}, not an object"
    for phase, values in (summary.get("field_metrics") or {}).items():
        if values is not None and not isinstance(values, dict):
            return f"{SUMMARY_FILE}: field_metrics.{phase} is {json_kind(values)}, not an object"
    headline = (summary.get("recipe") or {}).get("headline")
    if headline is not None and not (isinstance(headline, list) and all(isinstance(k, str) for k in headline)):
        return f"{SUMMARY_FILE}: recipe.headline is {json_kind(headline)}, not a list of names"
    return None


def event_problem(event: Any) -> str | None:
    """Why ``event`` (a parsed events.jsonl line) cannot be used, or None.

    Kinds this version does not know are kept: keys may be added, never renamed.
    """
    if not isinstance(event, dict):
        return f"{json_kind(event)}, not an object"
    kind = event.get("event")
    if not isinstance(kind, str):
        return "no event name"
    for key in EVENT_REQUIRED.get(kind, ()):
        if event.get(key) is None:
            return f"{kind} event without {key!r}"
    for key, wanted in EVENT_FIELDS.get(kind, {}).items():
        value = event.get(key)
        if value is not None and not _fits(value, wanted):
            return f"{kind} event: {key!r} is {json_kind(value)}, not {_WANTED[wanted]}"
    if kind == "step":
        for term, value in (event.get("losses") or {}).items():
            if not _fits(value, _NUMBER):
                return f"step event: loss {term!r} is {json_kind(value)}, not a number"
    elif kind == "finished" and isinstance(event.get("summary"), dict):
        problem = summary_problem(event["summary"])
        if problem is not None:
            return f"finished event: {problem}"
    elif kind == "evaluation":
        for split, metrics in (event.get("metrics") or {}).items():
            if not isinstance(metrics, dict):
                return f"evaluation event: metrics of {split!r} are {json_kind(metrics)}, not an object"
    return None


def example_problem(row: Any) -> str | None:
    """Why ``row`` (a parsed examples.jsonl line) cannot be used, or None."""
    if not isinstance(row, dict):
        return f"{json_kind(row)}, not an object"
    for key in ("phase", "split", "question", "answer"):
        if row.get(key) is not None and not isinstance(row[key], str):
            return f"{key!r} is {json_kind(row[key])}, not text"
    return None


@dataclass
class JsonLines:
    """The usable rows of a JSON-lines file and what was not usable."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines dropped: not UTF-8, not JSON, or not the right shape
    problem: str | None = None  # the file as a whole could not be read

    def note(self, name: str) -> str | None:
        """One line for people about what was dropped, or None when nothing was."""
        if self.problem:
            return self.problem
        if self.skipped:
            return f"{name}: {self.skipped} unreadable line{'s' if self.skipped != 1 else ''} skipped"
        return None


def read_json_lines(path: Path, check: Callable[[Any], str | None]) -> JsonLines:
    """Rows of ``path`` that parse and pass ``check``; a missing file is an empty one."""
    out = JsonLines()
    try:
        raw_lines = read_limited(path, LINES_LIMIT).split(b"\n")
    except FileNotFoundError:
        return out
    except OSError as exc:
        out.problem = _unreadable(path.name, exc)
        return out
    for raw in raw_lines:
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            # A run killed mid-write leaves a partial last line; the rest is good.
            out.skipped += 1
            continue
        if check(row) is not None:
            out.skipped += 1
            continue
        out.rows.append(row)
    return out


def read_json_object(path: Path) -> tuple[dict[str, Any], str | None]:
    """(the object in ``path``, None), or ({}, why it cannot be read)."""
    name = path.name
    try:
        raw = read_limited(path, JSON_LIMIT)
    except FileNotFoundError:
        return {}, f"{name} is missing"
    except OSError as exc:
        return {}, _unreadable(name, exc)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {}, f"{name} is not UTF-8 text"
    except json.JSONDecodeError as exc:
        return {}, f"{name} is not valid JSON ({exc.msg}, line {exc.lineno})"
    except (ValueError, RecursionError) as exc:
        return {}, f"{name} is not valid JSON ({first_line(exc, 80)})"
    if not isinstance(data, dict):
        return {}, f"{name} holds {json_kind(data)}, not an object"
    return data, None
