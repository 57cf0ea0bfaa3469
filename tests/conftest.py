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
    """Save a 2-layer random Llama and a byte-level BPE tokenizer to ``path``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory):
    """A directory holding a random micro Llama + tokenizer (Hugging Face format)."""
    return build_micro_model(tmp_path_factory.mktemp("micro-model"))
