"""The second domain (fictitious compounds, user-style files without perturbed answers): every
method at its defaults, raw and calibrated, against the domain's retain-only oracle.

For each method two runs of ``python -m tui_unlearn --batch --json`` on
``examples/compounds/`` (forget.jsonl, retain.csv, holdout.jsonl) from ``models_cache/tiny-compounds``
with ``--oracle models_cache/tiny-compounds-retain`` and ``--relearn 10``:

- ``raw``: ``--no-calibrate``, the weights of the last step;
- ``calibrated``: today's default (an oracle is given, so the run keeps its best evaluation by
  forget quality among those keeping retain utility >= 0.95x the original's).

Prints one Markdown row per run: where it ended (kept step / steps), forget accuracy before ->
after, forget quality (basis), retain utility (x the original's), general-ability NLL (the
original's answers to the bundled everyday prompts, nats/token) after vs the original's, the
share of the removed forget accuracy that 10 relearning steps bring back, the wall time, and
whether the run meets the bar (forget quality >= 0.5, retain utility >= 0.95x, <= 20 % relearned).
Run from the repository root:

    .venv/bin/python bench/second_domain.py --sessions-dir /tmp/second-domain
    .venv/bin/python bench/second_domain.py --methods dpo,npo --variants calibrated
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "compounds"
TARGET, ORACLE = ROOT / "models_cache" / "tiny-compounds", ROOT / "models_cache" / "tiny-compounds-retain"
METHODS = "grad_ascent,grad_diff,npo,simnpo,dpo,idk,idk_dpo,rmu,wga,undial,satimp,distill,finetune"
VARIANTS = {"raw": ["--no-calibrate"], "calibrated": []}
BAR = {"forget_quality": 0.5, "retain_utility_ratio": 0.95, "recovered": 0.2}


def run(args: list[str]) -> tuple[dict, float]:
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tui_unlearn", *args], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}, seconds
    return json.loads(done.stdout), seconds


def fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and x != 0 and abs(x) < 10**-digits:
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def original_retain_utility(summary: dict) -> float | None:
    """The original's retain utility: the headline numbers of the 'before' evaluation."""
    return ((summary.get("field_metrics") or {}).get("before") or {}).get("retain_utility")


def row(method: str, variant: str, result: dict, seconds: float) -> str:
    if "error" in result:
        return f"| {method} | {variant} | failed: {result['error']} |" + " |" * 7
    m = result["metrics"]
    acc = f"{fmt(m['before']['forget'].get('accuracy'))} → {fmt(m['after']['forget'].get('accuracy'))}"
    summary = json.loads((Path(result["session_path"]) / "summary.json").read_text())
    calibration = summary.get("calibration") or {}
    kept = calibration.get("kept_step")
    run_steps = calibration.get("steps_run") or summary.get("total_steps") or result["steps"]
    ended = f"{kept if kept is not None else result['steps']} / {run_steps}"
    fq = result.get("forget_quality")
    basis = {"answer_nll": "NLL", "truth_ratio": "TR"}.get(result.get("forget_quality_basis"), "")
    utility, original = result.get("retain_utility"), original_retain_utility(summary)
    ratio = utility / original if utility is not None and original else None
    g = result.get("general_ability") or {}
    recovered = (result.get("relearn") or {}).get("recovered")
    meets = (
        fq is not None
        and fq >= BAR["forget_quality"]
        and ratio is not None
        and ratio >= BAR["retain_utility_ratio"]
        and recovered is not None
        and recovered <= BAR["recovered"]
    )
    return (
        f"| {method} | {variant} | {ended} | {acc} | {fmt(fq, 3)} ({basis}) | {fmt(utility, 3)} ({fmt(ratio)}x) "
        f"| {fmt(g.get('nll'))} vs {fmt(g.get('original_nll'))} | {fmt(recovered)} | {seconds:.0f} "
        f"| {'yes' if meets else 'no'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="raw, calibrated or both")
    parser.add_argument("--sessions-dir", default=None, help="default: a new temporary folder")
    parser.add_argument("--threads", default="1")
    parser.add_argument("extra", nargs="*", help="more run options after --, for every run (e.g. -- --steps 80)")
    opts = parser.parse_args()
    sessions = opts.sessions_dir or tempfile.mkdtemp(prefix="second-domain-")
    base = ["--batch", "--json", "--model", str(TARGET), "--oracle", str(ORACLE)]
    base += ["--forget", str(DATA / "forget.jsonl"), "--retain", str(DATA / "retain.csv")]
    base += ["--holdout", str(DATA / "holdout.jsonl"), "--relearn", "10", "--threads", opts.threads]
    base += ["--sessions-dir", sessions, *opts.extra]
    print(f"sessions: {sessions}", file=sys.stderr)
    print(
        "| method | run | kept / steps | forget acc | forget quality (basis) | retain utility (x original) "
        "| general NLL vs original | relearned | wall s | bar |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in opts.methods.split(","):
        for variant in opts.variants.split(","):
            result, seconds = run([*base, "--algorithm", method, *VARIANTS[variant]])
            print(row(method, variant, result, seconds), flush=True)


if __name__ == "__main__":
    main()
