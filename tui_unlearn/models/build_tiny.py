"""Train the bundled tiny models on the fictitious-authors benchmark, bit for bit.

    python -m tui_unlearn.models.build_tiny [--out DIR] [--micro] [--only NAME]

Both models share one byte-level BPE tokenizer (trained on every benchmark string of all
authors, holdout and the utility splits included, so any benchmark text tokenizes well),
one Llama config and one seed; the target (``tiny-authors``) is fine-tuned on ``trained`` =
forget10 + retain90, the retain-only oracle (``tiny-authors-retain``) on retain90 alone, and
both on the utility splits (``real_authors``, ``world_facts``: well-known knowledge that
the oracle has too). Training uses the project's own ``encode_example``/``collate`` so the
prompt format is exactly what the engine and generation use. On one machine (same CPU,
torch version and ``TRAIN_THREADS``) a rebuild gives identical ``model.safetensors`` bytes;
``build_info.json`` also records wall time, which naturally differs.

``build_info.json``'s exact-match figures are the project's metric (``metrics.text``'s
SQuAD normalisation over ``metrics.generation``'s greedy answers), so they are the
numbers docs/results.md gives. The small pieces (``train_tokenizer``, ``tiny_llama_config``,
``deterministic_torch``, ``train_causal_lm``, ``exact_match_rate``, ``build_micro_model``)
are reusable by tests.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tui_unlearn.data.benchmark import (
    DEFAULT_SEED,
    UTILITY_SPLITS,
    benchmark_authors,
    benchmark_fingerprint,
    benchmark_records,
)
from tui_unlearn.data.formatting import PLAIN_PROMPT, collate, encode_example, pad_token_id
from tui_unlearn.data.records import make_record
from tui_unlearn.metrics.generation import generate_answers
from tui_unlearn.metrics.text import exact_match
from tui_unlearn.models.bundled import BUNDLED_MODELS

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")  # ids 0, 1, 2
# Fixed, since matmul reductions may depend on the thread count. One thread: on a shared or
# busy machine two OpenMP threads wait on each other at every barrier (measured 4x slower
# per step than one thread on 2 loaded cores), and at this size a second thread saves little.
TRAIN_THREADS = 1


@dataclass(frozen=True)
class BuildRecipe:
    """Everything that determines a bundled model's weights (besides the code)."""

    vocab_size: int = 1024
    hidden_size: int = 192
    intermediate_size: int = 512
    num_layers: int = 3
    num_heads: int = 4
    max_positions: int = 512
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    max_length: int = 128
    seed: int = DEFAULT_SEED
    benchmark_seed: int = DEFAULT_SEED
    n_authors: int | None = None  # micro builds use only the first few authors (groups) of each split


# A toy for tests: one author per split, a few dozen optimizer steps, about a second of training.
MICRO_RECIPE = BuildRecipe(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=2,
    epochs=3,
    batch_size=4,
    lr=1e-2,
    n_authors=1,
)

# Which benchmark splits each bundled model is trained on.
TRAINING_SPLITS = {
    "tiny-authors": ("trained", *UTILITY_SPLITS),
    "tiny-authors-retain": ("retain90", *UTILITY_SPLITS),
}
REPORT_SPLITS = ("forget10", "retain90", "holdout", *UTILITY_SPLITS)


# --- tokenizer ---------------------------------------------------------------------------------
def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE ``PreTrainedTokenizerFast``: ``<pad>`` 0, ``<s>`` 1 (BOS), ``</s>`` 2 (EOS).

    BOS is prepended by the post-processor whenever special tokens are added; EOS never is
    (``answer_ids`` appends it). Deterministic for the same texts in the same order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        model_max_length=512,
    )


def benchmark_texts(seed: int = DEFAULT_SEED, authors: int | None = None) -> list[str]:
    """Every string of the benchmark (all authors, holdout and utility splits included) for tokenizer training."""
    texts = []
    for split in ("trained", "holdout", *UTILITY_SPLITS):
        for record in _records(split, seed, authors):
            # In the shapes training and generation see: the plain prompt, then " " + answer.
            texts.append(PLAIN_PROMPT.format(question=record["question"]) + " " + record["answer"])
            if record["paraphrased_answer"]:
                texts.append(" " + record["paraphrased_answer"])
            texts.extend(" " + wrong for wrong in record["perturbed_answers"])
    return texts


# --- model -------------------------------------------------------------------------------------
def tiny_llama_config(
    tokenizer, *, hidden_size: int, intermediate_size: int, num_layers: int, num_heads: int, max_positions: int = 512
):
    """A small ``LlamaConfig`` with tied embeddings and the tokenizer's special ids."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )


@contextmanager
def deterministic_torch(seed: int):
    """Seeded, deterministic kernels, ``TRAIN_THREADS`` threads; the caller's settings come back after."""
    import torch

    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TRAIN_THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


