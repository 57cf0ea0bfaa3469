"""How a message names a run setting so that both faces' users can act on it.

The engine's hints ("a lower --lr", "give --retain") reach a CLI user and a TUI user alike.
A flag alone sends the TUI user looking for a command line; the form's field name alone
means nothing at a shell. :func:`setting_name` gives both where the TUI has a field for the
setting (``--lr (lr in the Algorithm tab)``), the flag alone where it does not (those are
flags of the TUI's own command line too).
"""

from __future__ import annotations

from typing import Any

from tui_unlearn.config import SETTINGS
from tui_unlearn.params import TUI

# Settings the TUI edits in their own tab rather than as Algorithm-tab knobs.
OWN_TAB = {
    "model": "Model",
    "device": "Model",
    "dtype": "Model",
    "forget": "Data",
    "retain": "Data",
    "holdout": "Data",
}


def flag(name: str, value: Any = None) -> str:
    """The command-line flag of run setting (or method hyperparameter) ``name``, with ``value``."""
    param = SETTINGS.get(name)
    # A method's hyperparameters are flags named after them (and fields of the Algorithm tab).
    option = param.option if param is not None else "--" + name.replace("_", "-")
    return option if value is None else f"{option} {value}"


def _tab(name: str) -> str | None:
    param = SETTINGS.get(name)
    if name in OWN_TAB:
        return OWN_TAB[name]
    return "Algorithm" if param is None or param.shows_in(TUI) else None


def tui_fields(*names: str) -> str:
    """Where the TUI edits these settings, e.g. "retain in the Data tab; lr, steps in the
    Algorithm tab"; "" when it has a field for none of them."""
    by_tab: dict[str, list[str]] = {}
    for name in names:
        tab = _tab(name)
        if tab is not None:
            by_tab.setdefault(tab, []).append(name)
    return "; ".join(f"{', '.join(fields)} in the {tab} tab" for tab, fields in by_tab.items())


def setting_name(name: str, value: Any = None) -> str:
    """Run setting (or method hyperparameter) ``name`` as a message names it, with ``value`` if
    given: ``--lr (lr in the Algorithm tab)``, ``--retain (retain in the Data tab)``,
    ``--guard-general 0`` (no TUI field: a flag of the TUI's command line too)."""
    where = tui_fields(name)
    return flag(name, value) + (f" ({where})" if where else "")


def in_the_tui(*names: str) -> str:
    """ " (in the TUI: ...)" naming where the TUI edits ``names``, or "" for none: appended to a
    hint that names several flags, so one parenthesis serves them all."""
    where = tui_fields(*names)
    return f" (in the TUI: {where})" if where else ""
