"""Training-step speed and peak memory of tui-unlearn's engine against an open-unlearning-style Trainer.

    OMP_NUM_THREADS=1 python bench/bench_train.py                  # both models, 3 repetitions
    python bench/bench_train.py --models tiny --reps 5 --threads 1

Configurations (each measured in its own fresh subprocess, in rotating order every
repetition): ours NPO full fine-tuning, ours NPO with LoRA r 8 and r 16, ours GradDiff;
the baseline NPO and GradDiff of ``bench/baseline_trainer.py`` (a ``transformers.Trainer``
with ``compute_loss`` overridden; NPO deep-copies the model as its reference and runs it
every step). Both sides get the same records, tokenisation, batch size, lr, AdamW with no
weight decay, gradient clipping at 1, float32 on CPU and the same thread count.

Models: ``tiny`` is the bundled ``tiny-authors`` on the bundled forget10/retain90;
``30m`` a random-init Llama (31.5 M parameters) on TOFU's real forget01/retain99
(falling back to the bundled benchmark where TOFU's files are absent).

Time: only the optimisation steps (data batching included, set-up excluded; the first
``--warmup`` steps dropped), as non-padding tokens per second over forget + retain.
Ours drives ``engine.phases.prepare_training`` + ``train`` on a ``RunContext`` directly
(no evaluation); NPO's one-off reference cache is set-up, reported apart.

Tokens per CPU-second (process CPU time, one thread) is printed beside wall-clock tokens
per second: on a machine shared with other work it is the steadier of the two, since time
spent waiting for a core is not counted.

Memory: peak bytes of live CPU tensors, from the allocation events of ``torch.profiler``
(``profile_memory=True``: every alloc/free of torch's CPU allocator, replayed in order),
plus the model's weights that are live when profiling starts; separate runs, since the
profiler slows steps. Peak RSS is printed beside it but not used for the ratios: glibc
keeps freed pages and its arenas make RSS depend on allocation order, not on what the run
holds. The workers are in ``bench/_train_worker.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

WORKER = Path(__file__).resolve().parent / "_train_worker.py"
CONFIGS = {  # name -> (side, algorithm, lora_r, gradient checkpointing)
    "ours npo": ("ours", "npo", 0, False),
    "ours npo lora8": ("ours", "npo", 8, False),
    "ours npo lora16": ("ours", "npo", 16, False),
    "ours grad_diff": ("ours", "grad_diff", 0, False),
    "baseline npo": ("baseline", "npo", 0, False),
    "baseline grad_diff": ("baseline", "grad_diff", 0, False),
    # Not run by default (--configs): the memory floor, at the price of recomputed activations.
    "ours npo lora16 ckpt": ("ours", "npo", 16, True),
}
DEFAULT_CONFIGS = [name for name, spec in CONFIGS.items() if not spec[3]]
BASELINE_OF = {"npo": "baseline npo", "grad_diff": "baseline grad_diff"}
GOALS = [  # (config, key, comparison, bound, what)
    ("ours npo", "tokens_per_s", ">=", 1.3, "NPO full FT tokens/s"),
    ("ours npo", "peak_live_mb", "<=", 0.85, "NPO full FT peak memory"),
    ("ours npo lora8", "peak_live_mb", "<=", 0.4, "NPO LoRA r8 peak memory"),
    ("ours npo lora16", "peak_live_mb", "<=", 0.4, "NPO LoRA r16 peak memory"),
    ("ours grad_diff", "tokens_per_s", ">=", 1.1, "GradDiff tokens/s"),
]


# ---------------------------------------------------------------- driver


def prepare_model(name: str, tmp: Path) -> tuple[str, str, str, str]:
    """(model folder, forget source, retain source, description) for a ``--models`` entry."""
    from tui_unlearn.models.bundled import bundled_model_dir

    if name == "tiny":
        return (
            str(bundled_model_dir("tiny-authors")),
            "bundled:forget10",
            "bundled:retain90",
            "bundled tiny-authors on bundled forget10/retain90",
        )
    tofu = common.tofu_sources()
    forget, retain = tofu or ("bundled:forget10", "bundled:retain90")
    folder = tmp / name
    n = common.build_random_llama(folder, name, common.corpus_texts(forget, retain))
    data = "TOFU forget01/retain99" if tofu else "bundled forget10/retain90"
    return str(folder), forget, retain, f"random-init Llama {n / 1e6:.1f} M parameters on {data}"


def measure_model(args, name: str, tmp: Path) -> None:
    model, forget, retain, what = prepare_model(name, tmp)
    steps, warmup = (args.steps, args.warmup) if name == "tiny" else (args.big_steps, args.big_warmup)
    print(f"\n## {what}\n", flush=True)
    print(
        f"batch {args.batch_size} forget + {args.batch_size} retain, {steps} steps ({warmup} dropped), "
        f"{args.threads} thread(s), lr {args.lr}, float32 on CPU; {common.load_average()} at start",
        flush=True,
    )
    names = [n for n in CONFIGS if n in args.configs]

    def one(config: str, mode: str, n_steps: int, n_warmup: int) -> dict:
        side, algorithm, lora_r, checkpointing = CONFIGS[config]
        argv = ["--checkpointing"] * checkpointing + [
            "--side",
            side,
            "--algorithm",
            algorithm,
            "--lora-r",
            str(lora_r),
            "--model",
            model,
            "--forget",
            forget,
            "--retain",
            retain,
            "--steps",
            str(n_steps),
            "--warmup",
            str(n_warmup),
            "--threads",
            str(args.threads),
            "--batch-size",
            str(args.batch_size),
            "--lr",
            str(args.lr),
            "--max-length",
            str(args.max_length),
            "--mode",
            mode,
        ]
        env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        return common.run_worker(WORKER, argv, env)

    timing = common.interleaved(names, args.reps, lambda c, rep: one(c, "time", steps, warmup))
    memory = common.interleaved(names, args.mem_reps, lambda c, rep: one(c, "memory", args.mem_steps, 0))
    print(f"{common.load_average()} at end", flush=True)

    def versus(config: str, key: str) -> float | None:
        base = BASELINE_OF[CONFIGS[config][1]]
        source = memory if key == "peak_live_mb" else timing
        return common.paired_ratio(source[config], source[base], key) if base in source else None

    rows = []
    for config in names:
        t, m = timing[config], memory[config]
        rows.append(
            [
                config,
                f"{t[0]['trainable'] / 1e6:.2f} M",
                common.fmt(common.median([r["step_s"] for r in t]) * 1000, 0),
                common.fmt(common.median([r["tokens_per_s"] for r in t]), 0),
                common.fmt(versus(config, "tokens_per_s"), 2, "×"),
                common.fmt(common.median([r["tokens_per_cpu_s"] for r in t]), 0),
                common.fmt(versus(config, "tokens_per_cpu_s"), 2, "×"),
                common.fmt(common.median([r["peak_live_mb"] for r in m]), 1),
                common.fmt(versus(config, "peak_live_mb"), 2, "×"),
                common.fmt(common.median([r["peak_rss_above_load_mb"] for r in t]), 0),
                common.fmt(common.median([r["setup_s"] for r in t]), 2),
            ]
        )
    print()
    print(
        common.markdown(
            [
                "configuration",
                "trained params",
                "ms/step",
                "tokens/s",
                "vs baseline",
                "tokens/CPU-s",
                "vs baseline",
                "peak live MiB",
                "vs baseline",
                "peak RSS above load MiB",
                "set-up s",
            ],
            rows,
        )
    )
    print()
    for config, key, op, bound, what in GOALS:
        if config not in names or BASELINE_OF[CONFIGS[config][1]] not in names:
            continue
        keys = [key, "tokens_per_cpu_s"] if key == "tokens_per_s" else [key]
        ratios = [versus(config, k) for k in keys]
        met = [
            "n/a" if r is None else "met" if (r >= bound if op == ">=" else r <= bound) else "MISSED" for r in ratios
        ]
        shown = " / ".join(f"{common.fmt(r, 2)}× ({k.replace('_', ' ')}: {m})" for r, k, m in zip(ratios, keys, met))
        print(f"- {what} vs the baseline (goal {op} {bound}×): {shown}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,30m", help="comma-separated: tiny, 30m")
    parser.add_argument(
        "--configs", default=",".join(DEFAULT_CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS)
    )
    parser.add_argument("--reps", type=int, default=3, help="timing repetitions per configuration")
    parser.add_argument("--mem-reps", type=int, default=1, help="memory repetitions per configuration")
    parser.add_argument("--steps", type=int, default=14, help="steps per timing run on the tiny model")
    parser.add_argument("--warmup", type=int, default=4, help="first steps not timed (tiny model)")
    parser.add_argument("--big-steps", type=int, default=5, help="steps per timing run on the 30M model")
    parser.add_argument("--big-warmup", type=int, default=1)
    parser.add_argument("--mem-steps", type=int, default=3, help="steps profiled for memory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    args.configs = [c.strip() for c in args.configs.split(",")]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(unknown)}")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(
        f"# bench_train: ours vs an open-unlearning-style Trainer ({args.reps} interleaved repetitions, "
        "ratios are medians of same-repetition pairs)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            measure_model(args, name.strip(), Path(tmp))


if __name__ == "__main__":
    main()
