"""LoRA NPO on a 34 M-parameter Llama from the command line, saving a merged model.

    .venv/bin/python examples/lora_npo_demo.py [--workdir /tmp/lora-demo] [--steps 10]

1. Writes a randomly initialised Llama (hidden 512, 10 layers, 8 heads: 34.6 M parameters,
   the bundled tokenizer) as a Hugging Face folder with safetensors weights.
2. Runs ``tui-unlearn --batch --algorithm npo --lora-r 8 --save-model`` on it with the bundled
   forget10 / retain90 data, exactly as a user would (a subprocess, ``--json`` on stdout).
3. Loads the saved ``model/`` with ``AutoModelForCausalLM.from_pretrained`` (no peft involved:
   the adapters are merged in), checks it has the original's shapes, that the adapted weights
   moved and the others did not, and that it generates.

Prints one line per check and exits 0 when all hold. Measured 2026-11-29: 701 s on 2 CPU cores
shared with five other jobs (load 6): evaluation before 252 s, caching the forget
log-probabilities 59 s, 10 LoRA steps 101 s, evaluation after 152 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_model(folder: Path) -> int:
    """A random 34.6 M Llama with the bundled tokenizer; its parameter count."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from tui_unlearn.models.build_tiny import tiny_llama_config
    from tui_unlearn.models.bundled import bundled_model_dir

    tokenizer = AutoTokenizer.from_pretrained(bundled_model_dir("tiny-authors"))
    config = tiny_llama_config(tokenizer, hidden_size=512, intermediate_size=1536, num_layers=10, num_heads=8)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lora-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir, sessions = work / "llama-34m", work / "sessions"
    n = write_model(model_dir)
    print(f"model: {model_dir} ({n / 1e6:.1f} M parameters, random init)")

    command = [
        sys.executable,
        "-m",
        "tui_unlearn",
        "--batch",
        "--model",
        str(model_dir),
        "--forget",
        "bundled:forget10",
        "--retain",
        "bundled:retain90",
        "--algorithm",
        "npo",
        "--lora-r",
        "8",
        "--steps",
        str(args.steps),
        "--batch-size",
        "4",
        "--eval-samples",
        "16",
        "--max-new-tokens",
        "8",
        "--oracle",
        "none",
        "--save-model",
        "--device",
        "cpu",
        "--sessions-dir",
        str(sessions),
        "--json",
    ]
    print("run:", " ".join(command[1:]))
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
        print(f"FAILED: the run exited {done.returncode}")
        return 1
    result = json.loads(done.stdout)
    print(f"run: {result['status']} in {time.monotonic() - start:.0f} s, session {result['session_id']}")

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = Path(result["session_path"]) / "model"
    merged = AutoModelForCausalLM.from_pretrained(saved)
    original = AutoModelForCausalLM.from_pretrained(model_dir)
    checks = []
    before, after = dict(original.named_parameters()), dict(merged.named_parameters())
    checks.append(
        (
            "same parameter names and shapes",
            before.keys() == after.keys() and all(before[k].shape == after[k].shape for k in before),
        )
    )
    moved = sorted(k for k in before if not torch.equal(before[k], after[k]))
    checks.append(
        (
            f"adapted weights moved ({len(moved)} tensors, all attention/MLP projections)",
            bool(moved) and all(k.endswith("proj.weight") for k in moved),
        )
    )
    checks.append(
        (
            "embeddings and norms unchanged",
            all(torch.equal(before[k], after[k]) for k in before if "norm" in k or "embed" in k),
        )
    )
    checks.append(("no LoRA tensors left in the saved weights", not any("lora" in k for k in merged.state_dict())))
    tokenizer = AutoTokenizer.from_pretrained(saved)
    out = merged.generate(
        **tokenizer("Question: Where was the author born?\nAnswer:", return_tensors="pt"),
        max_new_tokens=5,
        do_sample=False,
    )
    checks.append(("generates", out.shape[1] > 0))
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"loaded with AutoModelForCausalLM.from_pretrained({saved})")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
