"""bf16 NPO on a ~1 B-parameter random-init Llama on one GPU: tokens/s, peak memory and MFU.

    python bench/bench_gpu.py                  # on a CUDA machine; a few minutes on one H200
    python bench/bench_gpu.py --peak-tflops 400  # a GPU whose bf16 peak is not in the table
    python bench/bench_gpu.py --smoke          # the same code path on CPU with a tiny model

Configurations, each in its own subprocess (``bench/_train_worker.py``): ours NPO full
fine-tuning, ours NPO with LoRA r 16, and the open-unlearning-style baseline NPO
(``bench/baseline_trainer.py``: a ``Trainer`` that runs a deep copy of the model as the
reference every step), all with bf16 weights and bf16 autocast, AdamW, the same
synthetic records (fixed-length questions and answers of random words, so no padding),
batch size and sequence length.

The model: hidden 2048, 16 layers, 16 heads, intermediate 5632, vocab 32000, tied
embeddings (0.89 B parameters), built on the GPU in a temporary folder with a BPE
tokenizer trained on the records. Timing drops the first ``--warmup`` steps and syncs
the GPU at each step's end. Peak memory is ``torch.cuda.max_memory_allocated`` from the
moment the model is loaded. MFU = 6 x N x tokens/s / the GPU's dense bf16 peak, N the
parameters that take part in matrix multiplies (all but the input embedding; the tied
output head counts); attention's own FLOPs are left out. LoRA does ~4N per token of real
work (no weight gradients), so 6N flatters its utilisation; the baseline's reference pass
is extra work that 6N does not credit.

Exits 0 with "no GPU here" on a machine without CUDA (unless ``--smoke``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

WORKER = Path(__file__).resolve().parent / "_train_worker.py"
# Dense bf16 tensor-core peaks (TFLOPS, no sparsity), matched on the device name in order.
PEAK_TFLOPS = [
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.5),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("A10G", 70.0),
]
CONFIGS = {  # name -> (side, lora_r)
    "ours npo full": ("ours", 0),
    "ours npo lora16": ("ours", 16),
    "baseline npo": ("baseline", 0),
}


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return value
    return None


def write_records(folder: Path, seq_len: int, n_forget: int, n_retain: int, seed: int = 0) -> tuple[str, str]:
    """Forget and retain JSONL files of question/answer records about ``seq_len`` tokens long."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(4000)]
    q_words = max(4, seq_len // 8)
    a_words = max(4, seq_len - q_words - 8)

    def records(n: int) -> list[dict]:
        return [
            {
                "question": " ".join(rng.choices(words, k=q_words)) + "?",
                "answer": " ".join(rng.choices(words, k=a_words)) + ".",
            }
            for _ in range(n)
        ]

    paths = []
    for name, n in (("forget", n_forget), ("retain", n_retain)):
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records(n)), encoding="utf-8")
        paths.append(str(path))
    return paths[0], paths[1]


def matmul_parameters(folder: Path) -> int:
    """Parameters that take part in a matrix multiply: all but the input embedding (a lookup),
    with a tied output head counted once as the head."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    tied = getattr(config, "tie_word_embeddings", False)
    return total - embedding + (model.get_output_embeddings().weight.numel() if tied else 0)


def gib(result: dict) -> float | None:
    mb = result.get("peak_live_mb")
    return mb / 1024 if mb is not None else None


def mem_cell(result: dict) -> str:
    value = gib(result)
    return "n/a" if value is None else f"{value:.2f} GiB" if value >= 0.1 else f"{value * 1024:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny model on CPU: checks the code path only")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=512, help="tokens per example (question + answer)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak, if not detected")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    args = parser.parse_args()

    import torch

    if args.smoke:
        device, size = "cpu", "smoke"
        args.steps, args.warmup, args.batch_size, args.seq_len = min(args.steps, 4), 1, 2, min(args.seq_len, 64)
        device_name = "CPU (smoke run: numbers mean nothing)"
    elif not torch.cuda.is_available():
        print("no GPU here: bench_gpu.py needs CUDA (--smoke runs the code path on CPU)")
        return 0
    else:
        device, size = "cuda", "1b"
        device_name = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or (None if args.smoke else peak_tflops(device_name))
    names = [c.strip() for c in args.configs.split(",")]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(unknown)}")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        forget, retain = write_records(
            folder, args.seq_len, n_forget=4 * args.batch_size, n_retain=16 * args.batch_size
        )
        texts = common.corpus_texts(forget, retain)
        model_dir = folder / "model"
        n_total = common.build_random_llama(model_dir, size, texts, dtype="bfloat16", device=device)
        n_matmul = matmul_parameters(model_dir)
        print(
            f"# bench_gpu on {device_name}: NPO, bf16 weights + bf16 autocast, {n_total / 1e6:,.1f} M parameters "
            f"({n_matmul / 1e6:,.1f} M in matmuls), batch {args.batch_size} forget + {args.batch_size} retain of "
            f"~{args.seq_len} tokens, {args.steps} steps ({args.warmup} dropped)",
            flush=True,
        )
        results = {}
        for name in names:
            side, lora_r = CONFIGS[name]
            argv = [
                "--side",
                side,
                "--algorithm",
                "npo",
                "--lora-r",
                str(lora_r),
                "--model",
                str(model_dir),
                "--forget",
                forget,
                "--retain",
                retain,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--batch-size",
                str(args.batch_size),
                "--max-length",
                str(args.seq_len + 32),
                "--device",
                device,
                "--dtype",
                "bfloat16",
                "--precision",
                "bf16",
                "--threads",
                str(max(1, (torch.get_num_threads()))),
            ]
            if args.smoke:
                argv += ["--mode", "memory"]  # no CUDA counter on CPU: the profiler's live-tensor peak
            results[name] = r = common.run_worker(WORKER, argv, timeout=600)
            print(
                f"  {name}: {common.fmt(r['tokens_per_s'], 0)} tokens/s, peak {mem_cell(r)}",
                file=sys.stderr,
                flush=True,
            )

    base = results.get("baseline npo")
    rows = []
    for name, r in results.items():
        mfu = 6 * n_matmul * r["tokens_per_s"] / (peak * 1e12) if peak and r["tokens_per_s"] else None
        rows.append(
            [
                name,
                f"{r['trainable'] / 1e6:.1f} M",
                common.fmt(r["step_s"] * 1000, 0),
                common.fmt(r["tokens_per_s"], 0),
                common.fmt(r["tokens_per_s"] / base["tokens_per_s"], 2, "×") if base and r["tokens_per_s"] else "n/a",
                mem_cell(r),
                common.fmt(gib(r) / gib(base), 2, "×") if base and gib(r) and gib(base) else "n/a",
                common.fmt(100 * mfu, 1, " %") if mfu is not None else "n/a",
            ]
        )
    print()
    print(
        common.markdown(
            [
                "configuration",
                "trained params",
                "ms/step",
                "tokens/s",
                "vs baseline",
                "peak memory",
                "vs baseline",
                "MFU (6N)",
            ],
            rows,
        )
    )
    if peak is None and not args.smoke:
        print(f"\nMFU needs the GPU's bf16 peak: {device_name!r} is not in the table; pass --peak-tflops")
    print(f"\npeak bf16: {peak} TFLOPS; total wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
