"""Where a default ``tui-unlearn --batch`` run spends its time, with its caches cold and warm.

    .venv/bin/python bench/bench_run.py [--repeats 3] [--steps 60]

Runs the README's default job (grad_diff on the bundled forget10) as a subprocess and times
each phase from the moment each ``--jsonl`` event arrives: start and imports, data, model,
the oracle, evaluation before, training steps, evaluations during training, evaluation
after, and the exit after the last event. Two configurations, interleaved so a busy machine
slows both alike:

- ``cold``: a fresh sessions folder and ``--no-eval-cache``: nothing cached (what every run
  paid before the caches existed);
- ``warm``: a sessions folder that already holds the oracle's and the before-evaluation's
  cache entries (every rerun of a method on the same model and data, every sweep trial).

Prints the phase table (medians) and the ratio warm / cold of the whole wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = (
    ("start and imports", None),
    ("data load", "loading data"),
    ("model load", "loading model"),
    ("oracle", "oracle:"),
    ("evaluation before", "evaluating (before)"),
    ("training steps", "unlearning with"),
    ("evaluation after", "evaluating (after)"),
    ("exit after the last event", "__finished__"),
)


def run_once(sessions: Path, steps: int, extra: list[str]) -> dict[str, float]:
    """Seconds per phase of one run (evaluations during training counted apart)."""
    cmd = [
        sys.executable,
        "-m",
        "tui_unlearn",
        "--batch",
        "--jsonl",
        "--sessions-dir",
        str(sessions),
        "--steps",
        str(steps),
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    marks: list[tuple[float, str]] = [(start, "start and imports")]
    during, during_started = 0.0, None
    for line in proc.stdout:
        now = time.monotonic()
        event = json.loads(line)
        kind = event.get("event")
        if kind == "log":
            message = event["message"]
            if message.startswith("evaluating (during)"):
                during_started = now
                continue
            for phase, prefix in PHASES:
                if prefix and message.startswith(prefix) and marks[-1][1] != phase:
                    marks.append((now, phase))
        elif kind == "step" and during_started is not None:
            during += now - during_started
            during_started = None
        elif kind == "probes" and during_started is not None:
            during += now - during_started  # the probes that follow an evaluation are part of it
            during_started = None
        elif kind in ("finished", "failed"):
            marks.append((now, "exit after the last event"))
    proc.wait()
    end = time.monotonic()
    if proc.returncode != 0:
        raise SystemExit(f"the run failed (exit {proc.returncode}): {' '.join(cmd)}")
    out = {phase: 0.0 for phase, _ in PHASES}
    for (t0, phase), (t1, _) in zip(marks, marks[1:] + [(end, "")]):
        out[phase] += t1 - t0
    out["training steps"] -= during
    out["evaluations during training"] = during
    out["total"] = end - start
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = Path(tmp) / "warm"
        run_once(warm_dir, args.steps, [])  # fill the warm folder's caches
        for i in range(args.repeats):
            results["cold"].append(run_once(Path(tmp) / f"cold{i}", args.steps, ["--no-eval-cache"]))
            results["warm"].append(run_once(warm_dir, args.steps, []))
    phases = [phase for phase, _ in PHASES] + ["evaluations during training", "total"]
    median = {name: {p: statistics.median(r[p] for r in runs) for p in phases} for name, runs in results.items()}
    print(f"default --batch run ({args.steps} steps), medians of {args.repeats} interleaved repeats, seconds")
    print("| phase | cold | share | warm | share |")
    print("| --- | --- | --- | --- | --- |")
    for phase in phases:
        cold, warm = median["cold"][phase], median["warm"][phase]
        print(
            f"| {phase} | {cold:.2f} | {cold / median['cold']['total']:.0%} | {warm:.2f} | "
            f"{warm / median['warm']['total']:.0%} |"
        )
    ratio = median["warm"]["total"] / median["cold"]["total"]
    print(f"\nwarm / cold wall time: {ratio:.2f} (goal: <= 0.60)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average while measuring: {load:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
