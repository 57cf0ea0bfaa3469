"""How methods, metrics and recipes are found: one registration path per kind, shared by
the built-ins and by other packages.

A kind's registry (``algorithms``, ``metrics.registry``, ``recipes``) holds what was
registered with its ``register(...)``; a module registers what it declares when it is
imported. The registry imports, by name:

1. its built-in modules, a list of names in its package (``BUILTIN``): their order is the
   order users see;
2. the modules (or objects) that installed packages name as Python entry points of the
   kind's group, so a lab's package adds its own without forking::

       [project.entry-points."tui_unlearn.methods"]
       my_method = "my_lab.unlearning.my_method"      # a module whose import registers it
       other = "my_lab.unlearning:OTHER_METHOD"        # or an Algorithm object, registered here

A plugin that fails to load (an import error, a name already taken, nothing registered)
is skipped with one line on stderr naming it and its error; the tool works without it.
Only the standard library is imported here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from types import ModuleType
from typing import Any

METHODS = "tui_unlearn.methods"
METRICS = "tui_unlearn.metrics"
RECIPES = "tui_unlearn.recipes"
GROUPS = (METHODS, METRICS, RECIPES)

# One line per plugin that failed to load in this process (also printed to stderr once).
PROBLEMS: list[str] = []


def import_builtin(package: str, names: Iterable[str]) -> None:
    """Import ``package.<name>`` for every name: each module registers what it declares."""
    for name in names:
        importlib.import_module(f"{package}.{name}")


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The entry points of ``group`` in every installed distribution, each once, by name."""
    seen: dict[tuple[str, str], metadata.EntryPoint] = {}
    for point in metadata.entry_points(group=group):
        seen.setdefault((point.name, point.value), point)
    return sorted(seen.values(), key=lambda point: (point.name, point.value))


def load_plugins(
    group: str,
    kind: type,
    register: Callable[[Any], Any],
    registered: Callable[[], Mapping[str, Any]],
) -> list[str]:
    """Load every entry point of ``group``; returns the names they registered.

    An entry point names a module (importing it registers, as a built-in does) or an object
    of ``kind`` (registered here unless its module's import already did). ``registered()``
    is the registry (name -> item); a plugin that adds nothing to it is reported as a problem.
    """
    added: list[str] = []
    for point in entry_points(group):
        before = set(registered())
        try:
            loaded = point.load()
            if isinstance(loaded, kind) and registered().get(getattr(loaded, "name", "")) is not loaded:
                register(loaded)  # the registry refuses a name that is taken
            elif not isinstance(loaded, (kind, ModuleType)):
                raise TypeError(f"it names a {type(loaded).__name__}, not a module or a {kind.__name__}")
            new = [name for name in registered() if name not in before]
            if not new:
                raise LookupError(f"it registered no {_noun(group)}")
        except Exception as exc:  # a plugin's own bug must not stop the tool
            _problem(group, point, exc)
            continue
        added.extend(new)
    return added


def _noun(group: str) -> str:
    return group.rsplit(".", 1)[-1].rstrip("s")


def _problem(group: str, point: metadata.EntryPoint, exc: BaseException) -> None:
    dist = getattr(point, "dist", None)
    origin = f" from {dist.name}" if dist is not None and getattr(dist, "name", None) else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = (
        f"tui-unlearn: skipped the {_noun(group)} plugin {point.name!r} ({point.value}{origin}): "
        f"{type(exc).__name__}{': ' + text if text else ''}"
    )
    PROBLEMS.append(line)
    print(line, file=sys.stderr)
