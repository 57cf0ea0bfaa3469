"""The typed configuration of one run: loaded from a file, overridden by flags, saved in every session.

``RunConfig`` holds what the user asked for; ``resolve()`` fills the defaults that
depend on other fields (a method's own learning rate, the bundled retain set that goes
with a bundled forget split) and validates everything, so a session's ``config.json``
is exactly what ran and can be fed back with ``--config`` to reproduce it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tui_unlearn.errors import ConfigError

DEFAULT_MODEL = "tiny-authors"
DEFAULT_FORGET = "bundled:forget10"
DEFAULT_ALGORITHM = "grad_diff"
# The retain-only oracle used for forget quality and privacy leakage on the bundled benchmark.
DEFAULT_ORACLE = "tiny-authors-retain"
DEFAULT_ORACLE_FORGET = "bundled:forget10"

# Run-level defaults for knobs a method may override through ``Algorithm.run_defaults``.
RUN_DEFAULTS: dict[str, Any] = {"steps": 60, "lr": 5e-4, "batch_size": 8}


@dataclass
class RunConfig:
    model: str = DEFAULT_MODEL
    forget: str = DEFAULT_FORGET
    retain: str | None = None  # None: the bundled retain set when forget or model is bundled
    holdout: str | None = None  # None: the bundled holdout when forget or model is bundled
    algorithm: str = DEFAULT_ALGORITHM
    hparams: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None  # None: the method's default
    lr: float | None = None
    batch_size: int | None = None
    seed: int = 0
    eval_every: int = 10  # steps between evaluations during the run (0 = only before/after)
    eval_samples: int = 100  # records per split in the before/after evaluation (0 = all)
    probe_samples: int = 32  # records per split in evaluations during the run
    max_length: int = 256  # tokens per training example
    max_new_tokens: int = 48
    # Regularisers usable with any method (0 = off).
    l2_anchor: float = 0.0  # weight of ||theta - theta_original||^2
    kl_retain: float = 0.0  # weight of KL(original || model) on retain batches
    dropout: float = 0.0  # dropout on every block's output while unlearning
    grad_clip: float = 1.0
    probes: list[str] = field(default_factory=list)  # extra questions to watch
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    trust_remote_code: bool = False
    save_model: bool = False
    models_cache: str | None = None
    # Field metrics against a retain-only oracle: a model spec, a saved eval session (id or
    # folder), or "none". None: the bundled tiny-authors-retain when forget is bundled:forget10.
    oracle: str | None = None
    relearn_steps: int = 0  # relearning check after unlearning (0 = off)
    relearn_lr: float = 1e-3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "RunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def with_overrides(self, **overrides: Any) -> "RunConfig":
        """A copy with every override that is not None applied (flags win over files)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "hparams" in given:
            given["hparams"] = {**self.hparams, **given["hparams"]}
        return replace(self, **given)


def load_config_file(path: str | Path) -> RunConfig:
    """A RunConfig from a ``.json`` or ``.toml`` file (a session's config.json works)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; check the path given to --config")
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold an object of settings")
    data.pop("_resolved", None)
    return RunConfig.from_dict(data, source=str(p))


def is_bundled_source(spec: str | None) -> bool:
    return bool(spec) and spec.startswith("bundled:")


def resolve(config: RunConfig) -> RunConfig:
    """Fill dependent defaults and validate; raises ConfigError with a one-line message."""
    from tui_unlearn.algorithms import get_algorithm
    from tui_unlearn.models.bundled import is_bundled

    algorithm = get_algorithm(config.algorithm)
    hparams = algorithm.parse_hparams(config.hparams)
    run = {**RUN_DEFAULTS, **algorithm.run_defaults}
    steps = config.steps if config.steps is not None else run["steps"]
    lr = config.lr if config.lr is not None else run["lr"]
    batch_size = config.batch_size if config.batch_size is not None else run["batch_size"]

    _positive_int("steps", steps)
    _positive_int("batch_size", batch_size)
    _positive_int("max_length", config.max_length, minimum=8)
    _positive_int("max_new_tokens", config.max_new_tokens)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0 or lr != lr or lr == float("inf"):
        raise ConfigError(f"lr must be a positive number, got {lr!r}")
    for name in ("eval_every", "eval_samples", "probe_samples"):
        _positive_int(name, getattr(config, name), minimum=0)
    for name in ("l2_anchor", "kl_retain", "grad_clip"):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
    if not (0.0 <= config.dropout < 1.0):
        raise ConfigError(f"dropout must be in [0, 1), got {config.dropout!r}")
    if config.dtype not in {"auto", "float32", "bfloat16", "float16"}:
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {config.dtype!r}")

    bundled = is_bundled_source(config.forget) or is_bundled(config.model)
    retain, holdout = config.retain, config.holdout
    if retain is None and bundled:
        from tui_unlearn.data.benchmark import default_retain_for

        split = config.forget.split(":", 1)[1] if is_bundled_source(config.forget) else "forget10"
        retain = f"bundled:{default_retain_for(split)}" if split.startswith("forget") else "bundled:retain90"
    if holdout is None and bundled:
        holdout = "bundled:holdout"
    if algorithm.needs_retain and not retain:
        raise ConfigError(f"{algorithm.name} needs a retain set: pass --retain PATH")
    _positive_int("relearn_steps", config.relearn_steps, minimum=0)
    rl = config.relearn_lr
    if isinstance(rl, bool) or not isinstance(rl, (int, float)) or not rl > 0 or rl == float("inf"):
        raise ConfigError(f"relearn_lr must be a positive number, got {rl!r}")
    oracle = config.oracle
    if oracle is not None and (not isinstance(oracle, str) or not oracle.strip()):
        raise ConfigError(f"oracle must be a model, a saved eval session or 'none', got {oracle!r}")
    if oracle is None and config.forget == DEFAULT_ORACLE_FORGET:
        oracle = DEFAULT_ORACLE
    return replace(
        config,
        hparams=hparams,
        steps=int(steps),
        lr=float(lr),
        batch_size=int(batch_size),
        retain=retain or None,
        holdout=holdout or None,
        oracle=oracle,
        relearn_lr=float(rl),
    )


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {what}, got {value!r}")
