"""The "before" evaluation, cached: the same model on the same records gives the same numbers.

Every trial of a sweep, and every rerun of a method on the same model and data, starts by
evaluating the original model on the same samples. That result (aggregates, per-example
rows, truth ratios, the probe answers) is stored as JSON under ``<sessions dir>/.eval-cache/``,
keyed by what decides it: the model's weights (path, sizes and modification times of its
safetensors files), its dtype and device type, the evaluated records, the probe questions,
the evaluation settings (the batch size among them), what the recipe computes on each split
and the metric declarations of this version of tui-unlearn.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

CACHE_DIR = ".eval-cache"  # under the sessions dir; not a session (starts with a dot)
GENERAL_FOLDER = "general"  # the original's answers to the general prompts (metrics.general), beside them
KNOWLEDGE_FOLDER = "knowledge"  # the original's answers to the world-knowledge probe (metrics.knowledge)


def model_fingerprint(folder: Path) -> str | None:
    """Path, size and mtime of every safetensors file of a local model folder, or of the
    file itself for a single-file model (a .gguf); None when there is none."""
    try:
        path = Path(folder)
        files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
        parts = [str(path.resolve())] + [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
    except OSError:
        return None
    return "|".join(parts) if files else None


def cache_key(ctx: Any, probes: list[str]) -> str | None:
    """The cache key of the run's "before" evaluation, or None when it cannot be cached."""
    from tui_unlearn import __version__
    from tui_unlearn.metrics.registry import all_metrics

    loaded = ctx.loaded
    fingerprint = model_fingerprint(loaded.path)
    if fingerprint is None:
        return None
    plan = getattr(ctx, "plan", None)
    # The recipe's plan names every evaluated record and setting; without one, the run's splits.
    evaluated: Any = (
        ctx.splits
        if plan is None
        else [
            plan.recipe.name,
            plan.forget_split,
            plan.max_new_tokens,
            plan.max_length,
            plan.splits,
            plan.shots,
            [dataclasses.asdict(s) for s in plan.recipe.splits],  # what each split computes
            plan.describe(),  # prompt format and first prompt, sampling, multiple-choice BOS, ...
        ]
    )
    payload = [
        __version__,
        sorted(all_metrics()),
        fingerprint,
        loaded.dtype,
        str(loaded.device).split(":")[0],
        ctx.config.max_length,
        ctx.config.max_new_tokens,
        ctx.eval_batch.size if ctx.eval_batch is not None else None,  # batches round alike
        evaluated,
        probes,
    ]
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _read(root: Path, key: str | None, folder: str = "") -> Any:
    if key is None:
        return None
    try:
        return json.loads((root / CACHE_DIR / folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent or broken: evaluate again


def _write(root: Path, key: str | None, data: dict[str, Any], folder: str = "") -> None:
    """Write the entry atomically; caching is an optimisation, so a failure is ignored."""
    if key is None:
        return
    from tui_unlearn.sessions import atomic_write_json

    try:
        (root / CACHE_DIR / folder).mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / CACHE_DIR / folder / f"{key}.json", data)
    except OSError:
        pass  # a cache that cannot be written only costs the next run this evaluation again


def load(root: Path, key: str | None) -> dict[str, Any] | None:
    data = _read(root, key)
    needed = ("aggregates", "examples", "truth_ratios", "probe_answers")
    return data if isinstance(data, dict) and all(k in data for k in needed) else None


def store(root: Path, key: str | None, result: Any, probe_answers: list[str]) -> None:
    data = {
        "aggregates": result.aggregates,
        "examples": result.examples,
        "truth_ratios": result.truth_ratios,
        "probe_answers": probe_answers,
    }
    _write(root, key, data)


def _model_key(ctx: Any, kind: str, *settings: Any) -> str | None:
    """A cache key for what the loaded model answers (``kind``) under ``settings``: this
    version, the model's weights, dtype and device type, and the evaluation batch size
    (batches round alike); None when the model's weights cannot be fingerprinted."""
    from tui_unlearn import __version__

    loaded = ctx.loaded
    fingerprint = model_fingerprint(loaded.path)
    if fingerprint is None:
        return None
    from tui_unlearn.data.formatting import prompt_key

    payload = [kind, __version__, fingerprint, loaded.dtype, str(loaded.device).split(":")[0], ctx.eval_batch.size]
    payload.append(prompt_key(loaded.tokenizer))  # the questions are asked in this format
    payload += list(settings)
    return hashlib.sha256(json.dumps(payload, default=str).encode("utf-8")).hexdigest()[:32]


def general_key(ctx: Any, prompts_file: str | None = None) -> str | None:
    """The cache key of the original's answers to a set of general prompts (default: the guard's)."""
    from tui_unlearn.metrics.general import MAX_NEW_TOKENS, PROMPTS_FILE, load_prompts

    prompts = load_prompts(prompts_file or PROMPTS_FILE)
    return _model_key(ctx, "general", ctx.plan.max_length, MAX_NEW_TOKENS, prompts)


def knowledge_key(ctx: Any) -> str | None:
    """The cache key of the original's answers to the world-knowledge probe (metrics.knowledge)."""
    from tui_unlearn.metrics.knowledge import MAX_NEW_TOKENS, load_probe, probe_fingerprint

    return _model_key(ctx, "knowledge", MAX_NEW_TOKENS, probe_fingerprint(load_probe()))


def load_knowledge(root: Path, key: str | None):
    from tui_unlearn.metrics.knowledge import ProbeReference

    return ProbeReference.from_json(_read(root, key, KNOWLEDGE_FOLDER))


def store_knowledge(root: Path, key: str | None, reference: Any) -> None:
    _write(root, key, reference.to_json(), KNOWLEDGE_FOLDER)


def load_general(root: Path, key: str | None):
    from tui_unlearn.metrics.general import GeneralReference

    return GeneralReference.from_json(_read(root, key, GENERAL_FOLDER))


def store_general(root: Path, key: str | None, reference: Any) -> None:
    _write(root, key, reference.to_json(), GENERAL_FOLDER)


def as_result(data: dict[str, Any]):
    from tui_unlearn.metrics.evaluate import EvalResult

    return EvalResult(aggregates=data["aggregates"], examples=data["examples"], truth_ratios=data["truth_ratios"])
