"""Where a default ``tui-unlearn --batch`` run spends its time, with its caches cold and warm.

    .venv/bin/python bench/bench_run.py [--repeats 3] [--steps 60]

Runs the README's default job (grad_diff on the bundled forget10) as a subprocess and times
each phase from the moment each ``--jsonl`` event arrives: start and imports, data, model,
the oracle, evaluation before, training steps, evaluations during training, evaluation
after, and the exit after the last event. Two configurations, interleaved in rotating order so
a busy machine slows both alike:

- ``cold``: a fresh sessions folder and ``--no-eval-cache``: nothing cached (what every run
  paid before the caches existed);
- ``warm``: a sessions folder that already holds the oracle's and the before-evaluation's
  cache entries (every rerun of a method on the same model and data, every sweep trial).

With ``--baseline REV`` a third configuration runs the same job with the package as it was
at git revision REV (a temporary worktree; its own oracle cache warm, as a user's second run
has it), e.g. the revision before the caches and the start-up work: ``--baseline c947184``.

Prints the phase table (medians) and the ratios of the whole wall time, each the median of
same-repetition pairs (every repetition's ratio beside it): warm / cold, and warm / baseline.
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


def run_once(sessions: Path, steps: int, extra: list[str], code: Path = ROOT, threads: int = 1) -> dict[str, float]:
    """Seconds per phase of one run (evaluations during training counted apart) and its peak
    RSS, with the package as it is in ``code`` (a checkout of this repository)."""
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
    # One torch thread for every configuration: the project's default on 2 cores, and what
    # keeps an older revision (whose default was torch's) comparable.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(code)}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=code)
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
    _, status, usage = os.wait4(proc.pid, 0)  # its own peak RSS, not the largest of every child's
    end = time.monotonic()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the run failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(cmd)}")
    out = {phase: 0.0 for phase, _ in PHASES}
    for (t0, phase), (t1, _) in zip(marks, marks[1:] + [(end, "")]):
        out[phase] += t1 - t0
    out["training steps"] -= during
    out["evaluations during training"] = during
    out["total"] = end - start
    out["peak RSS MB"] = usage.ru_maxrss / 1024
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also time the same job with the code of git revision REV (its oracle cache warm), interleaved",
    )
    args = parser.parse_args(argv)
    names = ["cold", "warm"] + (["baseline"] if args.baseline else [])
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir, base_dir, base_code = Path(tmp) / "warm", Path(tmp) / "base", Path(tmp) / "code"
        run_once(warm_dir, args.steps, [])  # fill the warm folder's caches
        if args.baseline:
            subprocess.run(
                ["git", "worktree", "add", "--detach", "-q", str(base_code), args.baseline], cwd=ROOT, check=True
            )
            run_once(base_dir, args.steps, [], base_code)  # its oracle cache, as a user's second run has it
        try:
            for i in range(args.repeats):
                # Rotating order: no configuration always runs first (or right after another).
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    if name == "cold":
                        results[name].append(run_once(Path(tmp) / f"cold{i}", args.steps, ["--no-eval-cache"]))
                    elif name == "warm":
                        results[name].append(run_once(warm_dir, args.steps, []))
                    else:
                        results[name].append(run_once(base_dir, args.steps, [], base_code))
        finally:
            if args.baseline:
                subprocess.run(["git", "worktree", "remove", "--force", str(base_code)], cwd=ROOT, check=False)
    phases = [phase for phase, _ in PHASES] + ["evaluations during training", "total"]
    median = {name: {p: statistics.median(r[p] for r in runs) for p in phases} for name, runs in results.items()}
    print(f"default --batch run ({args.steps} steps), medians of {args.repeats} interleaved repeats, seconds")
    print("| phase | " + " | ".join(f"{name} | share" for name in names) + " |")
    print("| --- |" + " --- | --- |" * len(names))
    for phase in phases:
        cells = [f"{median[n][phase]:.2f} | {median[n][phase] / median[n]['total']:.0%}" for n in names]
        print(f"| {phase} | " + " | ".join(cells) + " |")

    def ratios(a: str, b: str) -> list[float]:
        return [x["total"] / y["total"] for x, y in zip(results[a], results[b])]

    def paired(a: str, b: str) -> str:
        # The median of same-repetition ratios (neighbours share the machine's load), then
        # every repetition's, so a noisy one shows.
        each = ratios(a, b)
        return f"{statistics.median(each):.2f} (each repeat: {' '.join(f'{r:.2f}' for r in each)})"

    print(f"\nwarm / cold wall time: {paired('warm', 'cold')}, caches disabled in cold")
    if args.baseline:
        print(f"warm / baseline ({args.baseline}) wall time: {paired('warm', 'baseline')}, goal <= 0.60")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average while measuring: {load:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
