"""Peak memory and time of one evaluation of a real-vocabulary model, this checkout against
another revision, side by side (issue 18: evaluation held full-vocabulary logits for every
position of a batch; 4.2-5.6 GB RSS on SmolLM2-135M, 49 k vocabulary).

Measured on the shared 2-core machine, SmolLM2-135M-Instruct (fp32), 30 records, batch 64,
against 477be4d (before logits at answer positions only): peak RSS 1988 -> 1534 MB (0.77),
rise over the loaded model 1533 -> 1079 MB (0.70), time 197.9 -> 141.3 s (0.71), the same
forget loss to 6 decimals.

    .venv/bin/python bench/bench_eval_memory.py --model FOLDER_OR_GGUF [--against REV]
        [--records 60] [--batch-size 64] [--repeats 1]

Each measurement is a fresh subprocess (peak RSS is per process): it loads the model,
notes its RSS, runs ``evaluate_splits`` over QA records with a paraphrased and five
perturbed answers each (``bench_eval.make_records``: every answer scored, every question
answered, 48 new tokens), and reports the peak RSS (``ru_maxrss``), the rise over the
loaded model, and the seconds. The rise includes the weights themselves (safetensors are
memory-mapped: the first forward pass pages them in, 0.54 GB for SmolLM2-135M in fp32). ``--against REV`` runs the same in a git worktree of REV
(default: HEAD~1), alternating, and prints the ratios this / REV. A .gguf model is
dequantized once into a safetensors folder beside /tmp, so loading does not dominate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = "BENCH-RESULT "


def hf_folder(model: str) -> str:
    """``model`` as a Hugging Face folder: a .gguf file is dequantized once into /tmp."""
    path = Path(model)
    if path.suffix != ".gguf":
        return model
    out = Path(tempfile.gettempdir()) / f"bench-eval-memory-{path.stem}"
    if not (out / "config.json").exists():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # dequantized: a plain float model from here on
        plain = AutoModelForCausalLM.from_config(config)
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(out)
        tokenizer.save_pretrained(out)
    return str(out)


def worker(args) -> None:
    """One measurement, in this process; prints one result line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_eval import make_records

    # bench_eval puts this checkout first on sys.path: the tree measured goes before it.
    sys.path.insert(0, os.environ.get("BENCH_TREE", str(ROOT)))
    from tui_unlearn.metrics.evaluate import evaluate_splits

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    records = make_records(args.records)
    third = len(records) // 3
    splits = {"forget": records[:third], "retain": records[third : 2 * third], "holdout": records[2 * third :]}
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    with torch.no_grad():
        out = evaluate_splits(model, tokenizer, splits, batch_size=args.batch_size, max_new_tokens=48)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loss = out.aggregates["forget"]["loss"]
    import tui_unlearn

    result = {"peak_mb": peak, "loaded_mb": loaded, "seconds": seconds, "forget_loss": loss}
    print(RESULT + json.dumps({**result, "package": str(Path(tui_unlearn.__file__).parent)}))


def measure(tree: Path, args) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_TREE": str(tree), "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(ROOT / "bench" / "bench_eval_memory.py"), "--worker", "--model", args.model]
    command += ["--records", str(args.records), "--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    raise SystemExit(f"worker in {tree} failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--against", default="HEAD~1")
    parser.add_argument("--records", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.model = hf_folder(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), args.against], cwd=ROOT, check=True)
        try:
            rows: dict[str, list[dict]] = {"this": [], args.against: []}
            for _ in range(args.repeats):  # alternating: the machine's load hits both alike
                rows[args.against].append(measure(other, args))
                rows["this"].append(measure(ROOT, args))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    print(f"model {args.model}, {args.records} records, batch {args.batch_size}, {args.threads} threads")
    for name, results in rows.items():
        for r in results:
            rise = r["peak_mb"] - r["loaded_mb"]
            print(
                f"{name:>10}: peak RSS {r['peak_mb']:7.0f} MB (model loaded {r['loaded_mb']:6.0f}, rise {rise:6.0f}), "
                f"{r['seconds']:6.1f} s, forget loss {r['forget_loss']:.6f} ({r['package']})"
            )
    best = {name: min(results, key=lambda r: r["seconds"]) for name, results in rows.items()}
    mine, theirs = best["this"], best[args.against]
    print(
        f"ratios this / {args.against}: peak RSS {mine['peak_mb'] / theirs['peak_mb']:.2f}, "
        f"rise over the loaded model {(mine['peak_mb'] - mine['loaded_mb']) / (theirs['peak_mb'] - theirs['loaded_mb']):.2f}, "
        f"time {mine['seconds'] / theirs['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
