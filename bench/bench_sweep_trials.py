"""Sweep trials per hour: one process for all trials (the default, sharing what does not change
between them) against one process per trial.

    .venv/bin/python bench/bench_sweep_trials.py [--trials 6] [--steps 10] [--reps 1]

Runs the same grid sweep (``--trials`` learning rates of grad_diff on the bundled tiny-authors
model and forget10) twice per repetition, in rotating order, each configuration in a fresh
sessions folder whose oracle and before-evaluation caches were filled once beforehand (what a
sweep's second trial onwards finds either way):

- ``in-process``: ``run_sweep`` in one Python process; its trials share an
  ``engine.warm.WarmStart`` (records, tokenizer, plan, oracle and the loaded model, the
  original's weights restored from memory before each trial);
- ``process per trial``: the same sweep with ``isolate=True``: every trial a
  ``tui-unlearn --batch`` child process (start, imports, data, model load each time).

Both are timed from outside (the sweep's own process start included), with one torch thread
per process. Prints trials per hour of each, their ratio per repetition and the median, and
whether both gave every trial the same numbers (they must: same seed, same settings).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tui_unlearn, not an installed one
MODES = ("in-process", "process per trial")
CACHES = (".eval-cache", ".oracle-cache")


def learning_rates(n: int) -> list[float]:
    return [round(1e-4 * (1.6**i), 8) for i in range(n)]


def base_config(steps: int, settings: list[str] = ()):  # type: ignore[assignment]
    """The sweep's base: the default run with ``steps`` and one thread, plus NAME=VALUE settings."""
    from tui_unlearn.config import SETTINGS, RunConfig

    values = {name: SETTINGS[name].parse(value) for name, _, value in (s.partition("=") for s in settings)}
    return RunConfig(steps=steps, threads=1, **values)


def worker(mode: str, sessions: Path, trials: int, steps: int, settings: list[str]) -> None:
    """One sweep in this process; prints {lr: numbers} as JSON."""
    from tui_unlearn.sweeps import run_sweep

    grid = ["lr=" + ",".join(f"{lr:g}" for lr in learning_rates(trials))]
    base = base_config(steps, settings)
    report = run_sweep(base, root=sessions, grid_items=grid, isolate=mode == "process per trial")
    out = {}
    for t in report.trials:
        s = t.session.summary()
        out[f"{t.point['lr']:g}"] = {
            "status": s.get("status"),
            "losses": s.get("final_losses"),
            "objectives": t.objectives,
        }
    print(json.dumps(out))


def fill_caches(folder: Path, steps: int, settings: list[str]) -> None:
    """One untimed run: the oracle's and the before-evaluation's cache entries."""
    from tui_unlearn.engine import run

    run(base_config(steps, settings).with_overrides(steps=1), sessions_dir=folder)


def timed(mode: str, sessions: Path, trials: int, steps: int, settings: list[str]) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            mode,
            "--sessions",
            str(sessions),
            "--trials",
            str(trials),
            "--steps",
            str(steps),
            *(f"--set={s}" for s in settings),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{mode} sweep failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a run setting of every trial (repeatable), e.g. --set calibrate=false --set eval_samples=10",
    )
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--sessions", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.sessions, args.trials, args.steps, args.set)
        return

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        seed = Path(tmp) / "seed"
        fill_caches(seed, args.steps, args.set)
        per_hour: dict[str, list[float]] = {m: [] for m in MODES}
        ratios, same = [], True
        for rep in range(args.reps):
            order = MODES if rep % 2 == 0 else MODES[::-1]
            results = {}
            for mode in order:
                folder = Path(tmp) / f"rep{rep}-{mode.replace(' ', '-')}"
                folder.mkdir()
                for cache in CACHES:
                    if (seed / cache).is_dir():
                        shutil.copytree(seed / cache, folder / cache)
                seconds, results[mode] = timed(mode, folder, args.trials, args.steps, args.set)
                per_hour[mode].append(args.trials * 3600 / seconds)
                print(
                    f"rep {rep + 1} {mode}: {args.trials} trials in {seconds:.1f} s = "
                    f"{per_hour[mode][-1]:.0f} trials/hour",
                    flush=True,
                )
            ratios.append(per_hour[MODES[0]][-1] / per_hour[MODES[1]][-1])
            same &= results[MODES[0]] == results[MODES[1]]
            bad = [lr for lr, r in results[MODES[0]].items() if r["status"] != "finished"]
            if bad:
                raise SystemExit(f"trials that did not finish: {bad}")
        print()
        print(
            f"bundled tiny-authors, grad_diff, {args.trials} trials of {args.steps} steps"
            + (f" ({', '.join(args.set)})" if args.set else "")
            + f", {args.reps} repetition(s)"
        )
        for mode in MODES:
            print(f"  {mode:18s} {statistics.median(per_hour[mode]):7.0f} trials/hour (median)")
        print(
            f"  ratio in-process / process per trial: {statistics.median(ratios):.2f}x "
            f"(per repetition: {', '.join(f'{r:.2f}' for r in ratios)})"
        )
        print(f"  same numbers for every trial in both: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
