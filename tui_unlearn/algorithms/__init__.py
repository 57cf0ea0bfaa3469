"""The registry of unlearning methods: one module each, found by name."""

from __future__ import annotations

from tui_unlearn.algorithms.base import Algorithm, HyperParam, LossInputs
from tui_unlearn.errors import ConfigError
from tui_unlearn.plugins import METHODS, import_builtin, load_plugins

_REGISTRY: dict[str, Algorithm] = {}
_builtin_loaded = False
# The built-in methods: one module each in this package, imported by name in this order
# (the order users see). A new method's module name goes here; a plugin's comes from its
# package's entry point.
BUILTIN = (
    "finetune",
    "grad_ascent",
    "grad_diff",
    "idk",
    "distill",
    "npo",
    "simnpo",
    "dpo",
    "idk_dpo",
    "rmu",
    "wga",
    "undial",
    "satimp",
)


def register(algorithm: Algorithm) -> Algorithm:
    if algorithm.name in _REGISTRY:
        raise ValueError(f"algorithm {algorithm.name!r} registered twice")
    _REGISTRY[algorithm.name] = algorithm
    return algorithm


def _load_builtin() -> None:
    global _builtin_loaded
    _builtin_loaded = True
    # Importing a method module registers it (see tui_unlearn.plugins): the built-ins by name,
    # then the modules installed packages name as ``tui_unlearn.methods`` entry points.
    import_builtin(__name__, BUILTIN)
    load_plugins(METHODS, Algorithm, register, lambda: _REGISTRY)


def all_algorithms() -> dict[str, Algorithm]:
    if not _builtin_loaded:
        _load_builtin()
    # Built-ins in their documented order whatever imported them first, then plugins.
    names = [n for n in BUILTIN if n in _REGISTRY] + [n for n in _REGISTRY if n not in BUILTIN]
    return {n: _REGISTRY[n] for n in names}


def get_algorithm(name: str) -> Algorithm:
    algorithms = all_algorithms()
    if name not in algorithms:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(algorithms)}")
    return algorithms[name]


__all__ = ["Algorithm", "HyperParam", "LossInputs", "all_algorithms", "get_algorithm", "register"]
