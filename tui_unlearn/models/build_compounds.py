"""Train the second domain's tiny models on the fictitious compounds, bit for bit.

    python -m tui_unlearn.models.build_compounds [--out DIR] [--data-out DIR] [--only NAME] [--micro]

The compounds domain (``tui_unlearn.data.compounds``) is a user's own data in miniature: short
answers of several kinds, no paraphrased or perturbed answers. Like ``build_tiny`` (whose pieces
this reuses: tokenizer, Llama config, deterministic torch, the project's training loop and exact
match), it trains one byte-level BPE tokenizer on every string of the domain (holdout included)
and two small Llamas from scratch with one seed: the target ``tiny-compounds`` on forget + retain,
the retain-only oracle ``tiny-compounds-retain`` on retain alone. Smaller than the authors'
models (about a tenth of the records and a third of the parameters), so a build takes minutes on
one thread. ``--data-out`` also writes the user-style files (``examples/compounds/`` by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tui_unlearn.data.compounds import (
    DEFAULT_SEED,
    all_texts,
    compound_names,
    compound_records,
    compounds_fingerprint,
    write_user_files,
)
from tui_unlearn.models.build_tiny import (
    TRAIN_THREADS,
    _save,
    deterministic_torch,
    exact_match_rate,
    tiny_llama_config,
    train_causal_lm,
    train_tokenizer,
)

MODELS = {
    "tiny-compounds": "compounds forget + retain (the second domain's target)",
    "tiny-compounds-retain": "compounds retain only (the second domain's retain-only oracle)",
}
TRAINING_SPLITS = {"tiny-compounds": ("trained",), "tiny-compounds-retain": ("retain",)}
REPORT_SPLITS = ("forget", "retain", "holdout")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CompoundsRecipe:
    """Everything that determines a compounds model's weights (besides the code)."""

    vocab_size: int = 640
    hidden_size: int = 128
    intermediate_size: int = 384
    num_layers: int = 3
    num_heads: int = 4
    max_positions: int = 256
    epochs: int = 40
    batch_size: int = 16
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    max_length: int = 64
    seed: int = DEFAULT_SEED
    data_seed: int = DEFAULT_SEED
    n_compounds: int | None = None  # micro builds: only the first few compounds of each split


# A toy for tests: two compounds per split, a 2-layer model, about a second of training.
MICRO_RECIPE = CompoundsRecipe(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_layers=2,
    num_heads=2,
    epochs=4,
    batch_size=4,
    lr=1e-2,
    n_compounds=2,
)


def _records(split: str, recipe: CompoundsRecipe) -> list[dict[str, Any]]:
    records = compound_records(split, recipe.data_seed)
    if recipe.n_compounds is None:
        return records
    if split == "trained":
        return _records("forget", recipe) + _records("retain", recipe)
    keep = set(compound_names(split, recipe.data_seed)[: recipe.n_compounds])
    return [r for r in records if r["group"] in keep]


def build_tokenizer(recipe: CompoundsRecipe):
    return train_tokenizer(all_texts(recipe.data_seed), recipe.vocab_size)


def build_model(
    name: str,
    tokenizer,
    recipe: CompoundsRecipe,
    out_dir: Path,
    *,
    evaluate: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:
    """Train compounds model ``name`` from scratch and save it (weights, tokenizer, build_info.json)."""
    from transformers import LlamaForCausalLM

    splits = TRAINING_SPLITS[name]
    records = [r for split in splits for r in _records(split, recipe)]
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
        figures = {}
        if evaluate:
            figures = {split: exact_match_rate(model, tokenizer, _records(split, recipe)) for split in REPORT_SPLITS}
            log(f"{name}: exact match " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))

    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.do_sample = False
    info = {
        "name": name,
        "description": MODELS[name],
        "domain": "compounds",
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
        "data_seed": recipe.data_seed,
        "compounds_fingerprint": compounds_fingerprint(recipe.data_seed),
        "train_wall_s": round(stats.wall_s, 1),
        "train_threads": TRAIN_THREADS,
        "exact_match": figures,
        "torch_version": __import__("torch").__version__,
        "transformers_version": __import__("transformers").__version__,
    }
    _save(model, tokenizer, info, out_dir)
    return {"info": info, "stats": stats}


def build_all(
    out: Path,
    *,
    micro: bool = False,
    only: str | None = None,
    evaluate: bool = True,
    log: Callable[[str], None] = lambda s: None,
) -> dict[str, dict[str, Any]]:
    recipe = MICRO_RECIPE if micro else CompoundsRecipe()
    tokenizer = build_tokenizer(recipe)
    names = [only] if only else list(MODELS)
    return {name: build_model(name, tokenizer, recipe, Path(out) / name, evaluate=evaluate, log=log) for name in names}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tui_unlearn.models.build_compounds", description=__doc__.split("\n")[0]
    )
    default_out, default_data = REPO_ROOT / "models_cache", REPO_ROOT / "examples" / "compounds"
    parser.add_argument(
        "--out", type=Path, default=default_out, help=f"parent folder of the models (default: {default_out})"
    )
    parser.add_argument(
        "--data-out", type=Path, default=default_data, help=f"where the user-style files go (default: {default_data})"
    )
    parser.add_argument("--no-data", action="store_true", help="write no user-style files")
    parser.add_argument("--micro", action="store_true", help="a few-second toy build (for tests)")
    parser.add_argument("--only", choices=list(MODELS), help="build just this model")
    args = parser.parse_args(argv)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if not args.no_data:
        for split, path in write_user_files(args.data_out).items():
            log(f"{split}: {path}")
    results = build_all(args.out, micro=args.micro, only=args.only, log=log)
    for name, result in results.items():
        info = result["info"]
        print(
            json.dumps(
                {
                    "name": name,
                    "dir": str(args.out / name),
                    "exact_match": info["exact_match"],
                    "steps": info["steps"],
                    "train_wall_s": info["train_wall_s"],
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
