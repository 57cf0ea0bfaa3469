"""The memory plan (``tui-unlearn plan``) against the peak memory real runs reach on this CPU.

    .venv/bin/python bench/bench_memplan.py [--quick] [--only TEXT] [--repeats N] [--markdown]

Each case is a short real run (the engine's ``run``: load, evaluate before, prepare, 3 training
steps, evaluate after) in a fresh subprocess, on the bundled tiny model and two random-init
Llama models built here (about 20 M and 70 M parameters, with a BPE tokenizer trained on the
bench's data, saved as safetensors). The data are question/answer records whose answers are
long enough to fill ``--max-length``, so training batches are as long as the plan counts them.
Measured: the process's peak RSS (``ru_maxrss``) minus its RSS once torch, transformers and
tui_unlearn are imported (the bare process). Estimated: ``memplan.make_plan`` for the same
config on ``--device cpu``, single process: its peak less nothing (the plan's runtime
overhead line is part of the estimate). Prints estimated, measured and their ratio.
The first case, a 0.1 M-parameter model, measures the runtime overhead alone (the plan's
``memplan.RUNTIME_OVERHEAD["cpu"]`` was set from it; the other cases validate).
``--quick`` runs the micro and the bundled model alone.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, markdown, report, run_worker  # noqa: E402

# name -> (hidden, intermediate, layers, heads, kv heads, vocab, tied embeddings)
MODELS = {
    "llama-micro": (32, 64, 2, 2, 2, 1024, True),  # no tensor of note: the runtime overhead alone
    "llama-20m": (512, 1408, 5, 8, 4, 8192, True),
    "llama-70m": (768, 2048, 8, 12, 12, 8192, False),
}
# (label, model, extra settings)
CASES = [
    ("llama-micro (runtime overhead)", "llama-micro", {}),
    ("tiny-authors grad_diff", "tiny-authors", {}),
    ("tiny-authors npo", "tiny-authors", {"algorithm": "npo"}),
    ("llama-20m grad_diff", "llama-20m", {}),
    ("llama-20m npo + checkpointing", "llama-20m", {"algorithm": "npo", "gradient_checkpointing": True}),
    ("llama-70m grad_diff", "llama-70m", {}),
    ("llama-70m grad_diff, --kl-retain", "llama-70m", {"kl_retain": 1.0}),
]
SETTINGS = {
    "device": "cpu",
    "steps": 3,
    "batch_size": 4,
    "max_length": 128,
    "eval_every": 0,
    "eval_samples": 8,
    "probe_samples": 8,
    "max_new_tokens": 8,
    "oracle": "none",
    "eval_cache": False,
    "threads": 1,
}
WORDS = (
    "the a river author wrote novel about winter garden city silver letter mother journey old house "
    "quiet night painter story years light small town music book prize early work sea island"
).split()


def write_data(folder: Path) -> tuple[str, str]:
    """Forget and retain sets of 24 question/answer records whose answers run past 128 tokens."""
    rng = random.Random(0)
    paths = []
    for name in ("forget", "retain"):
        rows = [
            {"question": f"Tell me about item {i} of the {name} set.", "answer": " ".join(rng.choices(WORDS, k=220))}
            for i in range(24)
        ]
        path = folder / f"{name}.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths[0], paths[1]


def build_model(folder: Path, name: str, texts: list[str]) -> str:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tui_unlearn.models.build_tiny import train_tokenizer

    hidden, inner, layers, heads, kv, vocab, tied = MODELS[name]
    out = folder / name
    tokenizer = train_tokenizer(texts, vocab)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inner,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=1024,
        tie_word_embeddings=tied,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


# Imported by a run after its start (lazily): part of the bare process, not of the run's memory.
LAZY_IMPORTS = ("accelerate", "scipy.stats", "rouge_score.rouge_scorer", "nltk", "sympy", "safetensors.torch", "peft")


def bare_process() -> None:
    """Import what a run imports (every tui_unlearn module but the TUI's, and the libraries
    they import lazily), so the baseline RSS holds code, not the run's data."""
    import importlib
    import pkgutil

    import tui_unlearn

    for found in pkgutil.walk_packages(tui_unlearn.__path__, "tui_unlearn."):
        if not found.name.startswith(("tui_unlearn.tui", "tui_unlearn.__main__")):
            importlib.import_module(found.name)
    for name in LAZY_IMPORTS:
        importlib.import_module(name)


def worker(spec: dict) -> None:
    import psutil

    bare_process()
    from tui_unlearn.config import RunConfig
    from tui_unlearn.engine import run

    bare = psutil.Process().memory_info().rss
    start = time.perf_counter()
    result = run(RunConfig(**spec["config"]), sessions_dir=spec["sessions"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    report({"status": result.status, "bare": bare, "peak": peak, "seconds": time.perf_counter() - start})


def estimate(config: dict) -> tuple[int, str]:
    from tui_unlearn.config import RunConfig, resolve
    from tui_unlearn.memplan import make_plan

    plan = make_plan(resolve(RunConfig(**config)), devices=1).plans["single"]
    return plan.peak, plan.peak_phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the micro and the bundled model only")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--only", metavar="TEXT", help="the cases whose label contains TEXT")
    parser.add_argument("--repeats", type=int, default=1, metavar="N", help="run each case N times")
    parser.add_argument("--estimate-only", action="store_true", help="print the plan's estimates, run nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    sys.path.insert(0, str(ROOT))
    cases = [c for c in CASES if not args.quick or c[1] in ("tiny-authors", "llama-micro")]
    cases = [c for c in cases if not args.only or args.only in c[0]] * max(1, args.repeats)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memplan-") as tmp:
        folder = Path(tmp)
        forget, retain = write_data(folder)
        texts = [line for path in (forget, retain) for line in Path(path).read_text().splitlines()]
        built = {name: build_model(folder, name, texts) for name in sorted({c[1] for c in cases}) if name in MODELS}
        for label, model, extra in cases:
            config = {**SETTINGS, **extra, "model": built.get(model, model), "forget": forget, "retain": retain}
            estimated, phase = estimate(config)
            if args.estimate_only:
                print(f"{label}: estimated {estimated / 2**20:.0f} MiB ({phase})", flush=True)
                continue
            sessions = folder / "sessions"
            got = run_worker(Path(__file__), ["--worker", json.dumps({"config": config, "sessions": str(sessions)})])
            measured = got["peak"] - got["bare"]
            ratio = estimated / measured
            print(
                f"{label}: estimated {estimated / 2**20:.0f} MiB ({phase}), measured {measured / 2**20:.0f} MiB "
                f"above a bare {got['bare'] / 2**20:.0f} MiB, ratio {ratio:.2f} ({got['seconds']:.0f} s, {got['status']})",
                file=sys.stderr,
                flush=True,
            )
            rows.append((label, f"{estimated / 2**20:.0f}", f"{measured / 2**20:.0f}", f"{ratio:.2f}", phase))
    headers = (
        "run (3 steps, batch 4 x 128 tokens, CPU fp32)",
        "estimated MiB",
        "measured MiB",
        "est / meas",
        "peak phase",
    )
    if args.markdown:
        print(markdown(headers, rows))
    else:
        for row in rows:
            print("  ".join(str(c) for c in row))


if __name__ == "__main__":
    main()