@dataclass
class TrainStats:
    steps: int = 0
    losses: list[float] = field(default_factory=list)  # one per optimizer step
    wall_s: float = 0.0


def train_causal_lm(
    model,
    tokenizer,
    records: Sequence[dict[str, Any]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    warmup_fraction: float = 0.05,
    weight_decay: float = 0.0,
    max_length: int = 128,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainStats:
    """Fine-tune ``model`` in place on ``records`` (answer tokens only), AdamW + warmup/cosine.

    Shuffling uses ``random.Random(seed)``; build the model and train it inside
    ``deterministic_torch(seed)`` for bit-identical reruns.
    """
    from tui_unlearn.engine.runtime import local_accelerator
    from tui_unlearn.engine.training import TrainingLoop

    examples = [encode_example(tokenizer, r["question"], r["answer"], max_length) for r in records]
    pad = pad_token_id(tokenizer)
    rng = random.Random(seed)
    steps_per_epoch = math.ceil(len(examples) / batch_size)
    total = steps_per_epoch * epochs
    warmup = max(1, int(total * warmup_fraction))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))

    # The project's one training loop (the engine's): AdamW, this schedule, clipping at 1.
    loop = TrainingLoop(
        local_accelerator(),
        model,
        model.parameters(),
        lr=lr,
        schedule=schedule,
        grad_clip=1.0,
        betas=(0.9, 0.98),
        weight_decay=weight_decay,
    )
    stats = TrainStats()
    start = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        epoch_loss = 0.0
        for i in range(0, len(order), batch_size):
            batch = collate([examples[j] for j in order[i : i + batch_size]], pad)

            def micro_step(micro: int, batch: dict[str, Any] = batch) -> dict[str, Any]:
                return {"loss": loop.model(**batch).loss}

            outcome = loop.step(micro_step)
            if outcome.status != "ok":
                raise RuntimeError(f"training diverged at step {stats.steps + 1}; lower the learning rate")
            stats.losses.append(outcome.terms["loss"])
            epoch_loss += stats.losses[-1]
            stats.steps += 1
        if on_epoch is not None:
            on_epoch(epoch, epoch_loss / steps_per_epoch)
    model.eval()
    stats.wall_s = time.perf_counter() - start
    return stats


# --- evaluation --------------------------------------------------------------------------------
def exact_match_rate(model, tokenizer, records: Sequence[dict[str, Any]], *, batch_size: int = 64) -> float:
    """Fraction of ``records`` whose greedy answer exact-matches the gold one (SQuAD normalisation).

    The project's metric: ``metrics.generation.generate_answers`` then ``metrics.text.exact_match``.
    """
    if not records:
        return 0.0
    answers = generate_answers(model, tokenizer, [r["question"] for r in records], batch_size=batch_size)
    return sum(exact_match(a, r["answer"]) for a, r in zip(answers, records)) / len(records)


# --- building ----------------------------------------------------------------------------------
def _records(split: str, seed: int, authors: int | None) -> list[dict[str, Any]]:
    records = benchmark_records(split, seed)
    if authors is None:
        return records
    keep = set(_first_groups(split, seed, authors))
    return [r for r in records if r["group"] in keep]


def _first_groups(split: str, seed: int, n: int) -> list[str]:
    """The first ``n`` authors of ``split`` (for ``trained``: ``n`` of forget10 and ``n`` of retain90),
    or of a utility split its first ``n`` groups (famous authors, countries)."""
    if split == "trained":
        return _first_groups("forget10", seed, n) + _first_groups("retain90", seed, n)
    if split in UTILITY_SPLITS:
        return list(dict.fromkeys(r["group"] for r in benchmark_records(split, seed)))[:n]
    return benchmark_authors(split, seed)[:n]


