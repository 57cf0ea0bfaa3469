"""The CPU threads default: training-step time of a bundled ``--batch`` run at several thread counts,
alone and beside a second identical run started at the same moment.

    python bench/bench_threads.py [--reps 3] [--steps 40]

Variants: ``--threads 1``; torch's own default (every core it sees, measured in a clean
interpreter); the project default (no ``--threads``: ``engine.runtime.default_threads()``).
Each variant runs alone, then as two identical runs launched together (the shared-machine
case: two runs in two terminals, or a run beside a test suite). The step time is read from
the run's own ``--jsonl`` step events (seconds since training began), the first
``--warmup`` steps dropped. ``OMP_NUM_THREADS`` is removed from the runs' environment so
torch's default is torch's. Repetitions rotate the order of the variants; ratios are
medians of same-repetition pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    return {**env, "PYTHONPATH": str(common.ROOT), "TOKENIZERS_PARALLELISM": "false"}


def torch_default_threads() -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
    )
    return int(out.stdout.strip())


def project_default_threads() -> int:
    from tui_unlearn.engine.runtime import available_cores, default_threads

    return default_threads(available_cores())


def batch_command(args, threads: int | None, sessions: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "tui_unlearn",
        "--batch",
        "--jsonl",
        "--sessions-dir",
        sessions,
        "--algorithm",
        args.algorithm,
        "--steps",
        str(args.steps),
        "--eval-every",
        "0",
        "--eval-samples",
        "4",
        "--max-new-tokens",
        "4",
        "--seed",
        "0",
    ]
    return cmd + (["--threads", str(threads)] if threads else [])


def step_seconds(stdout: str, warmup: int) -> float:
    """Mean seconds per training step after ``warmup`` steps, from the run's step events."""
    elapsed = [e["elapsed"] for e in map(json.loads, filter(None, stdout.splitlines())) if e.get("event") == "step"]
    if len(elapsed) <= warmup + 1:
        raise RuntimeError(f"only {len(elapsed)} step events")
    return (elapsed[-1] - elapsed[warmup]) / (len(elapsed) - 1 - warmup)


def launch(args, threads: int | None, copies: int) -> list[float]:
    """Start ``copies`` identical runs together; their step times (s)."""
    with tempfile.TemporaryDirectory() as sessions:
        procs = [
            subprocess.Popen(
                batch_command(args, threads, sessions),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(),
            )
            for _ in range(copies)
        ]
        outs = [p.communicate(timeout=1800) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"run failed (exit {p.returncode}): {err.strip().splitlines()[-1:]}")
    return [step_seconds(out, args.warmup) for out, _ in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--algorithm", default="npo")
    args = parser.parse_args()

    torch_n, project_n = torch_default_threads(), project_default_threads()
    variants = {"--threads 1": 1, f"torch default ({torch_n})": torch_n, f"project default ({project_n})": None}
    print(
        f"# bench_threads: bundled --batch {args.algorithm}, {args.steps} steps ({args.warmup} dropped), "
        f"{args.reps} interleaved repetitions; {common.load_average()} at start",
        flush=True,
    )
    cases = [(name, copies) for name in variants for copies in (1, 2)]
    labels = [f"{name} x{copies}" for name, copies in cases]

    def measure(label: str, rep: int) -> dict:
        name, copies = cases[labels.index(label)]
        t0 = time.perf_counter()
        times = launch(args, variants[name], copies)
        return {"step_s": sum(times) / len(times), "wall_s": time.perf_counter() - t0}

    results = common.interleaved(labels, args.reps, measure)
    print(f"{common.load_average()} at end\n")
    one_alone = results["--threads 1 x1"]
    rows = []
    for name in variants:
        alone, paired = results[f"{name} x1"], results[f"{name} x2"]
        rows.append(
            [
                name,
                common.fmt(common.median([r["step_s"] for r in alone]) * 1000, 0),
                common.fmt(common.median([r["step_s"] for r in paired]) * 1000, 0),
                common.fmt(common.paired_ratio(alone, one_alone, "step_s"), 2, "×"),
                common.fmt(common.paired_ratio(paired, results["--threads 1 x2"], "step_s"), 2, "×"),
                common.fmt(common.paired_ratio(paired, alone, "step_s"), 2, "×"),
            ]
        )
    print(
        common.markdown(
            [
                "threads",
                "ms/step alone",
                "ms/step, two runs at once",
                "alone vs 1 thread alone",
                "two at once vs 1 thread two at once",
                "slow-down from the second run",
            ],
            rows,
        )
    )
    print("\n(ratios are step times: above 1 is slower)")


if __name__ == "__main__":
    main()
