"""Peak RSS of a short LoRA run on a real chat model, this checkout against another revision,
side by side (issue 18: a LoRA run on SmolLM2-135M must stay within 2 GB).

    .venv/bin/python bench/bench_host_memory.py [--against REV] [--steps 4] [--eval-every 2] [--repeats 1]

Each run is a fresh subprocess (``bench_run.run_once``: peak RSS is the process's
``ru_maxrss``): NPO with ``--lora-r 8`` (checkpointing on, the default with LoRA) on
``own_model_data``'s capitals (8 to forget, 14 retain, 6 holdout), 2 threads, evaluated every
``--eval-every`` steps. The first run of each revision fills its sessions folder's caches (the
original's answers to the general prompts and the probe, the "before" evaluation), so the
measured runs compare training and its evaluations, not a first run's one-off work.
``--against REV`` (default HEAD~1) runs in a temporary git worktree; the two alternate, and
the ratios this / REV are printed per pair.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT  # noqa: E402
from bench_run import run_once  # noqa: E402
from own_model_data import CAPITALS, gguf_path, write_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="HEAD~1")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        forget = write_split(folder / "forget.jsonl", CAPITALS[:8])
        retain = write_split(folder / "retain.jsonl", CAPITALS[8:22])
        holdout = write_split(folder / "holdout.jsonl", CAPITALS[22:])
        extra = ["--model", str(gguf_path()), "--forget", str(forget), "--retain", str(retain)]
        extra += ["--holdout", str(holdout), "--algorithm", "npo", "--lora-r", "8", "--threads", "2"]
        extra += ["--relearn", "0", "--eval-every", str(opts.eval_every)]
        other = folder / "other"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(other), opts.against], cwd=ROOT, check=True)
        codes = {"this": ROOT, opts.against: other}
        try:
            for name, code in codes.items():  # fill each revision's caches
                run_once(folder / f"sessions-{name}", 1, extra, code, threads=2)
            pairs = []
            for i in range(opts.repeats):
                order = list(codes.items()) if i % 2 == 0 else list(codes.items())[::-1]
                got = {
                    name: run_once(folder / f"sessions-{name}", opts.steps, extra, code, threads=2)
                    for name, code in order
                }
                pairs.append(got)
                print(
                    f"repeat {i + 1}: peak RSS {got['this']['peak RSS MB']:.0f} MB (this) vs "
                    f"{got[opts.against]['peak RSS MB']:.0f} MB ({opts.against}): "
                    f"{got['this']['peak RSS MB'] / got[opts.against]['peak RSS MB']:.2f}x; wall "
                    f"{got['this']['total']:.0f} vs {got[opts.against]['total']:.0f} s: "
                    f"{got['this']['total'] / got[opts.against]['total']:.2f}x",
                    flush=True,
                )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
