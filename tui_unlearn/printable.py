"""Text read from files, made safe to show on a terminal: control characters are shown,
never obeyed.

A session folder is data that may come from someone else; a string in its ``summary.json``
such as ``"\\u001b]0;pwned\\u0007"`` would retitle (or worse) the terminal that prints it.
Every face that shows such text (the CLI's tables and messages, the TUI's session rows and
followed events) passes it through here. Newlines and tabs are layout and stay.
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides and
# isolates that reorder what a reader sees ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every control character written as its escape (``\\x1b``, ``\\u202e``)."""
    return _UNSAFE.sub(_escape, text)


def printable_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string, key or value,
    through ``printable``."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(printable_data(v) for v in value)
    return value
