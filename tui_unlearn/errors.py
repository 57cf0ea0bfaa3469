"""Exit codes and the user-facing errors that map onto them.

Every error a user can cause is one of these: the CLI prints ``str(error)`` as one line
and exits with ``error.exit_code``; the TUI shows the same line. Nothing else should
reach a user as a traceback.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    RUN_FAILED = 1  # the run failed or diverged
    USAGE = 2  # bad flags or config
    LOAD = 3  # model or data could not be loaded
    INTERRUPTED = 130


class UnlearnError(Exception):
    """Base for errors shown to the user as one line."""

    exit_code: ExitCode = ExitCode.RUN_FAILED


class ConfigError(UnlearnError):
    exit_code = ExitCode.USAGE


class DataError(UnlearnError):
    exit_code = ExitCode.LOAD


class ModelLoadError(UnlearnError):
    exit_code = ExitCode.LOAD


class RunFailedError(UnlearnError):
    exit_code = ExitCode.RUN_FAILED


def first_line(error: BaseException | str | None, limit: int = 200) -> str:
    """The first non-empty line of an error's text (its type name when it has none), at most
    ``limit`` characters: what a one-line message quotes from a library's exception."""
    if error is None:
        return "unknown error"
    text = error if isinstance(error, str) else str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines:
        line = lines[0]
    else:
        line = type(error).__name__ if isinstance(error, BaseException) else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def json_kind(value: object) -> str:
    """What a JSON value is, in the words a one-line error uses ("a number", "text", "null", ...).

    ``true``/``false`` are not numbers here, though Python's bool is an int.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
