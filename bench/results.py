"""Rerun the README's Results: every algorithm with its defaults on the bundled forget10 split.

    .venv/bin/python bench/results.py --sessions-dir sessions --fresh

Each run is a normal session (the same engine and defaults as `tui-unlearn --batch`); the
script prints a Markdown table built from the sessions' summaries, with the wall time of
each run measured here. ``--fresh`` first removes the session folders already in that
directory (only folders that are sessions).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from tui_unlearn.algorithms import all_algorithms
from tui_unlearn.analysis.tables import fmt, markdown_table
from tui_unlearn.config import RunConfig
from tui_unlearn.engine import run
from tui_unlearn.sessions import list_sessions


def row(name: str, summary: dict, wall: float) -> list[str]:
    m = summary.get("metrics", {})
    before, after = m.get("before", {}), m.get("after", m.get("before", {}))

    def pair(split: str, metric: str) -> str:
        b = before.get(split, {}).get(metric)
        a = after.get(split, {}).get(metric)
        return f"{fmt(b, 2)} → {fmt(a, 2)}"

    mia = after.get("forget", {}).get("mia_auc_min_k_pp")
    cells = [
        name,
        summary.get("status", "?"),
        pair("forget", "accuracy"),
        pair("forget", "f1"),
        pair("retain", "accuracy"),
        pair("retain", "f1"),
        pair("holdout", "accuracy"),
        fmt(summary.get("forget_quality"), 3),
        fmt(summary.get("model_utility"), 3),
        fmt(mia, 3),
        f"{wall:.1f}",
    ]
    return cells


HEADERS = ["method", "status", "forget acc", "forget F1", "retain acc", "retain F1", "holdout acc",
           "forget quality", "model utility", "MIA AUC (Min-K%++)", "wall s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions-dir", default="sessions")
    parser.add_argument("--fresh", action="store_true", help="remove existing sessions there first")
    parser.add_argument("--algorithms", nargs="*", default=None, help="default: all registered")
    args = parser.parse_args()
    root = Path(args.sessions_dir)
    if args.fresh:
        for session in list_sessions(root):
            shutil.rmtree(session.path)
    rows = []
    for name in args.algorithms or list(all_algorithms()):
        start = time.monotonic()
        result = run(RunConfig(algorithm=name), sessions_dir=root)
        wall = time.monotonic() - start
        rows.append(row(name, result.summary, wall))
        print(f"{name}: {result.status} in {wall:.1f} s", file=sys.stderr, flush=True)
    print(markdown_table(HEADERS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
