"""A micro GGUF file written from the micro Llama, the way llama.cpp's converter writes one.

Tests need a GGUF that loads in a second; the real one (SmolLM2-135M, 98 MB) takes half a
minute to dequantize and lives in the slow tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    # llama.cpp stores Llama's q/k projections with the rotary halves interleaved;
    # transformers' GGUF loader undoes this, so the file must carry it.
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_micro_gguf(
    model_dir: Path,
    out: Path,
    *,
    architecture: str = "llama",
    quantize: bool = True,
    chat_template: str | None = None,
) -> Path:
    """Write the Hugging Face Llama in ``model_dir`` as a GGUF at ``out``: 2-D weights Q8_0
    when ``quantize`` (else F32), norms F32, the byte-level BPE tokenizer as ``gpt2``.
    ``architecture`` other than ``llama`` writes a file transformers will not load."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    n_layers, n_head, n_kv = config["num_hidden_layers"], config["num_attention_heads"], config["num_key_value_heads"]

    writer = gguf.GGUFWriter(str(out), architecture)
    writer.add_name("micro llama")
    writer.add_block_count(n_layers)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize else gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    special = {t["content"] for t in tokenizer["added_tokens"] if t.get("special")}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    for key, tensor in load_file(model_dir / "model.safetensors").items():
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        assert name is not None, key
        data = tensor.astype(np.float32)
        if key.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif key.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        if quantize and data.ndim == 2:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
