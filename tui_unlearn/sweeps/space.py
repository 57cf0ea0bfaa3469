"""What a sweep varies: a grid of given values, or ranges a sampler draws from.

Every swept name is either one of the method's hyperparameters or a run setting (``lr``,
``steps``, ``l2_anchor``, ...); values are read with that declaration's own rules, so a
trial's config is as valid as one typed on the command line.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from tui_unlearn.algorithms.base import Algorithm, Search
from tui_unlearn.errors import ConfigError
from tui_unlearn.params import Param

# Settings a sweep must not vary: they define the sweep (what is unlearned, from what, how judged).
FIXED = (
    "model",
    "forget",
    "retain",
    "holdout",
    "algorithm",
    "hparams",
    "oracle",
    "device",
    "dtype",
    "models_cache",
    "trust_remote_code",
    "probes",
    "lora_targets",
    "save_model",
    "save_adapter",
)


def declaration(algorithm: Algorithm, name: str) -> tuple[str, Param]:
    """("hparam" | "setting", its Param) for a swept ``name``; ConfigError when it cannot vary."""
    from tui_unlearn.config import SETTINGS

    for p in algorithm.hyperparams:
        if p.name == name:
            return "hparam", p
    if name in SETTINGS and name not in FIXED and SETTINGS[name].type in ("int", "float", "bool", "str"):
        return "setting", SETTINGS[name]
    names = [p.name for p in algorithm.hyperparams] + ["lr", "steps", "batch_size", "..."]
    raise ConfigError(f"a {algorithm.name} sweep cannot vary {name!r}; it can vary: {', '.join(names)}")


def parse_grid(algorithm: Algorithm, items: list[str]) -> dict[str, list[Any]]:
    """``["beta=0.05,0.1", "lr=1e-4,3e-4"]`` -> {name: [typed values]} in the order given."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ConfigError(f"--grid {item!r}: write NAME=V1,V2,... (e.g. --grid beta=0.05,0.1,0.5)")
        if name in grid:
            raise ConfigError(f"--grid names {name!r} twice; give all its values in one --grid")
        _, param = declaration(algorithm, name)
        grid[name] = [param.parse(v.strip()) for v in values.split(",") if v.strip()]
        if not grid[name]:  # "beta=," would make a grid of no points: a sweep that runs nothing
            raise ConfigError(f"--grid {item!r} lists no values; write NAME=V1,V2,... (e.g. --grid {name}=0.05,0.1)")
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination, the first name varying slowest."""
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def parse_space(algorithm: Algorithm, items: list[str]) -> dict[str, Search]:
    """``["beta=0.01:1:log", "target=refusal|counterfactual"]`` -> {name: Search}."""
    space: dict[str, Search] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not spec.strip():
            raise ConfigError(f"--space {item!r}: write NAME=LOW:HIGH[:log] or NAME=A|B|C")
        _, param = declaration(algorithm, name)
        if "|" in spec or param.type in ("str", "bool"):
            space[name] = Search(choices=tuple(param.parse(c.strip()) for c in spec.split("|") if c.strip()))
            continue
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
            raise ConfigError(f"--space {item!r}: write NAME=LOW:HIGH or NAME=LOW:HIGH:log")
        low, high = param.parse(parts[0]), param.parse(parts[1])
        if not low < high:
            raise ConfigError(f"--space {item!r}: LOW must be below HIGH")
        log = len(parts) == 3
        if log and low <= 0:
            raise ConfigError(f"--space {item!r}: a log range needs LOW > 0")
        space[name] = Search(float(low), float(high), log=log, integer=param.type == "int")
    return space


def default_space(algorithm: Algorithm, lr: float) -> dict[str, Search]:
    """The method's declared search space; for methods without one, a factor of 5 around
    each positive float hyperparameter's default (within its valid range) and a factor of 3
    around the learning rate."""
    if algorithm.search_space:
        return dict(algorithm.search_space)
    space: dict[str, Search] = {}
    for p in algorithm.hyperparams:
        if p.choices:
            space[p.name] = Search(choices=tuple(p.choices))
        elif p.type == "float" and p.default and p.default > 0:
            low = max(p.default / 5, p.min if p.min is not None and p.min > 0 else 0.0)
            high = min(p.default * 5, p.max if p.max is not None else float("inf"))
            if low < high:
                space[p.name] = Search(low, high, log=low > 0)
    space["lr"] = Search(lr / 3, lr * 3, log=True)
    return space


def optuna_distributions(space: dict[str, Search]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, s in space.items():
        if s.choices:
            out[name] = CategoricalDistribution(list(s.choices))
        elif s.low is None or s.high is None:
            raise ConfigError(f"the search space of {name} has neither a range nor choices")
        elif s.integer:
            out[name] = IntDistribution(int(s.low), int(s.high), log=s.log)
        else:
            out[name] = FloatDistribution(float(s.low), float(s.high), log=s.log)
    return out


def trial_config(base: Any, algorithm: Algorithm, point: dict[str, Any]) -> Any:
    """``base`` (a RunConfig) with the point's settings and hyperparameters applied."""
    settings: dict[str, Any] = {}
    hparams: dict[str, Any] = {}
    for name, value in point.items():
        kind, param = declaration(algorithm, name)
        (hparams if kind == "hparam" else settings)[name] = param.parse(value)
    return base.with_overrides(hparams=hparams or None, **settings)


def describe(space: dict[str, Search] | dict[str, list[Any]]) -> dict[str, Any]:
    """A JSON-able description (the sweep's identity and its sweep.json)."""
    return {name: (s.describe() if isinstance(s, Search) else list(s)) for name, s in space.items()}


def short_value(value: Any) -> str:
    """A swept value in as few characters as reads well: ``1e-4`` (not ``0.0001``), ``3e-5``,
    ``0.1``, ``2.5e-4``; three significant digits (a sampler draws ``3.4567891e-05``: a legend
    needs ``3.46e-5``); integers and words as they are."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    plain = f"{value:.3g}"
    mantissa, _, exponent = f"{value:.2e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    scientific = f"{mantissa}e{int(exponent)}"
    return scientific if len(scientific) < len(plain) else plain


def point_label(point: dict[str, Any]) -> str:
    """A trial's swept values, short enough for a legend or a column: ``lr=1e-4 beta=0.1``."""
    return " ".join(f"{name}={short_value(value)}" for name, value in point.items())
