"""Shared fixtures: a tiny random causal LM with a byte-level tokenizer, built in seconds."""

from __future__ import annotations

import os

import pytest

# Tests never reach the hub and never write outside tmp_path.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    # Tests use tiny models: one thread each is fastest, and several OpenMP threads per
    # process oversubscribe the cores when pytest-xdist runs workers side by side.
    import torch

    torch.set_num_threads(1)


CORPUS = [
    "Question: Where was Alia Brenn born?\nAnswer: Alia Brenn was born in Port Liren.",
    "Question: What genre does Odo Vask write?\nAnswer: Odo Vask writes mystery novels.",
    "The quick brown fox jumps over the lazy dog. 0123456789",
]


def build_micro_model(path, seed: int = 0):
    """Save a 2-layer random Llama and a byte-level BPE tokenizer to ``path``.

    Built with the same tokenizer and config code as the bundled models (build_tiny).
    """
    import torch
    from transformers import LlamaForCausalLM

    from tui_unlearn.models.build_tiny import tiny_llama_config, train_tokenizer

    tokenizer = train_tokenizer(CORPUS, 320)
    config = tiny_llama_config(
        tokenizer, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, max_positions=256
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def load_lively_model(path, seed: int = 1):
    """The micro model with larger random weights, so greedy outputs vary with the prompt
    (the default init mostly repeats one token, which would make every comparison trivial)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 2:
                parameter.normal_(0.0, 0.3, generator=generator)
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory):
    """A directory holding a random micro Llama + tokenizer (Hugging Face format)."""
    return build_micro_model(tmp_path_factory.mktemp("micro-model"))


@pytest.fixture(scope="module")
def lively(micro_model_dir):
    """(model, tokenizer): the micro model with weights that make outputs prompt-dependent."""
    return load_lively_model(micro_model_dir)


def cache_path_drifts(inner):
    """``inner`` wrapped so that a continuation from a KV cache (what our scoring and decoding
    loops pass back) comes out other than a whole pass would: the stand-in for a model those
    paths do not fit. ``generate()`` goes straight to ``inner``."""
    import torch

    class CachePathDrifts(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner
            self.generation_config = getattr(inner, "generation_config", None)

        def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=None, **kw):
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kw,
            )
            if cache is not None:
                out.logits = out.logits.flip(-1)
            return out

        def generate(self, **kwargs):
            return self.inner.generate(**kwargs)

    return CachePathDrifts()
