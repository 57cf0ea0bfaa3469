"""What the training benchmarks share: random-init models, subprocess workers, interleaved
repetitions and the machine's load.

Every benchmark here prints ratios of measurements taken in the same run, configuration
after configuration in rotating order, never absolute targets: the machine is shared, so
only numbers measured side by side compare.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tui_unlearn, not an installed one
TOFU = Path(os.environ.get("TUI_UNLEARN_TOFU_DIR", "/work/shared/datasets/tofu"))
RESULT_PREFIX = "BENCH-RESULT "  # the one stdout line a worker's result is on

# Random-init Llama sizes (hidden, intermediate, layers, heads, vocab). "30m" is the smallest
# size at which the weights, not Python overhead, dominate a CPU step.
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "30m": (512, 1536, 8, 8, 8192),
    "1b": (2048, 5632, 16, 16, 32000),
    "smoke": (64, 128, 2, 2, 512),
}


def tofu_sources() -> tuple[str, str] | None:
    """(forget, retain) files of the real TOFU data (forget01 / retain99: the smallest forget set keeps
    NPO's one-off reference cache short), or None when they are not on this machine."""
    forget, retain = TOFU / "forget01.json", TOFU / "retain99.json"
    return (str(forget), str(retain)) if forget.exists() and retain.exists() else None


def corpus_texts(forget: str, retain: str) -> list[str]:
    """Questions and answers of both sets, for training a tokenizer on the data it will see."""
    from tui_unlearn.data.loading import load_split

    records = load_split(forget, "forget").records + load_split(retain, "retain").records
    return [f"{r['question']} {r['answer']}" for r in records]


def build_random_llama(
    folder: Path, size: str, texts: Sequence[str], dtype: str = "float32", device: str = "cpu"
) -> int:
    """Save a random-init Llama of ``size`` and a BPE tokenizer trained on ``texts`` in ``folder``.

    Returns the parameter count. The tokenizer's vocabulary is what BPE reaches on
    ``texts`` (at most the size's vocab); the embedding matrix is padded up to the size's
    vocab so the parameter count does not depend on the corpus. ``device``: where the
    weights are initialised (a GPU makes a 1 B model in seconds).
    """
    import torch
    from transformers import LlamaForCausalLM

    from tui_unlearn.models.build_tiny import tiny_llama_config, train_tokenizer

    hidden, intermediate, layers, heads, vocab = SIZES[size]
    tokenizer = train_tokenizer(texts, vocab)
    config = tiny_llama_config(
        tokenizer,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_layers=layers,
        num_heads=heads,
        max_positions=1024,
    )
    config.vocab_size = max(vocab, len(tokenizer))
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def run_worker(
    script: Path, args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 900
) -> dict[str, Any]:
    """Run ``script ARGS`` in a fresh interpreter and return the JSON it reports."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False, env=full_env, timeout=timeout
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise RuntimeError(f"worker {' '.join(args)} failed (exit {proc.returncode}):\n" + "\n".join(tail))


def report(result: dict[str, Any]) -> None:
    """A worker's result, as the one line :func:`run_worker` reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def interleaved(
    names: Sequence[str],
    reps: int,
    measure: Callable[[str, int], dict[str, Any]],
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
) -> dict[str, list[dict[str, Any]]]:
    """``measure(name, rep)`` for every name, ``reps`` times, the order rotated each repetition
    so no configuration always runs first (or always right after the same neighbour)."""
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in list(names[k:]) + list(names[:k]):
            result = measure(name, rep)
            out[name].append(result)
            log(
                f"  rep {rep + 1}/{reps} {name}: "
                + ", ".join(
                    f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in result.items()
                    if not isinstance(value, (list, dict))
                )
            )
    return out


def median(values: Sequence[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def paired_ratio(a: Sequence[dict], b: Sequence[dict], key: str) -> float | None:
    """Median over repetitions of a[rep][key] / b[rep][key] (each pair measured minutes apart)."""
    ratios = [x[key] / y[key] for x, y in zip(a, b) if x.get(key) and y.get(key)]
    return statistics.median(ratios) if ratios else None


def load_average() -> str:
    """The 1/5/15-minute load averages and the core count, for the record."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "load average unavailable"
    return f"load average {one} / {five} / {fifteen} on {os.cpu_count()} cores"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"
