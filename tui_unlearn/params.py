"""One declaration for every tunable value: a run setting or a method's hyperparameter.

A :class:`Param` says what a value is (type, default, range or choices, help) and where
it shows (``faces``: the main command's flags, ``eval``'s flags, the TUI's Algorithm tab).
The CLI options, the TUI form fields and the validation are all generated from it, so a
value accepted by one face is accepted by every face.

Two ways to read a value:

- :meth:`Param.parse` is lenient about *spelling*: text typed into a form or given as a
  flag ("3", "1e-4", "true") becomes the declared type;
- :meth:`Param.check` is strict about *type*: a value read from a JSON or TOML config file
  must already have the declared type (``"false"`` is not a boolean — it would be truthy,
  and that is how a config once turned on ``trust_remote_code`` by accident).

Both apply the same range and choice rules and raise ``ConfigError`` with one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tui_unlearn.errors import ConfigError, json_kind

# The faces a setting can show in.
CLI = "cli"  # the main command (--batch and the TUI's command line)
EVAL = "eval"  # the eval subcommand
TUI = "tui"  # the TUI's Algorithm tab

TYPES = ("float", "int", "bool", "str", "strlist", "dict")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
# Integers a config may hold: torch seeds and step counts stay well inside int64.
INT_LIMIT = 2**63 - 1


@dataclass(frozen=True)
class Param:
    """One tunable value.

    ``type`` is "float" | "int" | "bool" | "str" | "strlist" (a list of strings) | "dict"
    (a mapping, e.g. a method's hyperparameters, checked by its owner). ``nullable``: None is
    a valid value (meaning "not set: use the dependent default"). ``check_value`` is an
    extra rule returning an error text or None. ``flag``/``short``/``metavar`` override the
    generated option names; ``group`` is the heading the option shows under.
    """

    name: str
    type: str
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False
    faces: frozenset[str] = frozenset()
    group: str = ""
    flag: str | None = None
    short: str | None = None
    metavar: str | None = None
    check_value: Callable[[Any], str | None] | None = None
    min_exclusive: bool = False  # min itself is not allowed (a learning rate of 0)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown parameter type {self.type!r}")

    # ---- names ----
    @property
    def option(self) -> str:
        """The command-line flag, e.g. ``--batch-size``."""
        return self.flag or "--" + self.name.replace("_", "-")

    def shows_in(self, face: str) -> bool:
        return face in self.faces

    # ---- reading values ----
    def parse(self, value: Any) -> Any:
        """``value`` (text from a form or a flag, or an already typed value) as the declared
        type, checked against range and choices."""
        if value is None or (isinstance(value, str) and not value.strip() and self.nullable and self.type != "str"):
            return self._null()
        try:
            parsed = self._convert(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name} must be {self.describe_type()}, got {value!r}") from None
        return self._within(parsed)

    def check(self, value: Any) -> Any:
        """``value`` as read from a config file: it must already have the declared type."""
        if value is None:
            return self._null()
        ok = {
            "bool": lambda v: isinstance(v, bool),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "str": lambda v: isinstance(v, str),
            "strlist": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "dict": lambda v: isinstance(v, dict),
        }[self.type]
        if not ok(value):
            raise ConfigError(f"{self.name} must be {self.describe_type()}, got {json_kind(value)} {_short(value)}")
        return self._within(float(value) if self.type == "float" else value)

    def describe_type(self) -> str:
        kind = {
            "float": "a number",
            "int": "an integer",
            "bool": "true or false (a boolean, not a string)",
            "str": "a string",
            "strlist": "a list of strings",
            "dict": "an object",
        }[self.type]
        return f"{kind} or null" if self.nullable else kind

    def _null(self) -> Any:
        if not self.nullable:
            raise ConfigError(f"{self.name} must be {self.describe_type()}, got null")
        return None

    def _convert(self, value: Any) -> Any:
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError(value)
        if self.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value.strip()) if isinstance(value, str) else int(value)
        if self.type == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if self.type == "str":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(value)
            return str(value)
        if self.type == "strlist":
            if isinstance(value, str):
                return [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
                raise ValueError(value)
            return list(value)
        if not isinstance(value, dict):
            raise ValueError(value)
        return dict(value)

    def _within(self, value: Any) -> Any:
        if self.type in ("float", "int"):
            if self.type == "float" and not math.isfinite(value):
                raise ConfigError(f"{self.name} must be a finite number, got {value!r}")
            if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
                sign = ">" if self.min_exclusive else ">="
                raise ConfigError(f"{self.name} must be {sign} {_num(self.min)}, got {_num(value)}")
            if self.max is not None and value > self.max:
                raise ConfigError(f"{self.name} must be <= {_num(self.max)}, got {_num(value)}")
            # Past a declared range, the range is what to quote; beyond it, what torch can take.
            if self.type == "int" and abs(value) > INT_LIMIT:
                raise ConfigError(f"{self.name} must be at most {INT_LIMIT}, got {value}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.check_value is not None:
            problem = self.check_value(value)
            if problem:
                raise ConfigError(f"{self.name} {problem}")
        return value

    # ---- help ----
    def range_text(self) -> str:
        """``0..100``, ``>0``, ``a|b``: the allowed values in a few characters ('' when any)."""
        if self.choices:
            return "|".join(self.choices)
        if self.min is None and self.max is None:
            return ""
        if self.max is None:
            return f"{'>' if self.min_exclusive else '>='}{_num(self.min)}"
        if self.min_exclusive:
            return f">{_num(self.min)}, <={_num(self.max)}"
        lo = _num(self.min) if self.min is not None else ""
        return f"{lo}..{_num(self.max)}"

    def help_clause(self) -> str:
        """The help as a clause to follow other words: no final stop, and its first letter
        lowered unless the first word is a name or an acronym ("CPU threads", "LoRA rank")."""
        text = self.help.strip().rstrip(".")
        first = text.split(" ", 1)[0]
        if first[1:] == first[1:].lower():
            return text[:1].lower() + text[1:]
        return text


# Back-compatible name: methods declare their hyperparameters as HyperParam.
HyperParam = Param


def show_value(value: Any) -> str:
    """A value as a person types it: 0.0002 -> 2e-4 style floats, lowercase booleans."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return ""
    return str(value)


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
