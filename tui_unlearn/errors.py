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