def build_model(
    name: str,
    tokenizer,
    recipe: BuildRecipe,
    out_dir: Path,
    *,
    evaluate: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Train bundled model ``name`` and save it (weights, tokenizer, build_info.json) to ``out_dir``."""
    from transformers import LlamaForCausalLM

    splits = TRAINING_SPLITS[name]
    records = [r for split in splits for r in _records(split, recipe.benchmark_seed, recipe.n_authors)]
    # Each fact is also seen once as a plain sentence in its paraphrased wording, so the model
    # knows the fact beyond one template and the truth ratio (paraphrase vs perturbed) means
    # something; plain text has no question, so it never competes with the QA answer. The
    # utility splits have no paraphrase (as in TOFU): their truth ratio's base is the answer.
    records = records + [make_record("", r["paraphrased_answer"]) for r in records if r["paraphrased_answer"]]
    config = tiny_llama_config(
        tokenizer,
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_layers=recipe.num_layers,
        num_heads=recipe.num_heads,
        max_positions=recipe.max_positions,
    )
    with deterministic_torch(recipe.seed):
        model = LlamaForCausalLM(config)
        n_params = sum(p.numel() for p in model.parameters())
        log(f"{name}: {n_params / 1e6:.2f}M parameters, {len(records)} records of {' + '.join(splits)}")
        stats = train_causal_lm(
            model,
            tokenizer,
            records,
            epochs=recipe.epochs,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            warmup_fraction=recipe.warmup_fraction,
            weight_decay=recipe.weight_decay,
            max_length=recipe.max_length,
            seed=recipe.seed,
            on_epoch=lambda e, loss: log(f"{name}: epoch {e + 1}/{recipe.epochs} loss {loss:.4f}"),
        )
        log(f"{name}: trained {stats.steps} steps in {stats.wall_s:.1f}s")
        figures: dict[str, float] = {}
        if evaluate:  # still on TRAIN_THREADS threads: as quick as training on a busy machine
            for report in REPORT_SPLITS:
                sample = _records(report, recipe.benchmark_seed, recipe.n_authors)
                figures[report] = exact_match_rate(model, tokenizer, sample)
            log(f"{name}: exact match " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))

    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    info = {
        "name": name,
        "description": BUNDLED_MODELS[name],
        "trained_on": list(splits),
        "recipe": asdict(recipe),
        "model_config": {
            "architecture": "LlamaForCausalLM",
            "vocab_size": config.vocab_size,
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "tie_word_embeddings": True,
            "parameters": n_params,
        },
        "seed": recipe.seed,
        "steps": stats.steps,
        "train_records": len(records),
        "final_loss": stats.losses[-1] if stats.losses else None,
        "benchmark_seed": recipe.benchmark_seed,
        "benchmark_fingerprint": benchmark_fingerprint(recipe.benchmark_seed),
        "train_wall_s": round(stats.wall_s, 1),
        "train_threads": TRAIN_THREADS,
        "exact_match": figures,
        "torch_version": __import__("torch").__version__,
        "transformers_version": __import__("transformers").__version__,
    }
    _save(model, tokenizer, info, out_dir)
    return {"info": info, "stats": stats}


def _save(model, tokenizer, info: dict[str, Any], out_dir: Path) -> None:
    """Write into a sibling temp folder, then swap it in, so a killed build leaves no half model."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "build_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def build_tokenizer(recipe: BuildRecipe):
    return train_tokenizer(benchmark_texts(recipe.benchmark_seed, recipe.n_authors), recipe.vocab_size)


def build_micro_model(
    out_dir: Path, *, name: str = "tiny-authors", recipe: BuildRecipe = MICRO_RECIPE, evaluate: bool = False
) -> dict[str, Any]:
    """A few-second version of a bundled model (a couple of authors, a 2-layer toy Llama)."""
    return build_model(name, build_tokenizer(recipe), recipe, Path(out_dir), evaluate=evaluate)


def build_all(
    out: Path, *, micro: bool = False, only: str | None = None, log: Callable[[str], None] = lambda s: None
) -> dict[str, dict[str, Any]]:
    recipe = MICRO_RECIPE if micro else BuildRecipe()
    tokenizer = build_tokenizer(recipe)
    names = [only] if only else list(TRAINING_SPLITS)
    return {name: build_model(name, tokenizer, recipe, Path(out) / name, log=log) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui_unlearn.models.build_tiny", description=__doc__.split("\n")[0])
    default_out = Path(__file__).resolve().parents[2] / "models_cache"
    parser.add_argument("--out", type=Path, default=default_out, help=f"parent folder (default: {default_out})")
    parser.add_argument("--micro", action="store_true", help="a few-second toy build (for tests)")
    parser.add_argument("--only", choices=list(TRAINING_SPLITS), help="build just this model")
    args = parser.parse_args(argv)
    results = build_all(args.out, micro=args.micro, only=args.only, log=lambda s: print(s, file=sys.stderr, flush=True))
    for name, result in results.items():
        print(
            json.dumps(
                {
                    "name": name,
                    "dir": str(args.out / name),
                    "exact_match": result["info"]["exact_match"],
                    "steps": result["info"]["steps"],
                    "train_wall_s": result["info"]["train_wall_s"],
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
