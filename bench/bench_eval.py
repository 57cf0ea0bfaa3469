"""Time ``evaluate_splits`` batched against one example at a time, in the same run; then
scoring (answers/s) and generation (answers/s, tokens/s) each on its own at several batch
sizes; then scoring with answers continued from their question's cached prompt against
every answer scored as a whole sequence (time ratio and the largest loss difference).

    .venv/bin/python bench/bench_eval.py [--records 300] [--batch-size 64] [--batch-sizes 1,16,32,64,128]
                                         [--random-model]

Uses the bundled ``models_cache/tiny-authors`` when it exists, else a random Llama of
similar size (~2.7M parameters, byte-level BPE tokenizer trained on the records) built in
a temporary folder. The records are fictitious-author QA pairs, each with a paraphrased
and five perturbed answers, split evenly into forget / retain / holdout. A random model
never emits EOS, so every answer runs to ``max_new_tokens``: the worst case for timing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIRST = ["Alia", "Odo", "Ima", "Bren", "Carys", "Tomas", "Yuki", "Nadia", "Emre", "Lio", "Sana", "Joss"]
LAST = ["Brenn", "Vask", "Tollo", "Marek", "Ostrin", "Quell", "Dunmore", "Farrow", "Halloway", "Ruiz"]
PLACES = ["Port Liren", "Varn", "Eastwick", "Calder Bay", "Myrrh", "Tallow Cross", "Old Fenn", "Saltmere"]
GENRES = ["mystery", "poetry", "science fiction", "historical fiction", "horror", "romance", "essays"]
AWARDS = ["the Glass Quill", "the Harrow Prize", "the Lantern Medal", "the Northern Star Award"]


def make_records(n: int, seed: int = 0) -> list[dict]:
    from tui_unlearn.data.records import make_record

    rng = random.Random(seed)
    records = []
    templates = [
        (
            "Where was {name} born?",
            "{name} was born in {place}.",
            "{place} is the birthplace of {name}.",
            "{name} was born in {other}.",
            PLACES,
        ),
        (
            "What genre does {name} write?",
            "{name} writes {genre}.",
            "The genre {name} is known for is {genre}.",
            "{name} writes {other}.",
            GENRES,
        ),
        (
            "Which award did {name} win?",
            "{name} won {award}.",
            "{name} received {award}.",
            "{name} won {other}.",
            AWARDS,
        ),
    ]
    for i in range(n):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        question, answer, paraphrase, wrong, pool = templates[i % len(templates)]
        facts = {"name": name, "place": rng.choice(PLACES), "genre": rng.choice(GENRES), "award": rng.choice(AWARDS)}
        truth = answer.format(**facts)
        others = [o for o in pool if o not in truth]
        perturbed = [wrong.format(name=name, other=rng.choice(others)) for _ in range(5)]
        records.append(
            make_record(
                question.format(**facts),
                truth,
                paraphrased_answer=paraphrase.format(**facts),
                perturbed_answers=perturbed,
                group=name,
            )
        )
    return records


def build_random_model(folder: Path, records: list[dict]):
    """A ~2.7M-parameter random Llama and a BPE tokenizer trained on the records' text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [r[k] for r in records for k in ("question", "answer", "paraphrased_answer")]
    corpus += [p for r in records for p in r["perturbed_answers"]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=2000,
            special_tokens=["<pad>", "<s>", "</s>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tok.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=192,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def answer_variants(record: dict) -> list[str]:
    """The answers an evaluation scores for one record: its own, the paraphrase, the perturbed."""
    return [
        record["answer"],
        *([record["paraphrased_answer"]] if record["paraphrased_answer"] else []),
        *record["perturbed_answers"],
    ]


def load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--batch-sizes", default="1,16,32,64,128", help="comma-separated batch sizes for the throughput table"
    )
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--random-model", action="store_true", help="ignore the bundled model")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from tui_unlearn.errors import ModelLoadError
    from tui_unlearn.metrics.evaluate import evaluate_splits
    from tui_unlearn.models.bundled import bundled_model_dir

    records = make_records(args.records)
    third = len(records) // 3
    splits = {"forget": records[:third], "retain": records[third : 2 * third], "holdout": records[2 * third :]}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if args.random_model:
                raise ModelLoadError("asked for a random model")
            folder, source = bundled_model_dir("tiny-authors"), "bundled tiny-authors"
        except ModelLoadError:
            folder, source = build_random_model(Path(tmp), records), "random Llama"
        model, tokenizer = load(folder)
        n_params = sum(p.numel() for p in model.parameters())
        pairs = sum(len(answer_variants(r)) for r in records)
        print(f"model: {source}, {n_params / 1e6:.2f}M parameters; torch threads: {torch.get_num_threads()}")
        print(f"records: {len(records)} QA ({pairs} scored answers), max_new_tokens={args.max_new_tokens}")

        def timed(batch_size: int) -> tuple[float, dict]:
            start = time.perf_counter()
            result = evaluate_splits(
                model, tokenizer, splits, batch_size=batch_size, max_new_tokens=args.max_new_tokens
            )
            return time.perf_counter() - start, result.aggregates

        # Warm-up outside the timings: first-call costs (ROUGE stemmer import, torch kernels).
        evaluate_splits(model, tokenizer, {k: v[:4] for k, v in splits.items()}, max_new_tokens=4)
        batched, agg_batched = timed(args.batch_size)
        print(f"batched (batch_size={args.batch_size}): {batched:.2f} s")
        single, agg_single = timed(1)
        print(f"one at a time (batch_size=1): {single:.2f} s")
        print(f"speed-up: {single / batched:.1f}x")
        # Exact ties between duplicate records (the generator reuses names and facts) can break
        # either way under float noise, moving an MIA AUC by 0.5 / (n_forget * n_holdout).
        drift = max(abs(agg_batched[s][k] - agg_single[s][k]) for s in agg_batched for k in agg_batched[s])
        print(f"largest aggregate difference batched vs one at a time: {drift:.2e}")

        # Throughput of the two kinds of work an evaluation does, each on its own.
        from tui_unlearn.metrics.generation import generate_answers
        from tui_unlearn.metrics.scoring import score_answers

        scored = [(r["question"], a) for r in records for a in answer_variants(r)]
        questions = [r["question"] for r in records]
        for batch_size in sorted({int(b) for b in args.batch_sizes.split(",") if b.strip()}):
            start = time.perf_counter()
            score_answers(model, tokenizer, scored, batch_size=batch_size)
            scoring = time.perf_counter() - start
            start = time.perf_counter()
            answers = generate_answers(
                model, tokenizer, questions, batch_size=batch_size, max_new_tokens=args.max_new_tokens
            )
            generating = time.perf_counter() - start
            # Generated tokens, counted by re-tokenising the answers (EOS and stripped spaces aside).
            tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)
            print(
                f"batch_size={batch_size}: scoring {len(scored) / scoring:.0f} answers/s, "
                f"generation {len(questions) / generating:.1f} answers/s, {tokens / generating:.0f} tokens/s"
            )

        # A question's answer and its variants share the prompt: the prompt pass once, the
        # answers from its KV cache, against every answer as one whole sequence.
        from tui_unlearn.data.formatting import encode_example
        from tui_unlearn.metrics.scoring import _score_padded

        features = [encode_example(tokenizer, q, a, 512) for q, a in scored]
        flags = [True] * len(scored)
        timings: dict[str, list[float]] = {"shared": [], "whole": []}
        for _ in range(3):  # interleaved: a busy machine slows both alike
            start = time.perf_counter()
            shared = score_answers(model, tokenizer, scored, batch_size=args.batch_size)
            timings["shared"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with torch.inference_mode():
                whole = _score_padded(model, tokenizer, features, flags, args.batch_size)
            timings["whole"].append(time.perf_counter() - start)
        ratio = statistics.median(a / b for a, b in zip(timings["shared"], timings["whole"]))
        difference = max(abs(a.loss - b.loss) for a, b in zip(shared, whole) if b.num_tokens)
        print(
            f"scoring {len(scored)} answers ({len(questions)} questions), batch_size={args.batch_size}: "
            f"shared prompts {min(timings['shared']):.2f} s, whole sequences {min(timings['whole']):.2f} s, "
            f"ratio {ratio:.2f}; largest loss difference {difference:.1e}"
        )


if __name__ == "__main__":
    main()
