"""DPO's two answers in one forward pass (stacked, as TRL concatenates chosen and rejected)
against one pass each (issue 21, item 10): time per step and peak memory, side by side.

    OMP_NUM_THREADS=1 python bench/bench_dpo_forward.py               # tiny-authors and a 30 M model
    python bench/bench_dpo_forward.py --models tiny --reps 5 --batch-size 16

Each measurement is a fresh subprocess (this file with ``--worker``) that loads the model,
builds batches of the bundled forget10 questions (the true answer loses, a counterfactual
wins, as ``dpo`` trains), and runs ``dpo.preference_loss`` + backward for ``--steps``
steps (the first ``--warmup`` dropped) with ``dpo.PAIRED_LOGPROB_SUMS`` set to the variant.
No optimizer step and no retain term: only what the two variants do differently is timed.
Time and memory are separate runs (the profiler slows steps): memory is the peak of live
CPU tensor bytes replayed from ``torch.profiler``'s allocation events (the ratio the other
benchmarks use), with peak RSS above the loaded model beside it. Variants run in rotating
order every repetition; the ratios are medians of paired ratios against ``two_pass`` (today's).

Variants (``dpo.*_logprob_sums``): ``two_pass`` one forward per answer, full logits;
``one_pass`` both answers stacked in one forward; ``*_answers`` the same with the output head
on answer positions only (``answer_logprob_sums``, as NPO does).

Measured 2026-12-07 on the shared 2-core machine (load average ~10: wall time is noisy, the
CPU time per step is the steadier column), batch 8 pairs, 1 thread, 2 repetitions, 6 steps
(2 dropped):

| model | variant | time / two_pass | CPU time / two_pass | peak live | peak live / two_pass |
| --- | --- | --- | --- | --- | --- |
| tiny | one_pass | 0.968 | 1.074 | 44.2 MB | 1.085 |
| tiny | two_pass_answers | 0.700 | 0.972 | 37.9 MB | 0.932 |
| tiny | one_pass_answers | 0.662 | 0.941 | 39.3 MB | 0.967 |
| 30m | one_pass | 1.154 | 1.067 | 469.1 MB | 1.125 |
| 30m | two_pass_answers | 0.888 | 0.903 | 394.3 MB | 0.946 |
| 30m | one_pass_answers | 0.857 | 0.916 | 420.7 MB | 1.009 |

(two_pass: 40.7 MB and 417.0 MB peak live.) Stacking is not faster on a CPU and holds more
(the shorter batch is padded to the longer, and one graph holds both); the output head on
answer positions only is both faster and smaller, so ``dpo`` takes ``two_pass_answers``.
No GPU was lent to this measurement: where kernel launches dominate, stacking may pay.

Models: ``tiny`` is the bundled ``tiny-authors`` (3 layers, 192 wide); ``30m`` a random-init
Llama of ``bench/_common.SIZES["30m"]`` with a tokenizer trained on the same records.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

SCRIPT = Path(__file__).resolve()
VARIANTS = ("two_pass", "one_pass", "two_pass_answers", "one_pass_answers")
FORGET = "bundled:forget10"


def worker(args) -> None:
    import torch
    from _train_worker import Meter
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui_unlearn.algorithms import dpo
    from tui_unlearn.algorithms.base import LossInputs
    from tui_unlearn.algorithms.references import References
    from tui_unlearn.data.formatting import collate, encode_examples, pad_token_id
    from tui_unlearn.data.loading import load_split

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dpo.PAIRED_LOGPROB_SUMS = getattr(dpo, f"{args.variant}_logprob_sums")
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.train(False)
    records = load_split(FORGET, "forget").records
    alternates = dpo.counterfactuals(records, {}, random.Random(0))
    pad = pad_token_id(tok)
    lose_all = encode_examples(tok, [(r["question"], r["answer"]) for r in records])
    win_all = encode_examples(tok, [(r["question"], r["answer"]) for r in alternates])
    refs = References(cached={"forget": torch.zeros(len(records)), "alternate": torch.zeros(len(records))})
    hp = dpo.PREFERENCE_HYPERPARAMS
    hparams = {p.name: p.default for p in hp}
    meter = Meter("cpu", memory=args.mode == "memory")
    meter.start(model)
    b = args.batch_size
    for step in range(args.steps):
        start = (step * b) % max(1, len(records) - b)
        rows = range(start, start + b)
        lose = collate([lose_all[i] for i in rows], pad)
        win = collate([win_all[i] for i in rows], pad)
        lose["index"] = win["index"] = torch.tensor(list(rows))
        loss = dpo.preference_loss(LossInputs(model, lose, None, refs, hparams, step, alternate=win))["loss"]
        loss.backward()
        model.zero_grad(set_to_none=True)
        meter.tokens.append(int(lose["attention_mask"].sum() + win["attention_mask"].sum()))
        meter.mark()
    common.report(meter.result(args.warmup))


def build_30m(folder: Path) -> None:
    from tui_unlearn.data.loading import load_split

    records = load_split(FORGET, "forget").records + load_split("bundled:retain90", "retain").records
    common.build_random_llama(folder, "30m", [f"{r['question']} {r['answer']}" for r in records])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="tiny,30m")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("time", "memory"), default="time", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from tui_unlearn.models.bundled import bundled_model_dir

    print(f"# DPO: one stacked forward vs two forwards ({common.load_average()})", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            if name == "tiny":
                folder = str(bundled_model_dir("tiny-authors"))
            else:
                folder = str(Path(tmp) / name)
                build_30m(Path(folder))
            results = {}
            for mode in ("time", "memory"):

                def measure(variant: str, rep: int, mode: str = mode, folder: str = folder) -> dict:
                    return common.run_worker(
                        SCRIPT,
                        [
                            "--worker",
                            "--variant",
                            variant,
                            "--model",
                            folder,
                            "--mode",
                            mode,
                            "--steps",
                            str(args.steps),
                            "--warmup",
                            str(args.warmup),
                            "--batch-size",
                            str(args.batch_size),
                            "--threads",
                            str(args.threads),
                        ],
                        env={"OMP_NUM_THREADS": str(args.threads)},
                    )

                print(f"{name}, {mode}:", file=sys.stderr)
                results[mode] = common.interleaved(VARIANTS, args.reps, measure)
            base, base_mem = results["time"]["two_pass"], results["memory"]["two_pass"]
            for variant in VARIANTS:
                timed, mem = results["time"][variant], results["memory"][variant]
                rows.append(
                    [
                        name,
                        variant,
                        common.fmt(common.median([r["step_s"] for r in timed]), 4, " s"),
                        common.fmt(common.paired_ratio(timed, base, "step_s"), 3),
                        # tokens per CPU-second of today / of this: CPU time per step, this / today
                        common.fmt(common.paired_ratio(base, timed, "tokens_per_cpu_s"), 3),
                        common.fmt(common.median([r["peak_live_mb"] for r in mem]), 1, " MB"),
                        common.fmt(common.paired_ratio(mem, base_mem, "peak_live_mb"), 3),
                        common.fmt(common.paired_ratio(timed, base, "peak_rss_above_load_mb"), 3),
                    ]
                )
            print(json.dumps({"model": name, "results": results}), file=sys.stderr)
    headers = [
        "model",
        "variant",
        "step (median)",
        "time / two_pass",
        "CPU time / two_pass",
        "peak live",
        "peak live / two_pass",
        "peak RSS rise / two_pass",
    ]
    print(f"batch {args.batch_size} pairs, {args.threads} thread(s), {args.reps} reps, {os.cpu_count()} cores")
    print(common.markdown(headers, rows))


if __name__ == "__main__":
    main()
