"""Peak RSS and time of a short LoRA run on a real chat model, with glibc's mmap threshold left
to itself and fixed by ``MALLOC_MMAP_THRESHOLD_``, side by side (issue 18: a LoRA run on
SmolLM2-135M must stay within 2 GB).

    .venv/bin/python bench/bench_host_memory.py [--thresholds 131072,1048576] [--steps 2] [--eval-every 1] [--repeats 1]

glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), so one step
into a run most tensors come from the heap, which fragments and keeps what they free resident.
A fixed threshold maps and unmaps every larger block whole: less resident memory, more page
faults. Measured 2026-12-08, nothing else running, 2 steps evaluated at step 1 (one run each):
default 1791 MB / 97 s; 128 KiB 1434 MB (0.80x) / 130 s (1.34x); 1 MiB 1652 MB (0.92x) / 114 s
(1.18x); 4 MiB 1849 MB / 101 s. So the project leaves glibc's default and docs/scale.md names
the setting for a user short of memory.

Each run is a fresh subprocess (``bench_run.run_once``: peak RSS is the process's
``ru_maxrss``): NPO with ``--lora-r 8`` (checkpointing on, the default with LoRA) on
``own_model_data``'s capitals (8 to forget, 14 retain, 6 holdout), 2 threads. A first run fills
the sessions folder's caches (the original's answers to the general prompts and the probe, the
"before" evaluation), so the measured runs compare training and its evaluations. The settings
rotate from repeat to repeat; ratios are against the default of the same repeat.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run import run_once  # noqa: E402
from own_model_data import CAPITALS, gguf_path, write_split  # noqa: E402

VARIABLE = "MALLOC_MMAP_THRESHOLD_"


def measured(sessions: Path, steps: int, extra: list[str], threshold: str) -> dict[str, float]:
    saved = os.environ.pop(VARIABLE, None)
    if threshold != "default":
        os.environ[VARIABLE] = threshold
    try:
        return run_once(sessions, steps, extra, threads=2)
    finally:
        os.environ.pop(VARIABLE, None)
        if saved is not None:
            os.environ[VARIABLE] = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--thresholds", default="131072,1048576", help="bytes, comma-separated")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()
    settings = ["default", *opts.thresholds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        forget = write_split(folder / "forget.jsonl", CAPITALS[:8])
        retain = write_split(folder / "retain.jsonl", CAPITALS[8:22])
        holdout = write_split(folder / "holdout.jsonl", CAPITALS[22:])
        extra = ["--model", str(gguf_path()), "--forget", str(forget), "--retain", str(retain)]
        extra += ["--holdout", str(holdout), "--algorithm", "npo", "--lora-r", "8", "--threads", "2"]
        extra += ["--relearn", "0", "--eval-every", str(opts.eval_every)]
        sessions = folder / "sessions"
        measured(sessions, 1, extra, "default")  # fills the caches every measured run reads
        print("| repeat | threshold | peak RSS MB | x default | wall s | x default |")
        print("|---|---|---|---|---|---|")
        for i in range(opts.repeats):
            order = settings[i % len(settings) :] + settings[: i % len(settings)]
            got = {name: measured(sessions, opts.steps, extra, name) for name in order}
            base = got["default"]
            for name in settings:
                rss, wall = got[name]["peak RSS MB"], got[name]["total"]
                print(
                    f"| {i + 1} | {name} | {rss:.0f} | {rss / base['peak RSS MB']:.2f} | {wall:.0f} | "
                    f"{wall / base['total']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
