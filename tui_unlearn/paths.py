"""Every folder the tool reads or writes, each overridable by a flag and an environment variable.

Precedence: explicit argument (a CLI option) > environment variable > platformdirs default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

APP_NAME = "tui-unlearn"
SESSIONS_ENV = "TUI_UNLEARN_SESSIONS_DIR"
MODELS_CACHE_ENV = "TUI_UNLEARN_MODELS_CACHE"
LOGGING_ENV = "TUI_UNLEARN_LOGGING_DIR"

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _user_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def _user_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))


def sessions_dir(override: str | os.PathLike | None = None) -> Path:
    """Where sessions are saved (not created here).

    ``~`` is expanded here, for every command alike (a quoted ``"~/x"`` reaches us as is);
    environment variables are not (the shell expands those, and a ``$`` may be in a name).
    An empty ``override`` is a ConfigError: it would mean the current folder.
    """
    if override is not None:
        if not str(override).strip():
            from tui_unlearn.errors import ConfigError

            raise ConfigError("--sessions-dir is empty; give a folder (or leave the option out for the default)")
        return Path(override).expanduser()
    if os.environ.get(SESSIONS_ENV):
        return Path(os.environ[SESSIONS_ENV]).expanduser()
    return _user_data_dir() / "sessions"


def models_cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where hub models are downloaded to (the Hugging Face cache layout lives below it)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(MODELS_CACHE_ENV):
        return Path(os.environ[MODELS_CACHE_ENV]).expanduser()
    return _user_cache_dir() / "models"


def logging_dir(override: str | os.PathLike | None, sessions_root: Path) -> Path:
    """Where experiment trackers write (``--logging-dir``): beside the sessions by default, in
    ``tracking/`` (a folder without summary.json, so never taken for a session)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(LOGGING_ENV):
        return Path(os.environ[LOGGING_ENV]).expanduser()
    return sessions_root / "tracking"


def is_safe_name(name: str) -> bool:
    """True if ``name`` can be used as one path component inside a folder we own.

    Letters, digits, ``.``, ``_`` and ``-`` only, not starting with a dot: no separators,
    no ``..``, nothing that escapes the folder.
    """
    return bool(_SAFE_NAME.match(name)) and ".." not in name


# Linux, macOS and Windows file systems allow 255 bytes (or UTF-16 units) a name; Linux
# refuses a whole path over 4095. A longer one fails with ENAMETOOLONG wherever it is first
# touched (even Path.exists raises it), so it is refused up front, in words.
NAME_MAX = 255
PATH_MAX = 4095


def path_problem(value: str | os.PathLike) -> str | None:
    """Why ``value`` cannot name a file on any common file system (None when it can): a
    component over ``NAME_MAX`` bytes, or the whole over ``PATH_MAX``. One check for every
    option that takes a path, so each says it the same way."""
    text = os.fspath(value)
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate with no byte to stand for
        return "is not a valid path (it holds a character that is not text); retype it"
    if len(raw) > PATH_MAX:
        return f"is {len(raw)} bytes long, over the {PATH_MAX} a path may have; use a shorter path"
    longest = max(raw.replace(b"\\", b"/").split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        shown = os.fsdecode(longest[:24]) + "..."
        return (
            f"has a name of {len(longest)} bytes ({shown}), over the {NAME_MAX} a file system allows; "
            "use a shorter file or folder name"
        )
    return None
