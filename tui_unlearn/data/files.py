"""Reading a file a user names: only regular files, opened without blocking, read up to a limit.

A FIFO with no writer blocks ``open()`` forever, ``/dev/zero`` never ends, and a file in a
folder the user cannot enter fails on ``stat`` already. So a path is ``stat``-ed first,
anything but a regular file is refused by name, the file is opened with ``O_NONBLOCK``
(what it turns out to be is checked again on the open descriptor, in case it was swapped
in between) and read up to ``max_data_bytes()``: data files are held in memory whole, and
parsed JSON takes several times their size. ``TUI_UNLEARN_MAX_DATA_MB`` raises the limit.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tui_unlearn.errors import UnlearnError

MAX_DATA_ENV = "TUI_UNLEARN_MAX_DATA_MB"
DEFAULT_MAX_DATA_MB = 1024
_CHUNK = 1 << 20

ErrorFactory = Callable[[str], UnlearnError]


def max_data_bytes() -> int:
    """The most bytes one data file (or standard input) may hold: ``TUI_UNLEARN_MAX_DATA_MB``
    megabytes (MiB), default 1024. A value that is not a positive number is ignored."""
    raw = os.environ.get(MAX_DATA_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_DATA_MB
    except ValueError:
        megabytes = DEFAULT_MAX_DATA_MB
    if not megabytes > 0 or megabytes == float("inf"):
        megabytes = DEFAULT_MAX_DATA_MB
    return int(megabytes * 1024 * 1024)


def limit_text(limit: int) -> str:
    """What a too-large error says about the limit and how to raise it."""
    megabytes = limit / (1024 * 1024)
    return (
        f"the limit is {megabytes:g} MB; raise it with {MAX_DATA_ENV}={int(megabytes * 4)} "
        "if the machine has the memory (the whole file is held in memory)"
    )


def os_reason(error: OSError) -> str:
    """An OSError's reason in a few words, without the path or a trailing newline."""
    text = error.strerror or str(error) or type(error).__name__
    return " ".join(text.split()).rstrip(".").lower()


def kind_of_file(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)", "a character device", ...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def stat_path(path: Path) -> os.stat_result | None:
    """``os.stat(path)``, or None when nothing is there (a dangling link counts as nothing).
    Raises OSError for anything else (a folder that cannot be entered, a link loop...)."""
    try:
        return os.stat(path)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def unreachable(name: str, error: OSError) -> str:
    """Why ``name`` could not be looked at (its ``stat`` failed), and what to do."""
    if error.errno == errno.EACCES:
        return (
            f"can't reach {name}: permission denied on a folder of its path (it can't be entered); "
            "check that folder's permissions, or copy the file somewhere readable"
        )
    if error.errno == errno.ELOOP:
        return f"can't reach {name}: its symbolic links loop; point the link at the real file"
    if error.errno == errno.ENAMETOOLONG:
        return f"can't reach {name}: a name on its path is too long for the file system; use a shorter path"
    return f"can't reach {name}: {os_reason(error)}; check the path"


def check_regular(mode: int, name: str, error: ErrorFactory, alternative: str) -> None:
    if not stat.S_ISREG(mode):
        raise error(f"{name} is {kind_of_file(mode)}, not a regular file; {alternative}")


def check_file(
    path: Path,
    name: str,
    error: ErrorFactory,
    *,
    alternative: str = "save the data to a file and give its path",
    limit: int | None = None,
) -> os.stat_result:
    """``path``'s stat when it is a regular file within ``limit`` bytes (default
    ``max_data_bytes()``); else ``error(message)``, raised. Opens nothing."""
    limit = max_data_bytes() if limit is None else limit
    try:
        found = stat_path(path)
    except OSError as exc:
        raise error(unreachable(name, exc)) from None
    if found is None:
        raise error(f"file not found: {name}; check the path")
    check_regular(found.st_mode, name, error, alternative)
    if found.st_size > limit:
        raise error(f"{name} holds {found.st_size / 2**20:.0f} MB, over the size limit for a file: {limit_text(limit)}")
    return found


def read_regular(
    path: Path,
    name: str,
    error: ErrorFactory,
    *,
    alternative: str = "save the data to a file and give its path",
    limit: int | None = None,
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` (default ``max_data_bytes()``).

    Raises ``error(message)`` (one line) for a path that cannot be reached or read, for
    anything but a regular file (FIFO, device, socket, folder: ``alternative`` says what
    to do instead) and for a file over the limit. Never blocks on a FIFO.
    """
    limit = max_data_bytes() if limit is None else limit
    check_file(path, name, error, alternative=alternative, limit=limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        hint = "check its permissions" if exc.errno == errno.EACCES else "check the path"
        raise error(f"can't read {name}: {os_reason(exc)}; {hint}") from None
    with os.fdopen(fd, "rb", buffering=0) as stream:
        check_regular(os.fstat(fd).st_mode, name, error, alternative)  # swapped since the stat
        try:
            data = read_at_most(stream, limit)
        except OSError as exc:
            raise error(f"can't read {name}: {os_reason(exc)}; check the file") from None
    if data is None:
        raise error(f"{name} holds more than the size limit for a file (it grew while read): {limit_text(limit)}")
    return data


def read_at_most(stream: BinaryIO, limit: int) -> bytes | None:
    """All of ``stream`` when it holds at most ``limit`` bytes, else None (reads ``limit + 1``
    at most, so an endless stream ends too)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size += len(chunk)
    return None
